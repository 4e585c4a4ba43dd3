"""The remediation worker: carries out revocations from the outbox.

Each row is taken in a short transaction (FOR UPDATE SKIP LOCKED on
PostgreSQL, so several workers never take the same row; SQLite serialises
writers), marked in progress with a lock that expires, and released before
the connector is called. The outcome is written with its audit event in one
more transaction. A worker that dies mid-way leaves the row in progress
until its lock expires. The next attempt calls the revoker again, which
finds the credential gone by a follow-up look-up. So a revocation is recorded
exactly once however often it is attempted.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from connectors.base import (
    IdentityRef,
    RevocationOutcome,
    RevocationResult,
    Revoker,
    StagedRevoker,
)
from connectors.errors import ConnectorError, ConnectorRateLimitedError
from governance.app import Steward
from governance.audit.service import Actor, record
from governance.clock import utcnow
from governance.faults import failpoint
from governance.identity.models import Identity
from governance.lifecycle import IdentityState, transition
from governance.metrics import record_connector_error
from governance.ownership.rules import initial_owner_state
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.operations import is_paused

logger = logging.getLogger(__name__)

S = RemediationStatus
STAGE_DISABLED = "disabled"
STAGE_UNDO = "undo_requested"
STAGE_UNDONE = "undone"
DEFAULT_STAGED_GRACE = timedelta(days=7)

RevokerLookup = Callable[[str], Revoker | None]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, up to `max_attempts`."""

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=6)

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(attempt - 1, 0)))
        return timedelta(seconds=rng.uniform(0.5, 1.0) * ceiling.total_seconds())


@dataclass
class WorkerStats:
    """Counts of one pass of the worker: rows taken and their outcomes."""

    taken: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


@dataclass(frozen=True)
class _Job:
    remediation_id: int
    identity_id: int
    stage: str | None
    attempts: int
    ref: IdentityRef


class RemediationWorker:
    """Drains revocations from the outbox through the connectors' revokers."""

    def __init__(
        self,
        app: Steward,
        revokers: RevokerLookup | Mapping[str, Revoker],
        *,
        worker_id: str,
        batch_size: int = 50,
        lock_period: timedelta = timedelta(minutes=5),
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.lookup: RevokerLookup = (
            revokers.get if isinstance(revokers, Mapping) else revokers
        )
        self.worker_id = worker_id
        self.batch_size = batch_size
        self.lock_period = lock_period
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.actor = Actor.system("remediation-worker")

    # Taking rows

    def _claim(self) -> list[_Job]:
        now = utcnow()
        with self.app.session() as session:
            if is_paused(session):
                logger.info("remediation is paused; nothing taken")
                return []
            due = sa.or_(
                sa.and_(
                    Remediation.status.in_([S.PENDING, S.STAGED]),
                    Remediation.next_attempt_at <= now,
                ),
                sa.and_(
                    Remediation.status == S.IN_PROGRESS, Remediation.locked_until < now
                ),
            )
            statement = (
                sa.select(Remediation)
                .where(Remediation.kind == RemediationKind.REVOKE, due)
                .order_by(Remediation.next_attempt_at, Remediation.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = session.scalars(statement).all()
            # One query loads the batch's identities; get_one finds them in
            # the session instead of querying once per row.
            session.scalars(
                sa.select(Identity).where(
                    Identity.id.in_({row.identity_id for row in rows})
                )
            ).all()
            jobs = []
            for remediation in rows:
                if remediation.identity_id is None:
                    continue
                identity = session.get_one(Identity, remediation.identity_id)
                remediation.status = S.IN_PROGRESS
                remediation.locked_by = self.worker_id
                remediation.locked_until = now + self.lock_period
                jobs.append(
                    _Job(
                        remediation_id=remediation.id,
                        identity_id=identity.id,
                        stage=remediation.stage,
                        attempts=remediation.attempts,
                        ref=IdentityRef(
                            source=identity.source,
                            kind=identity.kind,
                            external_id=identity.external_id,
                            attributes=dict(identity.attributes),
                        ),
                    )
                )
        return jobs

    # One pass

    def run_once(self) -> WorkerStats:
        """Take due rows and carry each out; return what happened."""
        stats = WorkerStats()
        jobs = self._claim()
        stats.taken = len(jobs)
        if jobs:
            failpoint("remediation.claimed")
        for job in jobs:
            outcome = self._carry_out(job)
            stats.count(outcome)
        return stats

    def _carry_out(self, job: _Job) -> str:
        revoker = self.lookup(job.ref.source)
        if revoker is None:
            result = RevocationResult(
                RevocationOutcome.MANUAL,
                f"no connector revokes identities of source {job.ref.source!r}; "
                "revoke at the issuing system and confirm",
            )
        else:
            result = self._call(revoker, job)
        failpoint("remediation.verified")
        self._record(job, result)
        failpoint("remediation.recorded")
        return result.outcome.value

    def _call(self, revoker: Revoker, job: _Job) -> RevocationResult:
        try:
            if job.stage == STAGE_DISABLED:
                return _staged(revoker).finish(job.ref)
            if job.stage == STAGE_UNDO:
                return _staged(revoker).undo(job.ref)
            return revoker.revoke(job.ref)
        except ConnectorRateLimitedError as error:
            record_connector_error(job.ref.source)
            return RevocationResult(
                RevocationOutcome.RETRYABLE, str(error), retry_after=error.retry_after
            )
        except ConnectorError as error:
            record_connector_error(job.ref.source)
            outcome = (
                RevocationOutcome.RETRYABLE
                if error.retryable
                else RevocationOutcome.NEEDS_HUMAN
            )
            return RevocationResult(outcome, f"{type(error).__name__}: {error}")
        except Exception as error:  # a connector bug must not stop the worker
            record_connector_error(job.ref.source)
            logger.exception(
                "revoker %s failed on remediation %s",
                getattr(revoker, "name", revoker),
                job.remediation_id,
            )
            return RevocationResult(
                RevocationOutcome.RETRYABLE,
                f"unexpected {type(error).__name__}: {error}",
            )

    # Recording outcomes

    def _record(self, job: _Job, result: RevocationResult) -> None:
        with self.app.session() as session:
            remediation = session.scalars(
                sa.select(Remediation)
                .where(Remediation.id == job.remediation_id)
                .with_for_update()
            ).one()
            if (
                remediation.status is not S.IN_PROGRESS
                or remediation.locked_by != self.worker_id
            ):
                logger.warning(
                    "remediation %s was taken over by %s; outcome %s dropped",
                    job.remediation_id,
                    remediation.locked_by,
                    result.outcome.value,
                )
                return
            identity = session.get_one(Identity, job.identity_id)
            remediation.locked_by = None
            remediation.locked_until = None
            remediation.outcome = result.detail or None
            handler = _OUTCOME_HANDLERS[result.outcome]
            handler(self, session, remediation, identity, result)

    def _finish(
        self,
        session: Session,
        remediation: Remediation,
        identity: Identity,
        result: RevocationResult,
    ) -> None:
        status = (
            S.ALREADY_GONE
            if result.outcome is RevocationOutcome.ALREADY_GONE
            else S.SUCCEEDED
        )
        remediation.status = status
        remediation.completed_at = utcnow()
        remediation.stage = "revoked"
        identity.revocation_stage = "revoked"
        self._move(
            session,
            identity,
            (IdentityState.REVOCATION_PENDING, IdentityState.DISABLED),
            IdentityState.REVOKED,
            action="identity.revoked",
            reason=result.detail or "revoked and verified",
        )
        self._event(session, remediation, IdentityState.REVOKED.value, result)

    def _disable(
        self,
        session: Session,
        remediation: Remediation,
        identity: Identity,
        result: RevocationResult,
    ) -> None:
        revoker = self.lookup(identity.source)
        grace = (
            revoker.grace_period
            if isinstance(revoker, StagedRevoker)
            else DEFAULT_STAGED_GRACE
        )
        remediation.status = S.STAGED
        remediation.stage = STAGE_DISABLED
        remediation.next_attempt_at = utcnow() + grace
        identity.revocation_stage = STAGE_DISABLED
        self._move(
            session,
            identity,
            (IdentityState.REVOCATION_PENDING,),
            IdentityState.DISABLED,
            action="identity.disabled",
            reason=result.detail or "disabled; deleted after the grace period",
        )
        self._event(session, remediation, STAGE_DISABLED, result)

    def _restore(
        self,
        session: Session,
        remediation: Remediation,
        identity: Identity,
        result: RevocationResult,
    ) -> None:
        remediation.status = S.CANCELLED
        remediation.stage = STAGE_UNDONE
        remediation.completed_at = utcnow()
        identity.revocation_stage = None
        self._move(
            session,
            identity,
            (IdentityState.DISABLED,),
            initial_owner_state(identity),
            action="identity.restored",
            reason=result.detail or "re-enabled by undo",
        )
        self._event(session, remediation, STAGE_UNDONE, result)

    def _manual(
        self,
        session: Session,
        remediation: Remediation,
        identity: Identity,
        result: RevocationResult,
    ) -> None:
        remediation.status = S.OPEN
        remediation.stage = "manual"
        if result.gone_at is not None:
            remediation.payload = {
                **remediation.payload,
                "copy_deleted_at": result.gone_at.isoformat(),
            }
        self._event(session, remediation, "manual", result)

    def _retry_or_fail(
        self,
        session: Session,
        remediation: Remediation,
        identity: Identity,
        result: RevocationResult,
    ) -> None:
        remediation.attempts += 1
        remediation.last_error = result.detail
        if (
            result.outcome is RevocationOutcome.RETRYABLE
            and remediation.attempts < self.retry.max_attempts
        ):
            delay = self.retry.delay(remediation.attempts, self.rng)
            if result.retry_after is not None:
                delay = max(delay, timedelta(seconds=result.retry_after))
            remediation.status = (
                S.STAGED if remediation.stage == STAGE_DISABLED else S.PENDING
            )
            remediation.next_attempt_at = utcnow() + delay
            logger.warning(
                "remediation %s attempt %s failed (%s); retrying in %s",
                remediation.id,
                remediation.attempts,
                result.detail,
                delay,
            )
            self._event(session, remediation, "retrying", result)
            return
        remediation.status = S.NEEDS_HUMAN
        logger.error(
            "remediation %s needs a human after %s attempts: %s",
            remediation.id,
            remediation.attempts,
            result.detail,
        )
        self._move(
            session,
            identity,
            (IdentityState.REVOCATION_PENDING, IdentityState.DISABLED),
            IdentityState.REVOCATION_FAILED,
            action="identity.revocation_failed",
            reason=result.detail or "revocation failed",
        )
        self._event(session, remediation, "needs_human", result)

    def _move(
        self,
        session: Session,
        identity: Identity,
        current: tuple[IdentityState, ...],
        target: IdentityState,
        *,
        action: str,
        reason: str,
    ) -> None:
        # An identity moved on by someone else in the meantime keeps its state.
        if identity.state in current:
            transition(
                session,
                identity,
                target,
                actor=self.actor,
                action=action,
                reason=reason,
            )

    def _event(
        self,
        session: Session,
        remediation: Remediation,
        outcome: str,
        result: RevocationResult,
    ) -> None:
        record(
            session,
            actor=self.actor,
            action=f"remediation.{outcome}",
            object_type="remediation",
            object_id=str(remediation.id),
            before_state=S.IN_PROGRESS.value,
            after_state=remediation.status.value,
            reason=result.detail,
            details={
                "identity_id": remediation.identity_id,
                "attempts": remediation.attempts,
                "outcome": result.outcome.value,
                "worker": self.worker_id,
            },
        )


def _staged(revoker: Revoker) -> StagedRevoker:
    if not isinstance(revoker, StagedRevoker):
        raise ConnectorError(f"revoker {revoker.name} has no staged revocation")
    return revoker


_Handler = Callable[
    [RemediationWorker, Session, Remediation, Identity, RevocationResult], None
]
_OUTCOME_HANDLERS: dict[RevocationOutcome, _Handler] = {
    RevocationOutcome.REVOKED: RemediationWorker._finish,
    RevocationOutcome.ALREADY_GONE: RemediationWorker._finish,
    RevocationOutcome.DISABLED: RemediationWorker._disable,
    RevocationOutcome.RESTORED: RemediationWorker._restore,
    RevocationOutcome.MANUAL: RemediationWorker._manual,
    RevocationOutcome.RETRYABLE: RemediationWorker._retry_or_fail,
    RevocationOutcome.NEEDS_HUMAN: RemediationWorker._retry_or_fail,
}
