"""The Jira sync: closes tickets of finished remediations and confirms manual ones.

It takes ticket rows that have a key (status `open`, or `pending` after an
operator's retry) whose remediation calls for work in Jira:

- verified (succeeded or already gone): add a comment and apply the done
  transition, then mark the ticket row succeeded with stage `closed`.
- cancelled or rejected: add a comment saying nothing changed, then mark
  the ticket row cancelled with stage `noted`. The issue is left open for
  people to close.
- open and done outside Steward (a manual revocation, a scope reduction, or
  a revocation whose source has no connector): read the issue's status
  every `jira.poll_interval_minutes`. When it is one of `jira.done_statuses`,
  confirm the remediation as the system actor `system:jira`, then close the
  ticket as above.

Each step reads before it writes, so a retry after a lost answer or a crash
never comments twice: a comment is added only when no comment carries its
marker, and the transition is applied only while the status is not done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from connectors.errors import ConnectorError, ConnectorOutcomeUnknownError
from connectors.tickets import TicketSystem
from governance.audit.service import Actor
from governance.clock import utcnow
from governance.errors import ConflictError
from governance.remediation import ticket_content
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.operations import confirm, find_remediation
from governance.remediation.tickets import (
    STAGE_CLOSED,
    STAGE_CREATED,
    STAGE_NOTED,
    TicketJobs,
)
from governance.remediation.worker import WorkerStats

logger = logging.getLogger(__name__)

S = RemediationStatus
JIRA_ACTOR = Actor.system("jira")
VERIFIED = frozenset({S.SUCCEEDED, S.ALREADY_GONE})
ENDED = frozenset({S.CANCELLED, S.REJECTED})
# Kinds whose open remediation waits for work done outside Steward.
MANUAL_KINDS = frozenset(
    {
        RemediationKind.MANUAL_REVOKE,
        RemediationKind.SCOPE_REDUCTION,
        RemediationKind.REVOKE,
    }
)


class SyncAction(StrEnum):
    """The work that one taken ticket row needs."""

    CLOSE = "close"
    NOTE_END = "note_end"
    POLL = "poll"


@dataclass(frozen=True)
class _SyncJob:
    ticket_id: int
    remediation_id: int
    key: str
    action: SyncAction
    previous_status: RemediationStatus
    marker: str
    comment: str


class TicketSync(TicketJobs):
    """Keeps Jira tickets and their remediations in step, in both directions."""

    actor_name = "ticket-sync"

    def run_once(self) -> WorkerStats:
        """Take ticket rows with work in Jira and carry it out; return what happened."""
        stats = WorkerStats()
        if self.app.settings.jira.unavailable_reason() is not None:
            return stats
        jobs = self._claim()
        stats.taken = len(jobs)
        for index, job in enumerate(jobs):
            if self.throttle.active():
                rest = [
                    (item.ticket_id, item.previous_status, STAGE_CREATED)
                    for item in jobs[index:]
                ]
                self._defer(rest, stats)
                break
            stats.count(self._carry_out(job))
        return stats

    def _done(self, status: str) -> bool:
        done = {name.casefold() for name in self.app.settings.jira.done_statuses}
        return status.casefold() in done

    # Taking rows

    def _claim(self) -> list[_SyncJob]:
        now = utcnow()
        parent = aliased(Remediation)
        link = Remediation.dedupe_key == sa.literal("ticket:") + sa.cast(
            parent.id, sa.String
        )
        due = sa.or_(
            sa.and_(
                Remediation.status.in_([S.OPEN, S.PENDING]),
                Remediation.next_attempt_at <= now,
            ),
            sa.and_(
                Remediation.status == S.IN_PROGRESS, Remediation.locked_until < now
            ),
        )
        needs_jira = sa.or_(
            parent.status.in_(sorted(VERIFIED | ENDED)),
            sa.and_(parent.status == S.OPEN, parent.kind.in_(sorted(MANUAL_KINDS))),
        )
        statement = (
            sa.select(Remediation, parent)
            .join(parent, link)
            .where(
                Remediation.kind == RemediationKind.TICKET,
                Remediation.ticket_key.is_not(None),
                due,
                needs_jira,
            )
            .order_by(Remediation.next_attempt_at, Remediation.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True, of=Remediation)
        )
        with self.app.session() as session:
            if not self._may_start(session):
                return []
            jobs = []
            for ticket, remediation in session.execute(statement).all():
                jobs.append(self._job(ticket, remediation))
                self._lock(ticket, now)
        return jobs

    def _job(self, ticket: Remediation, remediation: Remediation) -> _SyncJob:
        if remediation.status in VERIFIED:
            action = SyncAction.CLOSE
            marker = ticket_content.verified_marker(remediation.id)
            comment = ticket_content.verified_comment(remediation)
        elif remediation.status in ENDED:
            action = SyncAction.NOTE_END
            marker = ticket_content.ended_marker(remediation.id, remediation.status)
            comment = ticket_content.ended_comment(remediation)
        else:
            # The comment is written after the confirmation, which sets the
            # outcome it reports.
            action = SyncAction.POLL
            marker = ticket_content.verified_marker(remediation.id)
            comment = ""
        return _SyncJob(
            ticket_id=ticket.id,
            remediation_id=remediation.id,
            key=str(ticket.ticket_key),
            action=action,
            previous_status=S.OPEN if ticket.status is S.IN_PROGRESS else ticket.status,
            marker=marker,
            comment=comment,
        )

    # Carrying out

    def _carry_out(self, job: _SyncJob) -> str:
        try:
            client = self._client()
            if job.action is SyncAction.POLL:
                return self._poll(client, job)
            self._comment(client, job.key, job.marker, job.comment)
            if job.action is SyncAction.NOTE_END:
                return self._record_done(job, S.CANCELLED, STAGE_NOTED, "commented")
            self._close(client, job.key)
            return self._record_done(job, S.SUCCEEDED, STAGE_CLOSED, "closed")
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

    def _poll(self, client: TicketSystem, job: _SyncJob) -> str:
        status = client.status(job.key)
        if not self._done(status):
            return self._record_waiting(job, None)
        try:
            comment = self._confirm(job, status)
        except ConflictError as error:
            logger.warning(
                "ticket %s is %s, but remediation %s cannot be confirmed: %s",
                job.key,
                status,
                job.remediation_id,
                error,
            )
            return self._record_waiting(job, str(error))
        self._comment(client, job.key, job.marker, comment)
        return self._record_done(job, S.SUCCEEDED, STAGE_CLOSED, "confirmed")

    def _confirm(self, job: _SyncJob, status: str) -> str:
        """Confirm the remediation on the ticket's done status; return the comment."""
        with self.app.session() as session:
            remediation = find_remediation(session, job.remediation_id)
            if remediation.status not in VERIFIED:
                confirm(
                    session,
                    remediation,
                    actor=JIRA_ACTOR,
                    settings=self.app.settings,
                    reason=f"Jira ticket {job.key} reached status {status}",
                )
                logger.info(
                    "remediation %s confirmed: ticket %s is %s",
                    remediation.id,
                    job.key,
                    status,
                )
            return ticket_content.verified_comment(remediation)

    def _comment(self, client: TicketSystem, key: str, marker: str, body: str) -> None:
        if not client.has_comment(key, marker):
            client.add_comment(key, body)

    def _close(self, client: TicketSystem, key: str) -> None:
        if not self._done(client.status(key)):
            client.transition(key, self.app.settings.jira.done_transition)

    # Recording outcomes

    def _record_waiting(self, job: _SyncJob, error: str | None) -> str:
        interval = timedelta(minutes=self.app.settings.jira.poll_interval_minutes)
        with self.app.session() as session:
            ticket = self._locked_row(session, job.ticket_id)
            if ticket is None:
                return "dropped"
            ticket.status = S.OPEN
            ticket.last_error = error
            ticket.next_attempt_at = utcnow() + interval
        return "waiting"

    def _record_done(
        self, job: _SyncJob, status: RemediationStatus, stage: str, outcome: str
    ) -> str:
        now: datetime = utcnow()
        with self.app.session() as session:
            ticket = self._locked_row(session, job.ticket_id)
            if ticket is None:
                return "dropped"
            ticket.status = status
            ticket.stage = stage
            ticket.completed_at = now
            ticket.last_error = None
            ticket.outcome = (
                f"{job.key} commented and closed"
                if stage == STAGE_CLOSED
                else f"{job.key} commented; left open for people to close"
            )
            self._event(
                session,
                ticket,
                f"ticket_{outcome}",
                ticket.outcome,
                job.remediation_id,
            )
        logger.info(
            "ticket %s of remediation %s: %s", job.key, job.remediation_id, outcome
        )
        return outcome

    def _record_failure(self, job: _SyncJob, error: ConnectorError) -> str:
        with self.app.session() as session:
            ticket = self._locked_row(session, job.ticket_id)
            if ticket is None:
                return "dropped"
            return self._retry_or_fail(
                session,
                ticket,
                error,
                waiting=S.OPEN,
                stage=STAGE_CREATED,
                remediation_id=job.remediation_id,
            )
