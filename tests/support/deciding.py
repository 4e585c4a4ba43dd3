"""Helpers for the exactly-once tests: a due review, and deciding it in a process."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.audit.service import Actor
from governance.campaign.models import Review
from governance.campaign.service import start_campaign
from governance.clock import utcnow
from governance.identity.models import Identity
from governance.settings import Settings
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")
ADMIN_EMAIL = "security@example.com"


def open_reviews(
    session: Session, settings: Settings, count: int, *, source: str = "vault-main"
) -> list[tuple[int, int, str]]:
    """Open a campaign over `count` new owned identities and commit.

    Returns (review id, identity id, external id) per identity, in id order.
    """
    owner = make_person(session)
    due = utcnow() - timedelta(days=1)
    for _ in range(count):
        make_identity(session, owner=owner, review_due_at=due, source=source)
    session.commit()
    campaign = start_campaign(session, actor=ADMIN, settings=settings, source=source)
    session.commit()
    rows = session.execute(
        sa.select(Review.id, Review.identity_id)
        .where(Review.campaign_id == campaign.id)
        .order_by(Review.identity_id)
    ).all()
    external = dict(session.execute(sa.select(Identity.id, Identity.external_id)).all())
    return [(row.id, row.identity_id, external[row.identity_id]) for row in rows]


def decide_in_process(
    database_url: str,
    review_id: int,
    answer: tuple[bool, bool],
    barrier: Any,
    results: multiprocessing.Queue[Any],
) -> None:
    """Decide a review from a fresh process; put (created, decision) on `results`.

    Runs in a child started with the spawn method, so it builds its own app.
    An error is put on the queue as ("error", text) instead.
    """
    from governance.app import create_app  # noqa: PLC0415
    from governance.campaign.decision import decide_review  # noqa: PLC0415

    app = create_app(
        Settings(
            database_url=database_url,
            security={"admins": [ADMIN_EMAIL]},  # type: ignore[arg-type]
        )
    )
    try:
        active, minimal = answer
        barrier.wait(timeout=60)
        with app.session() as session:
            outcome = decide_review(
                session,
                review_id,
                active=active,
                minimal=minimal,
                actor=ADMIN,
                settings=app.settings,
            )
            decision = outcome.review.decision
            created = outcome.created
        results.put((answer, created, decision.value if decision else None))
    except Exception as error:  # reported to the parent, which fails the test
        results.put(("error", f"{type(error).__name__}: {error}", None))
    finally:
        app.close()
