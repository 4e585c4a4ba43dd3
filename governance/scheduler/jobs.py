"""The scheduled jobs: their stable ids, intervals and what each one runs.

Every job function opens and commits its own transactions and returns a
count of what it did. Each job is safe to run again at once: notifications
carry dedupe keys and state changes check the current state first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from governance.app import Steward
from governance.audit.publish import publish_audit_head
from governance.audit.service import Actor
from governance.campaign.escalation import escalate_reviews
from governance.campaign.planning import plan_certifications
from governance.campaign.reminders import send_reminders
from governance.claim.service import expire_claim_deadlines
from governance.discovery.models import RunStatus
from governance.discovery.runner import discover_sources, selected_instances
from governance.errors import JobFailedError
from governance.remediation.deadlines import check_scope_reductions
from governance.remediation.worker import WorkerStats

SCHEDULER_ACTOR = Actor.system("scheduler")
SYNC_INVENTORY_PREFIX = "sync_inventory:"


class Drainer(Protocol):
    """A worker that carries out due outbox rows of its kind in one pass."""

    def run_once(self) -> WorkerStats: ...


# Runs one discovery of the named source and returns the identities it saw.
DiscoveryRunner = Callable[[Steward, str], int]


@dataclass(frozen=True)
class JobSpec:
    """A job by its stable id: how often it runs and what it runs."""

    job_id: str
    interval: timedelta
    run: Callable[[], int]


def run_discovery(app: Steward, source: str) -> int:
    """Discover one configured source; return the number of identities seen.

    Raises JobFailedError when the run failed or was blocked by the guard
    against marking a large share of the source gone.
    """
    [outcome] = discover_sources(app, [source], actor=SCHEDULER_ACTOR)
    if outcome.status is not RunStatus.SUCCEEDED or outcome.result is None:
        raise JobFailedError(
            f"discovery run {outcome.run_id} of {source} {outcome.status.value}: "
            f"{outcome.error}"
        )
    return outcome.result.seen


def expire_claims(app: Steward, *, actor: Actor) -> int:
    """Queue revocations of orphans past their claim deadline; return the count."""
    with app.session() as session:
        result = expire_claim_deadlines(session, actor=actor, settings=app.settings)
    return result.queued + result.awaiting_approval


def drain_outbox(drainers: Sequence[Drainer]) -> int:
    """Run one pass of every drainer; return the number of rows they took."""
    return sum(drainer.run_once().taken for drainer in drainers)


def scheduled_jobs(
    app: Steward,
    *,
    drainers: Sequence[Drainer],
    discovery: DiscoveryRunner | None = run_discovery,
    drain_interval: timedelta | None = None,
) -> list[JobSpec]:
    """Return the enabled jobs in the order `run_pending` runs them.

    Inventory syncs come first so that later jobs see fresh data, and the
    outbox drain comes last so that it sends what the others queued. With
    `discovery` None there are no inventory syncs.
    """
    config = app.settings.scheduler
    actor = SCHEDULER_ACTOR
    jobs: list[JobSpec] = []
    if discovery is not None and config.sync_inventory_enabled:
        for source in selected_instances(app.settings):
            minutes = app.settings.connectors[source].discovery_interval_minutes
            jobs.append(
                JobSpec(
                    f"{SYNC_INVENTORY_PREFIX}{source}",
                    timedelta(minutes=minutes),
                    _bind_source(discovery, app, source),
                )
            )
    table: list[tuple[str, bool, int, Callable[[], int]]] = [
        (
            "expire_claims",
            config.expire_claims_enabled,
            config.expire_claims_interval_minutes,
            lambda: expire_claims(app, actor=actor),
        ),
        (
            "plan_certifications",
            config.plan_certifications_enabled,
            config.plan_certifications_interval_minutes,
            lambda: len(plan_certifications(app, actor=actor)),
        ),
        (
            "escalate_reviews",
            config.escalate_reviews_enabled,
            config.escalate_reviews_interval_minutes,
            lambda: escalate_reviews(app, actor=actor),
        ),
        (
            "send_reminders",
            config.send_reminders_enabled,
            config.send_reminders_interval_minutes,
            lambda: send_reminders(app, actor=actor),
        ),
        (
            "check_scope_reductions",
            config.check_scope_reductions_enabled,
            config.check_scope_reductions_interval_minutes,
            lambda: check_scope_reductions(app, actor=actor),
        ),
        (
            "audit_head",
            config.audit_head_enabled,
            config.audit_head_interval_minutes,
            lambda: _publish_head(app, actor, config.audit_head_interval_minutes),
        ),
    ]
    for job_id, enabled, minutes, run in table:
        if enabled:
            jobs.append(JobSpec(job_id, timedelta(minutes=minutes), run))
    if config.drain_outbox_enabled and drainers:
        interval = drain_interval or timedelta(
            seconds=config.drain_outbox_interval_seconds
        )
        jobs.append(JobSpec("drain_outbox", interval, lambda: drain_outbox(drainers)))
    return jobs


def _bind_source(
    discovery: DiscoveryRunner, app: Steward, source: str
) -> Callable[[], int]:
    return lambda: discovery(app, source)


def _publish_head(app: Steward, actor: Actor, minutes: int) -> int:
    publish_audit_head(app, actor=actor, interval=timedelta(minutes=minutes))
    return 1
