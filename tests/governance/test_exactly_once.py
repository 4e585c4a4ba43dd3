"""Review decisions happen exactly once, however many callers race for them."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.campaign.decision import decide_review, decision_for
from governance.campaign.models import Decision
from governance.remediation.models import Remediation, RemediationKind
from governance.settings import Settings
from tests.support.deciding import ADMIN, decide_in_process, open_reviews

# (application active, scope minimal): certify, revoke, reduce scope.
ANSWERS = [(True, True), (False, True), (True, False)]
# Outbox rows each decision writes for its review.
EXPECTED_KINDS = {
    Decision.CERTIFY: {},
    Decision.REVOKE: {RemediationKind.REVOKE: 1, RemediationKind.TICKET: 1},
    Decision.REDUCE_SCOPE: {
        RemediationKind.SCOPE_REDUCTION: 1,
        RemediationKind.TICKET: 1,
    },
}


def _decided_events(session: Session, review_id: int) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "review.decided",
            AuditEvent.object_id == str(review_id),
        )
    )


def _remediation_kinds(session: Session, review_id: int) -> dict[RemediationKind, int]:
    rows = session.execute(
        sa.select(Remediation.kind, sa.func.count())
        .where(Remediation.review_id == review_id)
        .group_by(Remediation.kind)
    )
    return dict(rows.all())


def _assert_decided_once(
    app: Steward, review_id: int, results: list[tuple[Any, bool, Decision | None]]
) -> None:
    """Check the outcomes of racing calls and what they left in the database."""
    winners = [answer for answer, created, _ in results if created]
    assert len(winners) == 1, results
    decision = decision_for(*winners[0])
    returned = {returned for _, _, returned in results}
    assert returned == {decision}, results
    with app.session() as session:
        assert _decided_events(session, review_id) == 1
        assert _remediation_kinds(session, review_id) == EXPECTED_KINDS[decision]
        assert verify_database(session).ok


def test_racing_threads_decide_once(app: Steward, settings: Settings) -> None:
    with app.session() as session:
        [(review_id, _, _)] = open_reviews(session, settings, 1)
    callers = 8
    barrier = threading.Barrier(callers)

    def decide(number: int) -> tuple[Any, bool, Decision | None]:
        answer = ANSWERS[number % len(ANSWERS)]
        barrier.wait(timeout=30)
        with app.session() as session:
            outcome = decide_review(
                session,
                review_id,
                active=answer[0],
                minimal=answer[1],
                actor=ADMIN,
                settings=settings,
            )
            return answer, outcome.created, outcome.review.decision

    with ThreadPoolExecutor(max_workers=callers) as pool:
        results = list(pool.map(decide, range(callers)))

    _assert_decided_once(app, review_id, results)


def test_racing_processes_decide_once(
    app: Steward, settings: Settings, database_url: str
) -> None:
    with app.session() as session:
        [(review_id, _, _)] = open_reviews(session, settings, 1)
    callers = 4
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(callers)
    queue = context.Queue()
    processes = [
        context.Process(
            target=decide_in_process,
            args=(
                database_url,
                review_id,
                ANSWERS[number % len(ANSWERS)],
                barrier,
                queue,
            ),
        )
        for number in range(callers)
    ]
    for process in processes:
        process.start()
    try:
        raw = [queue.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()

    errors = [item for item in raw if item[0] == "error"]
    assert errors == []
    assert [process.exitcode for process in processes] == [0] * callers
    results = [
        (tuple(answer), created, Decision(value) if value else None)
        for answer, created, value in raw
    ]
    _assert_decided_once(app, review_id, results)


def test_second_decision_changes_nothing(app: Steward, settings: Settings) -> None:
    with app.session() as session:
        [(review_id, _, _)] = open_reviews(session, settings, 1)
    with app.session() as session:
        first = decide_review(
            session,
            review_id,
            active=False,
            minimal=True,
            actor=ADMIN,
            settings=settings,
        )
        assert first.created
    with app.session() as session:
        events_before = session.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent)
        )
        remediations_before = session.scalar(
            sa.select(sa.func.count()).select_from(Remediation)
        )

    for active, minimal in ANSWERS:
        with app.session() as session:
            again = decide_review(
                session,
                review_id,
                active=active,
                minimal=minimal,
                actor=ADMIN,
                settings=settings,
                comment="decided again",
            )
            assert not again.created
            assert again.review.decision is Decision.REVOKE
            assert again.review.comment is None

    with app.session() as session:
        events_after = session.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent)
        )
        remediations_after = session.scalar(
            sa.select(sa.func.count()).select_from(Remediation)
        )
        assert events_after == events_before
        assert remediations_after == remediations_before
        assert _decided_events(session, review_id) == 1
        assert verify_database(session).ok
