"""The Jira sync: closing tickets of verified remediations, confirming manual ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from governance.app import Steward, create_app
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.clock import utcnow
from governance.errors import ConflictError
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from governance.remediation.models import Remediation, RemediationStatus
from governance.remediation.operations import cancel, confirm
from governance.remediation.runner import ticket_drainers
from governance.remediation.service import open_scope_reduction
from governance.remediation.tickets import SharedTicketClient
from governance.remediation.worker import RemediationWorker, WorkerStats
from governance.settings import Settings
from tests.factories import make_identity, make_person
from tests.support.jira_api import JiraStandIn
from tests.support.tickets import (
    ADMIN,
    SetRevoker,
    actions,
    jira_settings,
    queue,
    reread,
    ticket_of,
    ticket_sync,
    ticket_worker,
)

S = RemediationStatus
COMMENT_PATH = "/rest/api/2/issue/SEC-1/comment"
TRANSITION_PATH = "/rest/api/2/issue/SEC-1/transitions"


@pytest.fixture
def jira_api() -> Iterator[JiraStandIn]:
    with JiraStandIn() as api:
        yield api


@pytest.fixture
def settings(database_url: str, jira_api: JiraStandIn) -> Settings:
    return jira_settings(database_url, jira_api)


@pytest.fixture
def clients(app: Steward) -> Iterator[SharedTicketClient]:
    shared = SharedTicketClient(app.settings.jira)
    yield shared
    shared.close()


def revoke(app: Steward, external_id: str) -> None:
    revoker = SetRevoker(active={external_id})
    RemediationWorker(app, {"vault-main": revoker}, worker_id="revoker").run_once()


def test_verified_revocation_closes_ticket_once(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    remediation = queue(session, make_identity(session, external_id="acc-1"))
    ticket_worker(app, clients).run_once()
    sync = ticket_sync(app, clients)
    # Nothing to do in Jira while the revocation is pending.
    assert sync.run_once().taken == 0

    revoke(app, "acc-1")
    assert sync.run_once().outcomes == {"closed": 1}
    assert sync.run_once().taken == 0

    issue = jira_api.issues["SEC-1"]
    assert issue.status == "Done"
    (comment,) = issue.comments
    assert f"Steward closed remediation {remediation.id}" in comment["body"]
    assert "the revocation is verified" in comment["body"]
    assert len(jira_api.calls_to("POST", COMMENT_PATH)) == 1
    assert len(jira_api.calls_to("POST", TRANSITION_PATH)) == 1

    reread(session)
    ticket = ticket_of(session, remediation.id)
    assert ticket.status is S.SUCCEEDED
    assert ticket.stage == "closed"
    assert ticket.completed_at is not None
    assert actions(session).count("remediation.ticket_closed") == 1
    assert verify_database(session).ok


@pytest.mark.parametrize("lost", [COMMENT_PATH, TRANSITION_PATH])
def test_lost_answer_while_closing_acts_once(
    app: Steward,
    session: Session,
    jira_api: JiraStandIn,
    clients: SharedTicketClient,
    lost: str,
) -> None:
    remediation = queue(session, make_identity(session, external_id="acc-1"))
    ticket_worker(app, clients).run_once()
    revoke(app, "acc-1")
    jira_api.fail("POST", lost, kind="drop")

    start = utcnow()
    with time_machine.travel(start, tick=False):
        assert ticket_sync(app, clients).run_once().outcomes == {"retrying": 1}
    reread(session)
    ticket = ticket_of(session, remediation.id)
    assert ticket.status is S.OPEN
    assert ticket.attempts == 1
    reread(session)

    with time_machine.travel(start + timedelta(hours=1), tick=False):
        assert ticket_sync(app, clients).run_once().outcomes == {"closed": 1}
    issue = jira_api.issues["SEC-1"]
    assert len(issue.comments) == 1
    assert issue.status == "Done"
    assert len(jira_api.calls_to("POST", COMMENT_PATH)) == 1
    assert len(jira_api.calls_to("POST", TRANSITION_PATH)) == 1


def test_missing_done_transition_retries(
    database_url: str, jira_api: JiraStandIn
) -> None:
    app = create_app(jira_settings(database_url, jira_api, done_transition="Resolve"))
    clients = SharedTicketClient(app.settings.jira)
    try:
        with app.sessions() as session:
            remediation = queue(session, make_identity(session, external_id="acc-1"))
        ticket_worker(app, clients).run_once()
        revoke(app, "acc-1")
        assert ticket_sync(app, clients).run_once().outcomes == {"retrying": 1}
        with app.sessions() as session:
            ticket = ticket_of(session, remediation.id)
            assert ticket.status is S.OPEN
            assert "transition 'Resolve' is not available on SEC-1" in (
                ticket.last_error or ""
            )
            assert "Start Progress, Done" in (ticket.last_error or "")
        assert jira_api.issues["SEC-1"].status == "To Do"
    finally:
        clients.close()
        app.close()


def test_scope_reduction_confirmed_by_done_status(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    alice = make_person(session, "alice@example.com")
    identity = make_identity(session, owner=alice, state=IdentityState.OWNED)
    remediation = open_scope_reduction(
        session, identity, actor=ADMIN, reason="write access unused", deadline_days=30
    )
    session.commit()
    identity_id = identity.id

    start = utcnow()
    with time_machine.travel(start, tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"created": 1}
        sync = ticket_sync(app, clients)
        assert sync.run_once().outcomes == {"waiting": 1}
    issue = jira_api.issues["SEC-1"]
    assert issue.fields["summary"].startswith("Reduce the scope of NHI")

    jira_api.set_status("SEC-1", "Done")
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        assert sync.run_once().taken == 0
    reread(session)
    assert session.get_one(Remediation, remediation.id).status is S.OPEN
    reread(session)

    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        assert sync.run_once().outcomes == {"confirmed": 1}
        assert sync.run_once().taken == 0

    reread(session)
    parent = session.get_one(Remediation, remediation.id)
    assert parent.status is S.SUCCEEDED
    assert parent.outcome == "Jira ticket SEC-1 reached status Done"
    stored = session.get_one(Identity, identity_id)
    assert stored.state is IdentityState.OWNED
    assert stored.certified_until is not None
    confirmed = session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "remediation.confirmed")
    ).one()
    assert confirmed.actor == "system:jira"
    assert len(issue.comments) == 1
    assert "scope reduction was confirmed" in issue.comments[0]["body"]
    # The ticket was done already, so Steward applies no transition.
    assert jira_api.calls_to("POST", TRANSITION_PATH) == []
    assert ticket_of(session, remediation.id).stage == "closed"
    assert verify_database(session).ok


def test_manual_revocation_confirmed_by_done_status(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    identity = make_identity(session, source="saas-keys", kind="api_key")
    remediation = queue(session, identity)
    identity_id = identity.id
    # No connector revokes this source, so the revocation becomes manual.
    RemediationWorker(app, {}, worker_id="revoker").run_once()
    ticket_worker(app, clients).run_once()
    reread(session)
    assert session.get_one(Remediation, remediation.id).status is S.OPEN
    reread(session)

    description = jira_api.issues["SEC-1"].fields["description"]
    assert "Revoke the credential at the system that issued it" in description

    sync = ticket_sync(app, clients)
    assert sync.run_once().outcomes == {"waiting": 1}
    jira_api.set_status("SEC-1", "Closed")
    with time_machine.travel(utcnow() + timedelta(minutes=16), tick=False):
        assert sync.run_once().outcomes == {"confirmed": 1}

    reread(session)
    assert session.get_one(Remediation, remediation.id).status is S.SUCCEEDED
    assert session.get_one(Identity, identity_id).state is IdentityState.REVOKED
    (comment,) = jira_api.issues["SEC-1"].comments
    assert "the revocation was confirmed" in comment["body"]


def test_cancelled_remediation_commented_not_closed(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    remediation = queue(session, make_identity(session), approval_required=True)
    ticket_worker(app, clients).run_once()
    reread(session)
    cancel(
        session,
        session.get_one(Remediation, remediation.id),
        actor=ADMIN,
        settings=app.settings,
    )
    session.commit()

    assert ticket_sync(app, clients).run_once().outcomes == {"commented": 1}
    assert ticket_sync(app, clients).run_once().taken == 0
    issue = jira_api.issues["SEC-1"]
    assert issue.status == "To Do"
    (comment,) = issue.comments
    assert "was cancelled in Steward" in comment["body"]
    reread(session)
    ticket = ticket_of(session, remediation.id)
    assert ticket.status is S.CANCELLED
    assert ticket.stage == "noted"


def test_confirm_rejects_ticket_rows(
    app: Steward, session: Session, clients: SharedTicketClient
) -> None:
    remediation = queue(session, make_identity(session))
    ticket_worker(app, clients).run_once()
    reread(session)
    ticket = ticket_of(session, remediation.id)
    assert ticket.status is S.OPEN
    with pytest.raises(ConflictError, match="only revocations and scope"):
        confirm(session, ticket, actor=Actor.system("jira"), settings=app.settings)


def one_pass(workers: list[Any]) -> WorkerStats:
    """Run each worker once, in order, as one outbox pass does."""
    total = WorkerStats()
    for worker in workers:
        stats = worker.run_once()
        total.taken += stats.taken
        for outcome, count in stats.outcomes.items():
            total.outcomes[outcome] = total.outcomes.get(outcome, 0) + count
    return total


def test_worker_pass_revokes_and_closes_ticket(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    remediation = queue(session, make_identity(session, external_id="acc-9"))
    revoker = SetRevoker(active={"acc-9"})
    workers = [
        RemediationWorker(app, {"vault-main": revoker}.get, worker_id="w1"),
        *ticket_drainers(app, clients, worker_id="w1"),
    ]

    stats = one_pass(workers)
    assert stats.outcomes == {"revoked": 1, "created": 1, "closed": 1}
    assert jira_api.issues["SEC-1"].status == "Done"
    reread(session)
    assert session.get_one(Remediation, remediation.id).ticket_key == "SEC-1"
    assert ticket_of(session, remediation.id).status is S.SUCCEEDED


def test_rate_limit_pauses_both_jira_workers(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    first = queue(session, make_identity(session, external_id="acc-1"))
    ticket_worker(app, clients).run_once()
    revoke(app, "acc-1")
    second = queue(
        session, make_identity(session, external_id="acc-2"), approval_required=True
    )
    jira_api.fail(
        "POST", "/rest/api/2/issue", status=429, headers={"Retry-After": "30"}
    )
    workers = [
        RemediationWorker(app, {}.get, worker_id="w1"),
        *ticket_drainers(app, clients, worker_id="w1"),
    ]

    start = utcnow()
    passes: list[WorkerStats] = []
    for offset in (0, 31):
        with time_machine.travel(start + timedelta(seconds=offset), tick=False):
            passes.append(one_pass(workers))

    # The sync sent nothing while the ticket worker was throttled.
    assert passes[0].outcomes == {"throttled": 1}
    assert passes[1].outcomes == {"created": 1, "closed": 1}
    assert len(jira_api.calls_to("POST", COMMENT_PATH)) == 1
    reread(session)
    assert ticket_of(session, first.id).status is S.SUCCEEDED
    assert ticket_of(session, second.id).ticket_key == "SEC-2"
