"""The AWS connector's snapshots reconciled into the inventory, on both databases."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest
import sqlalchemy as sa

from connectors.aws.connector import AwsConnector
from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.discovery.service import Reconciler, ReconcileResult
from governance.errors import ConfirmationRequiredError
from governance.identity.models import Identity, OwnerOrigin, RiskTier
from governance.lifecycle import IdentityState
from governance.ownership.rules import adopt
from governance.person.models import Person
from tests.connectors.aws.conftest import iam_client, make_user
from tests.factories import make_person

Factory = Callable[..., AwsConnector]
ACTOR = Actor.system("discovery")


def reconcile(
    app: Steward, connector: AwsConnector, *, confirm: bool = False
) -> ReconcileResult:
    records = connector.snapshot()
    reconciler = Reconciler(
        app, connector.name, method="aws", actor=ACTOR, confirm=confirm
    )
    return reconciler.run(lambda: records)


def audit_count(app: Steward) -> int:
    with app.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0


def inventory(app: Steward) -> dict[str, Identity]:
    with app.sessions() as session:
        rows = session.scalars(sa.select(Identity).order_by(Identity.id)).all()
        return {row.external_id: row for row in rows}


@pytest.fixture
def account(app: Steward) -> dict[str, str]:
    """Arrange three owned keys, one orphan key, and one tagged secret."""
    with app.session() as session:
        make_person(session, "alice@example.com")
        make_person(session, "bob@example.com")
    iam = iam_client()
    keys = {}
    for number in range(3):
        keys[f"owned-{number}"] = make_user(
            iam, f"svc-{number}", tags={"Owner": "alice@example.com"}
        )[0]
    keys["orphan"] = make_user(iam, "nobody")[0]
    iam.put_user_policy(
        UserName="svc-0",
        PolicyName="admin",
        PolicyDocument='{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
    )
    keys["secret"] = boto3.client(
        "secretsmanager", region_name="eu-west-1"
    ).create_secret(
        Name="db", SecretString="x", Tags=[{"Key": "Owner", "Value": "bob@example.com"}]
    )["ARN"]
    return keys


def test_first_run_owners_and_orphans(
    app: Steward, make_connector: Factory, account: dict[str, str]
) -> None:
    result = reconcile(app, make_connector())

    stored = inventory(app)
    assert result.new == 5
    assert stored[account["owned-0"]].state is IdentityState.OWNED
    assert stored[account["owned-0"]].owner_origin is OwnerOrigin.SOURCE
    assert stored[account["owned-0"]].tier is RiskTier.PRIVILEGED
    assert "allows every action" in stored[account["owned-0"]].tier_reason
    assert stored[account["owned-1"]].tier is RiskTier.STANDARD
    assert stored[account["orphan"]].state is IdentityState.ORPHANED
    assert stored[account["orphan"]].claim_deadline is not None
    assert stored[account["secret"]].state is IdentityState.OWNED
    assert stored[account["secret"]].managed is True
    assert stored[account["owned-1"]].never_used is True


def test_rerun_writes_nothing(
    app: Steward, make_connector: Factory, account: dict[str, str]
) -> None:
    connector = make_connector()
    reconcile(app, connector)
    events = audit_count(app)

    result = reconcile(app, connector)

    assert result.unchanged == 5
    assert result.changed == 0
    assert result.new == 0
    assert audit_count(app) == events


def test_deleted_key_goes(
    app: Steward, make_connector: Factory, account: dict[str, str]
) -> None:
    connector = make_connector()
    reconcile(app, connector)
    iam_client().delete_access_key(UserName="svc-2", AccessKeyId=account["owned-2"])

    result = reconcile(app, connector)

    assert result.gone == 1
    assert inventory(app)[account["owned-2"]].state is IdentityState.GONE


def test_mass_disappearance_needs_confirmation(
    app: Steward, make_connector: Factory, account: dict[str, str]
) -> None:
    connector = make_connector()
    reconcile(app, connector)
    iam = iam_client()
    for number in range(3):
        iam.delete_access_key(
            UserName=f"svc-{number}", AccessKeyId=account[f"owned-{number}"]
        )

    with pytest.raises(ConfirmationRequiredError):
        reconcile(app, connector)
    assert inventory(app)[account["owned-0"]].state is IdentityState.OWNED

    result = reconcile(app, connector, confirm=True)
    assert result.gone == 3


def test_steward_owner_wins_over_tag(
    app: Steward, make_connector: Factory, account: dict[str, str]
) -> None:
    connector = make_connector()
    reconcile(app, connector)
    with app.session() as session:
        identity = session.scalars(
            sa.select(Identity).where(Identity.external_id == account["owned-1"])
        ).one()
        bob = session.scalars(
            sa.select(Person).where(Person.email == "bob@example.com")
        ).one()
        adopt(
            session,
            identity,
            bob,
            OwnerOrigin.ASSIGNED,
            actor=Actor.person("security@example.com"),
            action="owner.assigned",
            reason="handed over",
        )
    iam_client().tag_user(
        UserName="svc-1", Tags=[{"Key": "Owner", "Value": "carol@example.com"}]
    )

    result = reconcile(app, connector)

    with app.sessions() as session:
        identity = session.scalars(
            sa.select(Identity).where(Identity.external_id == account["owned-1"])
        ).one()
        assert identity.owner is not None
        assert identity.owner.email == "bob@example.com"
        assert identity.owner_origin is OwnerOrigin.ASSIGNED
    assert result.owner_disagreements == 1


def test_tag_change_moves_source_owner(
    app: Steward, make_connector: Factory, account: dict[str, str]
) -> None:
    connector = make_connector()
    reconcile(app, connector)
    iam_client().tag_user(
        UserName="nobody", Tags=[{"Key": "Owner", "Value": "bob@example.com"}]
    )

    result = reconcile(app, connector)

    assert result.changed == 1
    assert inventory(app)[account["orphan"]].state is IdentityState.OWNED
