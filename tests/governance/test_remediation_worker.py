"""The remediation worker in-process, with revokers held in memory."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from connectors.base import IdentityRef, RevocationOutcome, RevocationResult
from connectors.errors import ConnectorPermissionError, ConnectorUnavailableError
from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.clock import utcnow
from governance.errors import ConflictError, PermissionDeniedError
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.operations import (
    cancel,
    confirm,
    decide_approval,
    request_undo,
    retry,
    set_paused,
)
from governance.remediation.service import queue_revocation
from governance.remediation.worker import RemediationWorker, RetryPolicy
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")


@dataclass
class MemoryRevoker:
    """Holds credentials in a set; revoking removes and then looks them up."""

    name: str = "memory"
    active: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        self.calls.append(identity.external_id)
        if self.failures:
            raise self.failures.pop(0)
        was_active = identity.external_id in self.active
        self.active.discard(identity.external_id)
        if identity.external_id in self.active:
            return RevocationResult(RevocationOutcome.NEEDS_HUMAN, "still active")
        outcome = (
            RevocationOutcome.REVOKED if was_active else RevocationOutcome.ALREADY_GONE
        )
        return RevocationResult(outcome, "verified gone")


@dataclass
class StagedMemoryRevoker(MemoryRevoker):
    disabled: set[str] = field(default_factory=set)
    grace_period: timedelta = timedelta(days=7)

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        self.calls.append(identity.external_id)
        self.active.discard(identity.external_id)
        self.disabled.add(identity.external_id)
        return RevocationResult(RevocationOutcome.DISABLED, "deactivated")

    def finish(self, identity: IdentityRef) -> RevocationResult:
        self.disabled.discard(identity.external_id)
        return RevocationResult(RevocationOutcome.REVOKED, "deleted")

    def undo(self, identity: IdentityRef) -> RevocationResult:
        self.disabled.discard(identity.external_id)
        self.active.add(identity.external_id)
        return RevocationResult(RevocationOutcome.RESTORED, "reactivated")


def reread(session: Session) -> None:
    """End the session's transaction, so the worker can write, and forget rows."""
    session.rollback()
    session.expire_all()


def queue(session: Session, identity: Identity) -> Remediation:
    remediation = queue_revocation(
        session,
        identity,
        actor=Actor.system("campaign"),
        action="test.revoke",
        reason="test",
        dedupe_key=f"test:{identity.id}",
    )
    session.commit()
    return remediation


def worker(app: Steward, revoker: MemoryRevoker) -> RemediationWorker:
    return RemediationWorker(
        app,
        {"vault-main": revoker},
        worker_id="test-worker",
        retry=RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=10)),
        rng=random.Random(7),  # noqa: S311 - jitter in a test
    )


@pytest.fixture
def owner(session: Session) -> Person:
    alice = make_person(session, "alice@example.com")
    session.commit()
    return alice


def test_revocation_verified_once(app: Steward, session: Session, owner: None) -> None:
    identity = make_identity(session, external_id="acc-1")
    remediation = queue(session, identity)
    revoker = MemoryRevoker(active={"acc-1"})

    stats = worker(app, revoker).run_once()
    assert stats.taken == 1
    assert stats.outcomes == {"revoked": 1}
    assert worker(app, revoker).run_once().taken == 0
    assert revoker.calls == ["acc-1"]

    reread(session)
    assert (
        session.get_one(Remediation, remediation.id).status
        is RemediationStatus.SUCCEEDED
    )
    stored = session.get_one(Identity, identity.id)
    assert stored.state is IdentityState.REVOKED
    assert stored.revocation_stage == "revoked"
    actions = list(session.scalars(sa.select(AuditEvent.action)))
    assert actions.count("remediation.revoked") == 1
    assert actions.count("identity.revoked") == 1
    assert verify_database(session).ok


def test_failures_back_off_then_need_human(
    app: Steward, session: Session, owner: None
) -> None:
    identity = make_identity(session, external_id="acc-2")
    remediation = queue(session, identity)
    revoker = MemoryRevoker(
        active={"acc-2"},
        failures=[ConnectorUnavailableError("sealed")] * 3,
    )
    runner = worker(app, revoker)
    assert runner.run_once().outcomes == {"retryable": 1}
    reread(session)
    row = session.get_one(Remediation, remediation.id)
    assert row.status is RemediationStatus.PENDING
    assert row.attempts == 1
    assert row.next_attempt_at is not None
    delay = row.next_attempt_at - utcnow()
    assert timedelta(seconds=4) <= delay <= timedelta(seconds=10)
    reread(session)
    # Not due yet: nothing is taken.
    assert runner.run_once().taken == 0
    start = utcnow()
    for hours in (1, 2):
        with time_machine.travel(start + timedelta(hours=hours), tick=False):
            runner.run_once()
    reread(session)
    row = session.get_one(Remediation, remediation.id)
    assert row.status is RemediationStatus.NEEDS_HUMAN
    assert row.attempts == 3
    assert "sealed" in (row.last_error or "")
    stored = session.get_one(Identity, identity.id)
    assert stored.state is IdentityState.REVOCATION_FAILED
    assert "acc-2" in revoker.active

    # A security admin retries; now it works.
    retry(session, row, actor=ADMIN, settings=app.settings)
    session.commit()
    assert (
        session.get_one(Identity, identity.id).state is IdentityState.REVOCATION_PENDING
    )
    assert runner.run_once().outcomes == {"revoked": 1}


def test_permission_denied_needs_human(
    app: Steward, session: Session, owner: None
) -> None:
    identity = make_identity(session, external_id="acc-3")
    remediation = queue(session, identity)
    revoker = MemoryRevoker(failures=[ConnectorPermissionError("denied")])
    assert worker(app, revoker).run_once().outcomes == {"needs_human": 1}
    reread(session)
    assert (
        session.get_one(Remediation, remediation.id).status
        is RemediationStatus.NEEDS_HUMAN
    )
    assert (
        session.get_one(Identity, identity.id).state is IdentityState.REVOCATION_FAILED
    )


def test_no_connector_means_manual(app: Steward, session: Session, owner: None) -> None:
    identity = make_identity(session, source="saas-export", external_id="sk-1")
    remediation = queue(session, identity)
    assert worker(app, MemoryRevoker()).run_once().outcomes == {"manual": 1}
    reread(session)
    row = session.get_one(Remediation, remediation.id)
    assert row.status is RemediationStatus.OPEN
    assert "no connector revokes identities of source 'saas-export'" in (
        row.outcome or ""
    )
    with pytest.raises(PermissionDeniedError):
        confirm(
            session, row, actor=Actor.person("alice@example.com"), settings=app.settings
        )
    reread(session)
    confirm(
        session, row, actor=ADMIN, settings=app.settings, reason="key deleted in the UI"
    )
    session.commit()
    assert session.get_one(Identity, identity.id).state is IdentityState.REVOKED


def test_staged_revocation_and_undo(
    app: Steward, session: Session, owner: Person
) -> None:
    first = make_identity(session, external_id="AKIA1", owner=owner)
    second = make_identity(session, external_id="AKIA2", owner=owner)
    queued = [queue(session, first), queue(session, second)]
    revoker = StagedMemoryRevoker(active={"AKIA1", "AKIA2"})
    runner = worker(app, revoker)
    assert runner.run_once().outcomes == {"disabled": 2}
    reread(session)
    assert session.get_one(Identity, first.id).state is IdentityState.DISABLED
    assert session.get_one(Identity, first.id).revocation_stage == "disabled"

    request_undo(
        session,
        session.get_one(Remediation, queued[1].id),
        actor=ADMIN,
        settings=app.settings,
    )
    session.commit()
    assert runner.run_once().outcomes == {"restored": 1}
    assert "AKIA2" in revoker.active
    reread(session)
    assert session.get_one(Identity, second.id).state is IdentityState.OWNED

    # The grace period has not passed: the first key stays disabled.
    reread(session)
    assert runner.run_once().taken == 0
    with time_machine.travel(utcnow() + timedelta(days=8), tick=False):
        assert runner.run_once().outcomes == {"revoked": 1}
    reread(session)
    assert session.get_one(Identity, first.id).state is IdentityState.REVOKED
    with pytest.raises(ConflictError, match="only a credential disabled"):
        request_undo(
            session,
            session.get_one(Remediation, queued[0].id),
            actor=ADMIN,
            settings=app.settings,
        )


def test_pause_holds_everything(app: Steward, session: Session, owner: None) -> None:
    identity = make_identity(session, external_id="acc-4")
    queue(session, identity)
    set_paused(session, True, actor=ADMIN, settings=app.settings, reason="incident 42")
    session.commit()
    revoker = MemoryRevoker(active={"acc-4"})
    assert worker(app, revoker).run_once().taken == 0
    assert revoker.calls == []
    assert not set_paused(session, True, actor=ADMIN, settings=app.settings)
    with pytest.raises(PermissionDeniedError):
        set_paused(
            session,
            False,
            actor=Actor.person("alice@example.com"),
            settings=app.settings,
        )
    reread(session)
    set_paused(session, False, actor=ADMIN, settings=app.settings)
    session.commit()
    assert worker(app, revoker).run_once().taken == 1
    actions = list(session.scalars(sa.select(AuditEvent.action)))
    assert "remediation.paused" in actions
    assert "remediation.resumed" in actions


def test_approval_and_cancel(app: Steward, session: Session, owner: Person) -> None:
    privileged = make_identity(session, external_id="root-1", tier=RiskTier.PRIVILEGED)
    other = make_identity(
        session, external_id="root-2", tier=RiskTier.PRIVILEGED, owner=owner
    )
    waiting = queue(session, privileged)
    rejected = queue(session, other)
    assert waiting.status is RemediationStatus.AWAITING_APPROVAL
    revoker = MemoryRevoker(active={"root-1", "root-2"})
    assert worker(app, revoker).run_once().taken == 0

    with pytest.raises(PermissionDeniedError):
        decide_approval(
            session,
            waiting,
            approve=True,
            actor=Actor.person("alice@example.com"),
            settings=app.settings,
        )
    reread(session)
    decide_approval(session, waiting, approve=True, actor=ADMIN, settings=app.settings)
    decide_approval(
        session, rejected, approve=False, actor=ADMIN, settings=app.settings
    )
    session.commit()
    assert session.get_one(Identity, other.id).state is IdentityState.OWNED
    reread(session)
    assert worker(app, revoker).run_once().outcomes == {"revoked": 1}
    assert revoker.calls == ["root-1"]

    third = make_identity(session, external_id="acc-5", owner=owner)
    pending = queue(session, third)
    cancel(session, pending, actor=ADMIN, settings=app.settings, reason="wrong key")
    session.commit()
    assert session.get_one(Identity, third.id).state is IdentityState.OWNED
    with pytest.raises(ConflictError):
        cancel(session, pending, actor=ADMIN, settings=app.settings)


def test_requester_cannot_approve(
    app: Steward, session: Session, owner: Person
) -> None:
    identity = make_identity(session, external_id="root-9", tier=RiskTier.PRIVILEGED)
    remediation = queue_revocation(
        session,
        identity,
        actor=ADMIN,
        action="test.revoke",
        reason="test",
        dedupe_key="self:1",
    )
    session.commit()
    with pytest.raises(PermissionDeniedError, match="another security admin must"):
        decide_approval(
            session, remediation, approve=True, actor=ADMIN, settings=app.settings
        )


def test_ticket_rows_left_for_ticketing(
    app: Steward, session: Session, owner: None
) -> None:
    identity = make_identity(session, external_id="acc-6")
    queue(session, identity)
    worker(app, MemoryRevoker(active={"acc-6"})).run_once()
    ticket = session.scalars(
        sa.select(Remediation).where(Remediation.kind == RemediationKind.TICKET)
    ).one()
    assert ticket.status is RemediationStatus.PENDING
