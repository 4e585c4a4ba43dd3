"""The ticket worker: opens one Jira ticket per remediation from the outbox.

Every remediation has one outbox row of kind `ticket` (written with it by
`service.queue_ticket`). The worker takes due rows like the remediation
worker does (FOR UPDATE SKIP LOCKED, a lock that expires), calls Jira
outside any transaction, and writes the outcome with an audit event.

A ticket row moves through these stages:

- no stage, status `pending`: nothing was sent yet, or the last create
  certainly failed.
- `creating`: a create was sent and no response arrived (a timeout, a
  dropped connection, or a worker that died mid-call). The next attempt
  searches for the remediation's unique label before creating again, so
  a retry never opens a second ticket.
- `created`, status `open`: the key is stored on the ticket row and on the
  remediation. `TicketSync` takes it from here.

Failures back off like revocations do. A 429 response waits for Retry-After
(zero means at once) and does not count as an attempt. A rejected request
(a 400 naming fields, rejected credentials) is reported once per distinct
error to the security channel as a `ticket_failed` notification. After
`max_attempts` failed attempts the row needs a human.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from connectors.errors import (
    ConnectorError,
    ConnectorOutcomeUnknownError,
    ConnectorRateLimitedError,
)
from connectors.jira.config import JiraConfig
from connectors.tickets import TicketDraft, TicketSystem
from governance.app import Steward
from governance.audit.service import Actor, record
from governance.clock import utcnow
from governance.remediation import ticket_content
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.notifications import Template
from governance.remediation.operations import is_paused
from governance.remediation.service import find_by_dedupe_key, queue_notification
from governance.remediation.worker import RetryPolicy, WorkerStats
from governance.settings import JiraSettings

logger = logging.getLogger(__name__)

S = RemediationStatus
STAGE_CREATING = "creating"
STAGE_CREATED = "created"
STAGE_CLOSED = "closed"
STAGE_NOTED = "noted"
# Maximum length of the error text kept in a notification's context.
NOTIFIED_ERROR_LIMIT = 500

ClientFactory = Callable[[], TicketSystem]


def jira_config(settings: JiraSettings) -> JiraConfig:
    """Return the Jira client's configuration; the settings must name a url."""
    if settings.url is None or settings.project is None:
        raise ValueError("jira.url and jira.project are required")
    return JiraConfig(
        url=settings.url,
        project=settings.project,
        issue_type=settings.issue_type,
        user=settings.user,
        api_token=settings.api_token,
        personal_access_token=settings.personal_access_token,
        labels=tuple(settings.labels),
        extra_fields=dict(settings.extra_fields),
        timeout_seconds=settings.timeout_seconds,
        verify_tls=settings.verify_tls,
        ca_bundle=settings.ca_bundle,
    )


class SharedTicketClient:
    """A factory of one Jira client, built on first use and shared by every job.

    The owner calls `close()` when the process stops.
    """

    def __init__(self, settings: JiraSettings) -> None:
        self.settings = settings
        self._client: TicketSystem | None = None

    def __call__(self) -> TicketSystem:
        if self._client is None:
            # Imported here so that the core loads the jira library only
            # when Jira is configured and used.
            from connectors.jira.client import JiraClient  # noqa: PLC0415

            self._client = JiraClient(jira_config(self.settings))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class Throttle:
    """The time until which Jira asked Steward to send nothing (Retry-After).

    Share one between the ticket worker and the sync, so that a 429 seen by
    one pauses both.
    """

    until: datetime | None = None

    def active(self) -> bool:
        return self.until is not None and utcnow() < self.until


class TicketJobs:
    """Shared base of the ticket worker and the ticket sync: the client, the
    lock, backoff, throttling and failure reports."""

    actor_name = "ticket-worker"

    def __init__(
        self,
        app: Steward,
        client_factory: ClientFactory,
        *,
        worker_id: str,
        batch_size: int = 50,
        lock_period: timedelta = timedelta(minutes=5),
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.app = app
        self.client_factory = client_factory
        self.worker_id = worker_id
        self.batch_size = batch_size
        self.lock_period = lock_period
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.actor = Actor.system(self.actor_name)
        self.throttle = throttle or Throttle()

    def _client(self) -> TicketSystem:
        return self.client_factory()

    def _may_start(self, session: Session) -> bool:
        if is_paused(session):
            logger.info("remediation is paused; no ticket taken")
            return False
        if self.throttle.active():
            logger.info(
                "Jira throttled Steward until %s; no ticket taken", self.throttle.until
            )
            return False
        return True

    def _lock(self, ticket: Remediation, now: datetime) -> None:
        ticket.status = S.IN_PROGRESS
        ticket.locked_by = self.worker_id
        ticket.locked_until = now + self.lock_period

    def _locked_row(self, session: Session, ticket_id: int) -> Remediation | None:
        """Return the row locked for update while this worker still holds it."""
        ticket = session.scalars(
            sa.select(Remediation).where(Remediation.id == ticket_id).with_for_update()
        ).one()
        if ticket.status is not S.IN_PROGRESS or ticket.locked_by != self.worker_id:
            logger.warning(
                "ticket row %s was taken over by %s; outcome dropped",
                ticket_id,
                ticket.locked_by,
            )
            return None
        ticket.locked_by = None
        ticket.locked_until = None
        return ticket

    def _defer(
        self,
        jobs: Sequence[tuple[int, RemediationStatus, str | None]],
        stats: WorkerStats,
    ) -> None:
        """Put taken rows back untouched until the throttling ends."""
        with self.app.session() as session:
            for ticket_id, status, stage in jobs:
                ticket = self._locked_row(session, ticket_id)
                if ticket is None:
                    continue
                ticket.status = status
                ticket.stage = stage
                ticket.next_attempt_at = self.throttle.until
                stats.count("deferred")

    def _retry_or_fail(
        self,
        session: Session,
        ticket: Remediation,
        error: ConnectorError,
        *,
        waiting: RemediationStatus,
        stage: str | None,
        remediation_id: int,
    ) -> str:
        """Record a failed call: back off, or give up after the last attempt."""
        now = utcnow()
        message = str(error)
        ticket.stage = stage
        ticket.last_error = message
        if isinstance(error, ConnectorRateLimitedError):
            delay = (
                timedelta(seconds=error.retry_after)
                if error.retry_after is not None
                else self.retry.delay(ticket.attempts + 1, self.rng)
            )
            self.throttle.until = now + delay
            ticket.status = waiting
            ticket.next_attempt_at = now + delay
            logger.warning(
                "Jira throttled ticket row %s; retrying in %s", ticket.id, delay
            )
            self._event(session, ticket, "ticket_throttled", message, remediation_id)
            return "throttled"

        ticket.attempts += 1
        if not error.retryable:
            self._report(session, ticket, remediation_id, message)
        if ticket.attempts < self.retry.max_attempts:
            delay = self.retry.delay(ticket.attempts, self.rng)
            ticket.status = waiting
            ticket.next_attempt_at = now + delay
            logger.warning(
                "ticket row %s (remediation %s) attempt %s failed (%s); retrying in %s",
                ticket.id,
                remediation_id,
                ticket.attempts,
                message,
                delay,
            )
            self._event(session, ticket, "ticket_retrying", message, remediation_id)
            return "retrying"

        ticket.status = S.NEEDS_HUMAN
        logger.error(
            "ticket row %s (remediation %s) needs a human after %s attempts: %s",
            ticket.id,
            remediation_id,
            ticket.attempts,
            message,
        )
        self._report(
            session,
            ticket,
            remediation_id,
            f"gave up after {ticket.attempts} attempts: {message}",
        )
        self._event(session, ticket, "ticket_needs_human", message, remediation_id)
        return "needs_human"

    def _report(
        self, session: Session, ticket: Remediation, remediation_id: int, message: str
    ) -> None:
        """Queue one `ticket_failed` message to the security channel per error."""
        digest = hashlib.sha256(message.encode()).hexdigest()[:16]
        dedupe_key = f"ticket_failed:{ticket.id}:{digest}"
        if find_by_dedupe_key(session, dedupe_key) is not None:
            return
        queue_notification(
            session,
            actor=self.actor,
            dedupe_key=dedupe_key,
            recipient=None,
            template=Template.TICKET_FAILED.value,
            context={
                "remediation_id": remediation_id,
                "ticket_id": ticket.id,
                "error": message[:NOTIFIED_ERROR_LIMIT],
            },
            identity_id=ticket.identity_id,
        )
        logger.error(
            "ticket row %s (remediation %s) failed: %s; reported to security",
            ticket.id,
            remediation_id,
            message,
        )

    def _event(
        self,
        session: Session,
        ticket: Remediation,
        outcome: str,
        reason: str,
        remediation_id: int,
        **details: Any,
    ) -> None:
        record(
            session,
            actor=self.actor,
            action=f"remediation.{outcome}",
            object_type="remediation",
            object_id=str(ticket.id),
            before_state=S.IN_PROGRESS.value,
            after_state=ticket.status.value,
            reason=reason,
            details={
                "remediation_id": remediation_id,
                "identity_id": ticket.identity_id,
                "ticket_key": ticket.ticket_key,
                "attempts": ticket.attempts,
                "worker": self.worker_id,
                **details,
            },
        )


def mark_unavailable(app: Steward, reason: str) -> int:
    """Write `reason` on pending ticket rows that lack it; return how many.

    Rows already carrying it are not touched again, so a worker without Jira
    writes nothing on later passes. The rows stay due and are sent once Jira
    is configured.
    """
    with app.session() as session:
        result = session.execute(
            sa.update(Remediation)
            .where(
                Remediation.kind == RemediationKind.TICKET,
                Remediation.status == S.PENDING,
                Remediation.ticket_key.is_(None),
                sa.or_(
                    Remediation.last_error.is_(None),
                    Remediation.last_error != reason,
                ),
            )
            .values(last_error=reason, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        logger.warning("%s: %s ticket(s) wait in the outbox", reason, count)
    return count


@dataclass(frozen=True)
class _CreateJob:
    ticket_id: int
    remediation_id: int
    previous_status: RemediationStatus
    previous_stage: str | None
    search_first: bool
    draft: TicketDraft


@dataclass(frozen=True)
class _Created:
    key: str
    found: bool


class TicketWorker(TicketJobs):
    """Opens the ticket of each remediation whose ticket row is due."""

    def run_once(self) -> WorkerStats:
        """Take due ticket rows and open each ticket; return what happened."""
        stats = WorkerStats()
        reason = self.app.settings.jira.unavailable_reason()
        if reason is not None:
            if mark_unavailable(self.app, reason):
                stats.count("not_sent")
            return stats
        jobs = self._claim()
        stats.taken = len(jobs)
        for index, job in enumerate(jobs):
            if self.throttle.active():
                rest = [
                    (item.ticket_id, item.previous_status, item.previous_stage)
                    for item in jobs[index:]
                ]
                self._defer(rest, stats)
                break
            stats.count(self._carry_out(job))
        return stats

    def _claim(self) -> list[_CreateJob]:
        now = utcnow()
        with self.app.session() as session:
            if not self._may_start(session):
                return []
            due = sa.or_(
                sa.and_(
                    Remediation.status == S.PENDING, Remediation.next_attempt_at <= now
                ),
                sa.and_(
                    Remediation.status == S.IN_PROGRESS, Remediation.locked_until < now
                ),
            )
            statement = (
                sa.select(Remediation)
                .where(
                    Remediation.kind == RemediationKind.TICKET,
                    Remediation.ticket_key.is_(None),
                    due,
                )
                .order_by(Remediation.next_attempt_at, Remediation.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            jobs = []
            for ticket in session.scalars(statement).all():
                parent = self._parent(session, ticket)
                if parent is None:
                    continue
                previous_status, previous_stage = ticket.status, ticket.stage
                self._lock(ticket, now)
                ticket.stage = STAGE_CREATING
                jobs.append(
                    _CreateJob(
                        ticket_id=ticket.id,
                        remediation_id=parent.id,
                        previous_status=(
                            S.PENDING
                            if previous_status is S.IN_PROGRESS
                            else previous_status
                        ),
                        previous_stage=previous_stage,
                        search_first=previous_stage == STAGE_CREATING,
                        draft=ticket_content.draft(session, parent),
                    )
                )
        return jobs

    def _parent(self, session: Session, ticket: Remediation) -> Remediation | None:
        remediation_id = ticket.payload.get("remediation_id")
        parent = (
            session.get(Remediation, remediation_id)
            if isinstance(remediation_id, int)
            else None
        )
        if parent is None:
            ticket.status = S.NEEDS_HUMAN
            ticket.last_error = (
                f"the remediation this ticket records ({remediation_id!r}) is missing"
            )
            logger.error("ticket row %s: %s", ticket.id, ticket.last_error)
            record(
                session,
                actor=self.actor,
                action="remediation.ticket_needs_human",
                object_type="remediation",
                object_id=str(ticket.id),
                before_state=S.PENDING.value,
                after_state=S.NEEDS_HUMAN.value,
                reason=ticket.last_error,
            )
        return parent

    def _carry_out(self, job: _CreateJob) -> str:
        try:
            created = self._send(job)
        except ConnectorError as error:
            return self._record_failure(job, error)
        except Exception as error:  # a client bug must not stop the worker
            logger.exception("ticket row %s: unexpected failure", job.ticket_id)
            return self._record_failure(
                job,
                ConnectorOutcomeUnknownError(
                    f"unexpected {type(error).__name__}: {error}"
                ),
            )
        return self._record_created(job, created)

    def _send(self, job: _CreateJob) -> _Created:
        client = self._client()
        if job.search_first:
            keys = client.find(job.draft.label)
            if len(keys) > 1:
                logger.warning(
                    "%s issues carry %s: %s; keeping the oldest",
                    len(keys),
                    job.draft.label,
                    ", ".join(keys),
                )
            if keys:
                return _Created(keys[0], found=True)
        return _Created(client.create(job.draft), found=False)

    def _record_created(self, job: _CreateJob, created: _Created) -> str:
        with self.app.session() as session:
            ticket = self._locked_row(session, job.ticket_id)
            if ticket is None:
                return "dropped"
            ticket.ticket_key = created.key
            ticket.status = S.OPEN
            ticket.stage = STAGE_CREATED
            ticket.last_error = None
            ticket.next_attempt_at = utcnow()
            ticket.outcome = (
                f"found {created.key}, opened by an earlier attempt"
                if created.found
                else f"opened {created.key}"
            )
            parent = session.get(Remediation, job.remediation_id)
            if parent is not None:
                parent.ticket_key = created.key
            self._event(
                session,
                ticket,
                "ticket_created",
                ticket.outcome,
                job.remediation_id,
                found=created.found,
            )
        logger.info("ticket %s records remediation %s", created.key, job.remediation_id)
        return "found" if created.found else "created"

    def _record_failure(self, job: _CreateJob, error: ConnectorError) -> str:
        # Only an unknown outcome can have opened the ticket; after any other
        # failure the next attempt creates without searching first.
        stage = (
            STAGE_CREATING if isinstance(error, ConnectorOutcomeUnknownError) else None
        )
        with self.app.session() as session:
            ticket = self._locked_row(session, job.ticket_id)
            if ticket is None:
                return "dropped"
            return self._retry_or_fail(
                session,
                ticket,
                error,
                waiting=S.PENDING,
                stage=stage,
                remediation_id=job.remediation_id,
            )
