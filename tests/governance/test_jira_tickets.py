"""The ticket worker against the Jira stand-in, with the real `jira` client."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from click.testing import CliRunner
from sqlalchemy.orm import Session

from governance.app import Steward, create_app
from governance.audit.export import verify_database
from governance.business_entity.models import BusinessEntity, EntityType
from governance.campaign.decision import decide_review
from governance.campaign.models import Decision, Review, ReviewStatus
from governance.cli.main import cli
from governance.clock import utcnow
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.ticket_sync import TicketSync
from governance.remediation.tickets import SharedTicketClient
from governance.remediation.worker import RemediationWorker
from governance.settings import Settings
from tests.factories import make_identity, make_person
from tests.support.deciding import open_reviews
from tests.support.jira_api import API_TOKEN, FieldMeta, JiraStandIn
from tests.support.tickets import (
    ADMIN,
    ISSUE_PATH,
    SetRevoker,
    actions,
    jira_settings,
    notifications,
    queue,
    reread,
    ticket_of,
    ticket_worker,
)

S = RemediationStatus
SEARCH_PATH = "/rest/api/2/search(/jql)?"


@pytest.fixture
def jira_api(request: pytest.FixtureRequest) -> Iterator[JiraStandIn]:
    deployment = getattr(request, "param", "Server")
    with JiraStandIn(deployment=deployment) as api:
        yield api


@pytest.fixture
def settings(database_url: str, jira_api: JiraStandIn) -> Settings:
    return jira_settings(database_url, jira_api)


@pytest.fixture
def clients(app: Steward) -> Iterator[SharedTicketClient]:
    shared = SharedTicketClient(app.settings.jira)
    yield shared
    shared.close()


def test_one_ticket_per_remediation(
    app: Steward,
    session: Session,
    jira_api: JiraStandIn,
    clients: SharedTicketClient,
) -> None:
    alice = make_person(session, "alice@example.com", display_name="Alice Doe")
    entity = BusinessEntity(
        type=EntityType.APPLICATION, key="payments", name="Payments"
    )
    first = make_identity(
        session, name="payments-deployer", external_id="accessor-abc", owner=alice
    )
    first.entities.append(entity)
    second = make_identity(
        session, name="ci-admin", external_id="accessor-def", tier=RiskTier.PRIVILEGED
    )
    revoke_first = queue(session, first)
    revoke_second = queue(session, second)

    stats = ticket_worker(app, clients).run_once()
    assert stats.taken == 2
    assert stats.outcomes == {"created": 2}
    assert ticket_worker(app, clients).run_once().taken == 0
    assert len(jira_api.calls_to("POST", ISSUE_PATH)) == 2
    assert sorted(jira_api.issues) == ["SEC-1", "SEC-2"]

    reread(session)
    for remediation in (revoke_first, revoke_second):
        ticket = ticket_of(session, remediation.id)
        assert ticket.status is S.OPEN
        assert ticket.stage == "created"
        assert ticket.ticket_key is not None
        parent = session.get_one(Remediation, remediation.id)
        assert parent.ticket_key == ticket.ticket_key
        issue = jira_api.issues[ticket.ticket_key]
        assert issue.fields["labels"] == [
            "steward",
            f"steward-remediation-{remediation.id}",
        ]

    issue = jira_api.issues[str(ticket_of(session, revoke_first.id).ticket_key)]
    assert issue.fields["summary"] == "Revoke NHI payments-deployer (vault-main)"
    description = issue.fields["description"]
    assert "accessor-abc" in description
    assert "Alice Doe (alice@example.com)" in description
    assert "application payments (Payments)" in description
    assert "unused for 200 days" in description
    assert f"Remediation: {revoke_first.id} (revoke)" in description
    assert actions(session).count("remediation.ticket_created") == 2
    assert verify_database(session).ok


@pytest.mark.parametrize(
    ("jira_api", "fault"),
    [("Server", "delay"), ("Server", "drop"), ("Cloud", "delay"), ("Cloud", "drop")],
    indirect=["jira_api"],
)
def test_lost_answer_then_retry_opens_one_ticket(
    app: Steward, session: Session, jira_api: JiraStandIn, fault: str
) -> None:
    # A short timeout, so that a held response times out quickly.
    clients = SharedTicketClient(
        app.settings.jira.model_copy(update={"timeout_seconds": 0.5})
    )
    remediation = queue(session, make_identity(session))
    jira_api.fail("POST", ISSUE_PATH, kind=fault)

    start = utcnow()
    with time_machine.travel(start, tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"retrying": 1}
    assert len(jira_api.issues) == 1  # Jira did create it

    reread(session)
    ticket = ticket_of(session, remediation.id)
    assert ticket.status is S.PENDING
    assert ticket.stage == "creating"
    assert ticket.ticket_key is None
    assert ticket.attempts == 1
    assert "may have taken effect" in (ticket.last_error or "")
    reread(session)

    with time_machine.travel(start + timedelta(hours=1), tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"found": 1}
    clients.close()

    assert list(jira_api.issues) == ["SEC-1"]
    assert len(jira_api.calls_to("POST", ISSUE_PATH)) == 1
    assert len(jira_api.calls_to("GET", SEARCH_PATH)) == 1
    reread(session)
    ticket = ticket_of(session, remediation.id)
    assert ticket.status is S.OPEN
    assert ticket.ticket_key == "SEC-1"
    assert session.get_one(Remediation, remediation.id).ticket_key == "SEC-1"


def test_gateway_timeout_searches_then_creates(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    remediation = queue(session, make_identity(session))
    jira_api.fail("POST", ISSUE_PATH, status=504)

    start = utcnow()
    with time_machine.travel(start, tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"retrying": 1}
    assert jira_api.issues == {}
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"created": 1}

    assert len(jira_api.calls_to("GET", SEARCH_PATH)) == 1
    assert len(jira_api.calls_to("POST", ISSUE_PATH)) == 2
    assert list(jira_api.issues) == ["SEC-1"]
    reread(session)
    assert ticket_of(session, remediation.id).ticket_key == "SEC-1"


def test_worker_died_after_sending_searches_first(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    remediation = queue(session, make_identity(session))
    start = utcnow()
    with time_machine.travel(start, tick=False):
        dying = ticket_worker(app, clients, worker_id="dying")
        (job,) = dying._claim()
        # The create reaches Jira, then the process dies before recording it.
        clients().create(job.draft)

    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert ticket_worker(app, clients).run_once().taken == 0
    with time_machine.travel(start + timedelta(minutes=6), tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"found": 1}

    assert list(jira_api.issues) == ["SEC-1"]
    reread(session)
    assert ticket_of(session, remediation.id).ticket_key == "SEC-1"


def test_field_error_keeps_decision_and_reports_once(
    app: Steward,
    session: Session,
    settings: Settings,
    jira_api: JiraStandIn,
    clients: SharedTicketClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jira_api.projects["SEC"]["Task"].append(
        FieldMeta("customfield_10010", "Team", required=True)
    )
    ((review_id, identity_id, external_id),) = open_reviews(session, settings, 1)
    decide_review(
        session, review_id, active=False, minimal=True, actor=ADMIN, settings=settings
    )
    session.commit()
    revocation = session.scalars(
        sa.select(Remediation).where(Remediation.kind == RemediationKind.REVOKE)
    ).one()
    reread(session)

    start = utcnow()
    with (
        caplog.at_level(logging.ERROR, logger="governance.remediation.tickets"),
        time_machine.travel(start, tick=False),
    ):
        assert ticket_worker(app, clients).run_once().outcomes == {"retrying": 1}
    assert jira_api.issues == {}
    assert any("customfield_10010" in message for message in caplog.messages)

    reread(session)
    ticket = ticket_of(session, revocation.id)
    assert ticket.status is S.PENDING
    assert ticket.stage is None
    assert ticket.attempts == 1
    assert "field customfield_10010: Team is required." in (ticket.last_error or "")
    review = session.get_one(Review, review_id)
    assert review.status is ReviewStatus.DECIDED
    assert review.decision is Decision.REVOKE
    assert session.get_one(Remediation, revocation.id).status is S.PENDING
    identity = session.get_one(Identity, identity_id)
    assert identity.state is IdentityState.REVOCATION_PENDING

    (message,) = notifications(session)
    assert message.payload["template"] == "ticket_failed"
    assert message.payload["recipient"] is None
    assert message.payload["context"]["remediation_id"] == revocation.id
    assert message.payload["context"]["ticket_id"] == ticket.id
    assert "customfield_10010" in message.payload["context"]["error"]
    reread(session)

    with time_machine.travel(start + timedelta(hours=1), tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"retrying": 1}
    reread(session)
    assert ticket_of(session, revocation.id).attempts == 2
    assert len(notifications(session)) == 1
    reread(session)

    # The revocation goes ahead whatever happens to its ticket.
    revoker = SetRevoker(active={external_id})
    RemediationWorker(app, {"vault-main": revoker}, worker_id="revoker").run_once()
    reread(session)
    assert session.get_one(Remediation, revocation.id).status is S.SUCCEEDED
    assert session.get_one(Identity, identity_id).state is IdentityState.REVOKED
    reread(session)

    with time_machine.travel(start + timedelta(hours=3), tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"needs_human": 1}
    reread(session)
    assert ticket_of(session, revocation.id).status is S.NEEDS_HUMAN
    reports = notifications(session)
    assert len(reports) == 2
    assert "gave up after 3 attempts" in reports[1].payload["context"]["error"]
    assert verify_database(session).ok


@pytest.mark.parametrize("retry_after", [0, 30])
def test_rate_limit_honours_retry_after(
    app: Steward,
    session: Session,
    jira_api: JiraStandIn,
    clients: SharedTicketClient,
    retry_after: int,
) -> None:
    first = queue(session, make_identity(session))
    second = queue(session, make_identity(session))
    jira_api.fail(
        "POST",
        ISSUE_PATH,
        status=429,
        headers={"Retry-After": str(retry_after)},
        body={"errorMessages": ["Rate limit exceeded."]},
    )
    worker = ticket_worker(app, clients)

    start = utcnow()
    with time_machine.travel(start, tick=False):
        stats = worker.run_once()
        reread(session)
        throttled = ticket_of(session, first.id)
        assert throttled.status is S.PENDING
        assert throttled.attempts == 0
        assert throttled.next_attempt_at == start + timedelta(seconds=retry_after)
        assert "Rate limit exceeded." in (throttled.last_error or "")
        reread(session)
        if retry_after == 0:
            assert stats.outcomes == {"throttled": 1, "created": 1}
            assert worker.run_once().outcomes == {"created": 1}
        else:
            # Nothing more goes to Jira until Retry-After has passed.
            assert stats.outcomes == {"throttled": 1, "deferred": 1}
            assert len(jira_api.calls_to("POST", ISSUE_PATH)) == 1
            assert worker.run_once().taken == 0
            assert ticket_worker(app, clients, "other").run_once().taken == 0
            assert len(jira_api.calls_to("POST", ISSUE_PATH)) == 1

    with time_machine.travel(start + timedelta(seconds=retry_after + 1), tick=False):
        later = worker.run_once()
    if retry_after:
        assert later.outcomes == {"created": 2}
    assert sorted(jira_api.issues) == ["SEC-1", "SEC-2"]
    reread(session)
    assert ticket_of(session, second.id).attempts == 0


def test_server_error_backs_off(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    remediation = queue(session, make_identity(session))
    jira_api.fail("POST", ISSUE_PATH, status=503, headers={"Retry-After": "1"})

    start = utcnow()
    with time_machine.travel(start, tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"retrying": 1}
        assert ticket_worker(app, clients).run_once().taken == 0
    # The library's own retry is off: the 503 was sent once.
    assert len(jira_api.calls_to("POST", ISSUE_PATH)) == 1
    reread(session)
    ticket = ticket_of(session, remediation.id)
    assert ticket.stage is None
    assert ticket.attempts == 1
    assert ticket.next_attempt_at is not None
    assert start + timedelta(seconds=5) <= ticket.next_attempt_at
    assert ticket.next_attempt_at <= start + timedelta(seconds=10)
    assert notifications(session) == []
    reread(session)

    with time_machine.travel(start + timedelta(seconds=11), tick=False):
        assert ticket_worker(app, clients).run_once().outcomes == {"created": 1}
    assert jira_api.calls_to("GET", SEARCH_PATH) == []


def test_two_workers_open_each_ticket_once(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    for _ in range(12):
        queue(session, make_identity(session))
    shared = [SharedTicketClient(app.settings.jira) for _ in range(2)]
    workers = [
        ticket_worker(app, client, f"worker-{number}")
        for number, client in enumerate(shared)
    ]
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        workers[index].run_once()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for client in shared:
        client.close()

    labels = [issue.fields["labels"][-1] for issue in jira_api.issues.values()]
    assert len(labels) == 12
    assert len(set(labels)) == 12
    reread(session)
    tickets = session.scalars(
        sa.select(Remediation).where(Remediation.kind == RemediationKind.TICKET)
    ).all()
    assert {ticket.status for ticket in tickets} == {S.OPEN}


def test_no_secret_or_token_in_any_body(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    identity = make_identity(
        session,
        name="vault-token",
        kind="token",
        external_id="accessor-visible",
        description="token hvs.CAESIDescriptionSecret",
        attributes={"token_id": "s.AttributeSecretValue"},
    )
    remediation = queue(session, identity)
    ticket_worker(app, clients).run_once()
    RemediationWorker(app, {"vault-main": SetRevoker()}, worker_id="r").run_once()
    assert ticket_sync_once(app, clients) == {"closed": 1}

    bodies = list(jira_api.bodies())
    assert any("accessor-visible" in body for body in bodies)
    for body in bodies:
        assert "hvs.CAESIDescriptionSecret" not in body
        assert "AttributeSecretValue" not in body
        assert API_TOKEN not in body
    assert all(
        (call.authorization or "").startswith("Basic ") for call in jira_api.calls
    )
    reread(session)
    assert ticket_of(session, remediation.id).stage == "closed"


def ticket_sync_once(app: Steward, clients: SharedTicketClient) -> dict[str, int]:
    return TicketSync(app, clients, worker_id="sync").run_once().outcomes


@pytest.mark.parametrize(
    ("jira", "reason"),
    [
        ({}, "Jira is not configured"),
        ({"enabled": False}, "Jira is disabled (jira.enabled is false)"),
    ],
)
def test_without_jira_tickets_wait(
    database_url: str,
    jira_api: JiraStandIn,
    jira: dict[str, object],
    reason: str,
) -> None:
    if jira:
        settings = jira_settings(database_url, jira_api, **jira)
    else:
        settings = Settings(database_url=database_url)
    app = create_app(settings)
    built: list[object] = []

    def factory() -> SharedTicketClient:
        built.append(1)
        raise AssertionError("no client may be built without Jira")

    try:
        with app.sessions() as session:
            remediation = queue(session, make_identity(session))
            worker = ticket_worker(app, factory)  # type: ignore[arg-type]
            assert worker.run_once().outcomes == {"not_sent": 1}
            reread(session)
            ticket = ticket_of(session, remediation.id)
            stamped = ticket.updated_at
            assert ticket.status is S.PENDING
            assert ticket.attempts == 0
            assert ticket.last_error == reason
            reread(session)

            assert worker.run_once().outcomes == {}
            assert TicketSync(app, factory, worker_id="s").run_once().taken == 0  # type: ignore[arg-type]
            reread(session)
            assert ticket_of(session, remediation.id).updated_at == stamped
        assert built == []
        assert jira_api.calls == []

        listing = CliRunner().invoke(
            cli,
            ["remediation", "list", "--status", "pending"],
            env={"STEWARD_DATABASE_URL": database_url},
            catch_exceptions=False,
        )
        assert listing.exit_code == 0
        assert reason[:40] in listing.output
    finally:
        app.close()


def test_description_escapes_wiki_markup(
    app: Steward, session: Session, jira_api: JiraStandIn, clients: SharedTicketClient
) -> None:
    name = "deploy [click|https://evil.example] {code} !img.png!"
    remediation = queue(session, make_identity(session, name=name))
    ticket_worker(app, clients).run_once()

    reread(session)
    key = str(ticket_of(session, remediation.id).ticket_key)
    fields = jira_api.issues[key].fields
    assert fields["summary"] == f"Revoke NHI {name} (vault-main)"
    assert (
        r"* Name: deploy \[click\|https://evil.example\] \{code\} \!img.png\!"
        in fields["description"]
    )
