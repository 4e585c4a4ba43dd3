"""The AWS connector as the remediation worker's revoker."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
import time_machine

from connectors.aws.connector import AwsConnector
from governance.app import Steward
from governance.audit.service import Actor
from governance.clock import utcnow
from governance.discovery.service import Reconciler
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.operations import request_undo
from governance.remediation.service import queue_revocation
from governance.remediation.worker import RemediationWorker
from tests.connectors.aws.conftest import iam_client, make_user

ADMIN = Actor.person("security@example.com")


def _key_status(user: str, key_id: str) -> str | None:
    keys = iam_client().list_access_keys(UserName=user)["AccessKeyMetadata"]
    for key in keys:
        if key["AccessKeyId"] == key_id:
            return str(key["Status"])
    return None


def test_staged_key_revocation_through_worker(
    app: Steward, make_connector: Callable[..., AwsConnector]
) -> None:
    iam = iam_client()
    [kept] = make_user(iam, "etl-runner")
    [revoked] = make_user(iam, "old-deployer")
    connector = make_connector(delete_after_days=3)
    records = list(connector.discover())
    Reconciler(app, "aws-main", method="test", actor=Actor.system("test")).run(
        lambda: records
    )
    with app.session() as session:
        identities = {
            row.external_id: row for row in session.scalars(sa.select(Identity))
        }
        for key_id in (kept, revoked):
            queue_revocation(
                session,
                identities[key_id],
                actor=ADMIN,
                action="test.revoke",
                reason="test",
                dedupe_key=f"test:{key_id}",
            )
        ids = {key_id: identities[key_id].id for key_id in (kept, revoked)}
    worker = RemediationWorker(
        app,
        {"aws-main": connector},
        worker_id="w1",
        rng=random.Random(1),  # noqa: S311
    )

    assert worker.run_once().outcomes == {"disabled": 2}
    assert _key_status("old-deployer", revoked) == "Inactive"
    with app.sessions() as session:
        assert session.get_one(Identity, ids[revoked]).state is IdentityState.DISABLED
        undo = session.scalars(
            sa.select(Remediation).where(
                Remediation.identity_id == ids[kept],
                Remediation.kind == RemediationKind.REVOKE,
            )
        ).one()
        request_undo(session, undo, actor=ADMIN, settings=app.settings)
        session.commit()

    assert worker.run_once().outcomes == {"restored": 1}
    assert _key_status("etl-runner", kept) == "Active"

    # Still within the grace period: nothing is deleted yet.
    assert worker.run_once().taken == 0
    with time_machine.travel(utcnow() + timedelta(days=4), tick=False):
        assert worker.run_once().outcomes == {"revoked": 1}
    assert _key_status("old-deployer", revoked) is None
    with app.sessions() as session:
        assert session.get_one(Identity, ids[revoked]).state is IdentityState.REVOKED
        assert session.get_one(Identity, ids[kept]).state is IdentityState.ORPHANED
        statuses = {
            row.identity_id: row.status
            for row in session.scalars(
                sa.select(Remediation).where(Remediation.kind == RemediationKind.REVOKE)
            )
        }
        assert statuses == {
            ids[revoked]: RemediationStatus.SUCCEEDED,
            ids[kept]: RemediationStatus.CANCELLED,
        }
