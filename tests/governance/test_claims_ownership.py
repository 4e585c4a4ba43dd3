"""Owner assignment, backup owners, claims and the claim deadline."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from click.testing import CliRunner
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.claim.models import ClaimStatus
from governance.claim.service import (
    claim_identity,
    decide_claim,
    expire_claim_deadlines,
)
from governance.cli.main import cli
from governance.clock import utcnow
from governance.errors import ConflictError, NotFoundError, PermissionDeniedError
from governance.identity.models import Identity, OwnerOrigin, RiskTier
from governance.lifecycle import IdentityState
from governance.ownership.rules import start_claim_window
from governance.ownership.service import add_backup_owner, assign_owner
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")


@pytest.fixture
def team(session: Session) -> None:
    make_person(session, "security@example.com")
    make_person(session, "alice@example.com")
    make_person(session, "bob@example.com")
    make_person(session, "former@example.com", active=False)
    session.commit()


def orphan(session: Session, **fields: object) -> Identity:
    identity = make_identity(session, state=IdentityState.ORPHANED, **fields)
    start_claim_window(identity, 14)
    session.commit()
    return identity


def test_standard_claim_owns_at_once(session: Session, team: None) -> None:
    identity = orphan(session)
    claim = claim_identity(session, identity, actor=Actor.person("alice@example.com"))
    session.commit()
    assert claim.status is ClaimStatus.APPROVED
    assert identity.state is IdentityState.OWNED
    assert identity.owner is not None
    assert identity.owner.email == "alice@example.com"
    assert identity.owner_origin is OwnerOrigin.CLAIMED
    assert identity.claim_deadline is None


def test_privileged_claim_waits_for_admin(
    app: Steward, session: Session, team: None
) -> None:
    identity = orphan(session, tier=RiskTier.PRIVILEGED)
    alice = Actor.person("alice@example.com")
    claim = claim_identity(session, identity, actor=alice)
    session.commit()
    assert claim.status is ClaimStatus.PENDING_APPROVAL
    assert identity.state is IdentityState.ORPHANED

    # The same person again gets the waiting claim; someone else is refused.
    assert claim_identity(session, identity, actor=alice).id == claim.id
    with pytest.raises(ConflictError, match="already has a claim waiting"):
        claim_identity(session, identity, actor=Actor.person("bob@example.com"))
    session.rollback()

    with pytest.raises(PermissionDeniedError, match="only security admins"):
        decide_claim(session, claim, approve=True, actor=alice, settings=app.settings)
    session.rollback()

    decide_claim(session, claim, approve=True, actor=ADMIN, settings=app.settings)
    session.commit()
    assert claim.status is ClaimStatus.APPROVED
    assert identity.state is IdentityState.OWNED
    with pytest.raises(ConflictError, match="already approved"):
        decide_claim(session, claim, approve=False, actor=ADMIN, settings=app.settings)


def test_admin_cannot_approve_own_claim(
    app: Steward, session: Session, team: None
) -> None:
    identity = orphan(session, tier=RiskTier.PRIVILEGED)
    claim = claim_identity(session, identity, actor=ADMIN)
    session.commit()
    with pytest.raises(PermissionDeniedError, match="their own claim"):
        decide_claim(session, claim, approve=True, actor=ADMIN, settings=app.settings)


def test_rejected_claim_leaves_orphan(
    app: Steward, session: Session, team: None
) -> None:
    identity = orphan(session, tier=RiskTier.PRIVILEGED)
    claim = claim_identity(session, identity, actor=Actor.person("bob@example.com"))
    decide_claim(
        session,
        claim,
        approve=False,
        actor=ADMIN,
        settings=app.settings,
        reason="not his",
    )
    session.commit()
    assert claim.status is ClaimStatus.REJECTED
    assert claim.open_identity_id is None
    assert identity.state is IdentityState.ORPHANED


def test_claim_rules(session: Session, team: None) -> None:
    owned = make_identity(session, owner=None, state=IdentityState.OWNED)
    session.commit()
    with pytest.raises(ConflictError, match="only orphans can be claimed"):
        claim_identity(session, owned, actor=Actor.person("alice@example.com"))
    session.rollback()
    identity = orphan(session)
    with pytest.raises(NotFoundError, match="person not found"):
        claim_identity(session, identity, actor=Actor.person("stranger@example.com"))
    session.rollback()
    with pytest.raises(Exception, match="inactive"):
        claim_identity(session, identity, actor=Actor.person("former@example.com"))


def test_claim_deadline_makes_candidates(
    app: Steward, session: Session, team: None
) -> None:
    standard = orphan(session)
    privileged = orphan(session, tier=RiskTier.PRIVILEGED)
    waiting = orphan(session, tier=RiskTier.PRIVILEGED)
    claim_identity(session, waiting, actor=Actor.person("alice@example.com"))
    session.commit()
    system = Actor.system("claims")

    assert (
        expire_claim_deadlines(session, actor=system, settings=app.settings).queued == 0
    )
    with time_machine.travel(utcnow() + timedelta(days=15), tick=False):
        result = expire_claim_deadlines(session, actor=system, settings=app.settings)
        session.commit()
    assert result.awaiting_approval == 2
    assert standard.state is IdentityState.REVOCATION_APPROVAL
    assert privileged.state is IdentityState.REVOCATION_APPROVAL
    assert waiting.state is IdentityState.ORPHANED
    revocations = sa.select(Remediation).where(
        Remediation.kind == RemediationKind.REVOKE
    )
    statuses = {row.status for row in session.scalars(revocations)}
    assert statuses == {RemediationStatus.AWAITING_APPROVAL}

    # Running again queues nothing twice.
    with time_machine.travel(utcnow() + timedelta(days=16), tick=False):
        expire_claim_deadlines(session, actor=system, settings=app.settings)
        session.commit()
    assert len(session.scalars(revocations).all()) == 2


def test_automatic_revocation_of_unclaimed(
    app: Steward, session: Session, team: None
) -> None:
    settings = app.settings.model_copy(
        update={
            "ownership": app.settings.ownership.model_copy(
                update={"revoke_unclaimed_automatically": True}
            )
        }
    )
    standard = orphan(session)
    with time_machine.travel(utcnow() + timedelta(days=15), tick=False):
        result = expire_claim_deadlines(
            session, actor=Actor.system("claims"), settings=settings
        )
        session.commit()
    assert result.queued == 1
    assert standard.state is IdentityState.REVOCATION_PENDING


def test_assign_and_backup(session: Session, team: None) -> None:
    identity = orphan(session)
    assign_owner(session, identity, "Alice@example.com", actor=ADMIN)
    assert identity.state is IdentityState.OWNED
    assert identity.owner_origin is OwnerOrigin.ASSIGNED
    assert add_backup_owner(session, identity, "bob@example.com", actor=ADMIN)
    assert not add_backup_owner(session, identity, "bob@example.com", actor=ADMIN)
    with pytest.raises(ConflictError, match="already owns"):
        add_backup_owner(session, identity, "alice@example.com", actor=ADMIN)
    with pytest.raises(Exception, match="inactive"):
        assign_owner(session, identity, "former@example.com", actor=ADMIN)
    session.commit()
    actions = list(
        session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq))
    )
    assert actions == ["owner.assigned", "owner.backup_added"]


def test_cli_owner_and_claim(database_url: str, session: Session, team: None) -> None:
    identity = orphan(session, tier=RiskTier.PRIVILEGED, external_id="acc-9")
    identity_id = identity.id
    session.close()
    runner = CliRunner()
    env = {
        "STEWARD_DATABASE_URL": database_url,
        "STEWARD_SECURITY__ADMINS": "security@example.com",
    }

    def run(*arguments: str) -> object:
        return runner.invoke(cli, list(arguments), env=env, catch_exceptions=False)

    claimed = run("claim", "vault-main:acc-9", "--actor", "alice@example.com")
    assert claimed.exit_code == 0, claimed.output
    assert "waiting for a security admin's approval" in claimed.output
    refused = run("claim", "approve", "1", "--actor", "alice@example.com")
    assert refused.exit_code == 2
    assert "only security admins may" in refused.output
    approved = run("claim", "approve", "1", "--actor", "security@example.com")
    assert approved.exit_code == 0
    assert "claim 1 approved" in approved.output

    not_owner = run(
        "owner",
        "assign",
        str(identity_id),
        "bob@example.com",
        "--actor",
        "bob@example.com",
    )
    assert not_owner.exit_code == 2
    assert "may not change the owners" in not_owner.output
    assigned = run(
        "owner",
        "assign",
        str(identity_id),
        "bob@example.com",
        "--actor",
        "alice@example.com",
    )
    assert assigned.exit_code == 0
    missing_actor = run("owner", "backup", "add", str(identity_id), "alice@example.com")
    assert missing_actor.exit_code == 2
    assert "missing actor" in missing_actor.output
    claims = run("claim", "99", "--actor", "alice@example.com")
    assert claims.exit_code == 2
    assert "identity not found: '99'" in claims.output
