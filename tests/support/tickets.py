"""Helpers for the Jira ticket tests: settings, workers and arranging rows."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from connectors.base import IdentityRef, RevocationOutcome, RevocationResult
from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.identity.models import Identity
from governance.remediation.models import Remediation, RemediationKind
from governance.remediation.service import find_by_dedupe_key, queue_revocation
from governance.remediation.ticket_sync import TicketSync
from governance.remediation.tickets import ClientFactory, TicketWorker
from governance.remediation.worker import RetryPolicy
from governance.settings import Settings
from tests.support.jira_api import API_TOKEN, USER, JiraStandIn

ADMIN_EMAIL = "security@example.com"
ADMIN = Actor.person(ADMIN_EMAIL)
RETRY = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=10))
ISSUE_PATH = "/rest/api/2/issue"


def jira_settings(database_url: str, api: JiraStandIn, **jira: Any) -> Settings:
    """Return settings pointing Jira at the stand-in, with `jira` overrides."""
    options: dict[str, Any] = {
        "url": api.url,
        "user": USER,
        "api_token": API_TOKEN,
        "project": "SEC",
        "timeout_seconds": 5.0,
    }
    options.update(jira)
    return Settings(
        database_url=database_url,
        security={"admins": [ADMIN_EMAIL]},  # type: ignore[arg-type]
        jira=options,  # type: ignore[arg-type]
    )


def ticket_worker(
    app: Steward, clients: ClientFactory, worker_id: str = "test-tickets"
) -> TicketWorker:
    return TicketWorker(
        app,
        clients,
        worker_id=worker_id,
        retry=RETRY,
        rng=random.Random(7),  # noqa: S311 - jitter in a test
    )


def ticket_sync(app: Steward, clients: ClientFactory) -> TicketSync:
    return TicketSync(
        app,
        clients,
        worker_id="test-sync",
        retry=RETRY,
        rng=random.Random(7),  # noqa: S311 - jitter in a test
    )


def reread(session: Session) -> None:
    """End the session's transaction, so workers can write, and forget rows."""
    session.rollback()
    session.expire_all()


def queue(
    session: Session, identity: Identity, *, approval_required: bool = False
) -> Remediation:
    """Queue the revocation of `identity` (and so its ticket row) and commit."""
    remediation = queue_revocation(
        session,
        identity,
        actor=Actor.system("campaign"),
        action="test.revoke",
        reason="unused for 200 days",
        dedupe_key=f"test:{identity.id}",
        approval_required=approval_required,
    )
    session.commit()
    return remediation


def ticket_of(session: Session, remediation_id: int) -> Remediation:
    ticket = find_by_dedupe_key(session, f"ticket:{remediation_id}")
    assert ticket is not None
    return ticket


def notifications(session: Session) -> list[Remediation]:
    """Return the queued ticket_failed messages; review requests are left out."""
    return [
        row
        for row in session.scalars(
            sa.select(Remediation)
            .where(Remediation.kind == RemediationKind.NOTIFY)
            .order_by(Remediation.id)
        )
        if row.payload.get("template") == "ticket_failed"
    ]


def actions(session: Session) -> list[str]:
    return list(session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


@dataclass
class SetRevoker:
    """Holds active credentials in a set; revoking removes and checks them."""

    name: str = "memory"
    active: set[str] = field(default_factory=set)

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        was_active = identity.external_id in self.active
        self.active.discard(identity.external_id)
        outcome = (
            RevocationOutcome.REVOKED if was_active else RevocationOutcome.ALREADY_GONE
        )
        return RevocationResult(outcome, "verified gone")
