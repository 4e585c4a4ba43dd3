"""Prometheus metrics: counters kept in this process, gauges read from the database.

The counters live in `COUNTERS`, a CollectorRegistry of Steward's own rather
than prometheus_client's global default, so that a library registering its
metrics globally cannot collide with them. They start at zero in every
process and count what that process saw.

The gauges are read from the database at scrape time by `DatabaseCollector`,
so every replica reports the same numbers and a restart loses none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.campaign.models import Review, ReviewStatus
from governance.clock import utcnow
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)

logger = logging.getLogger(__name__)

COUNTERS = CollectorRegistry()

_CONNECTOR_ERRORS = Counter(
    "steward_connector_errors",
    "Errors raised by a connector while listing or revoking, by connector name.",
    ["connector"],
    registry=COUNTERS,
)
_JOB_RUNS = Counter(
    "steward_job_runs",
    "Runs of background jobs, by job name and outcome.",
    ["job", "outcome"],
    registry=COUNTERS,
)

# Remediation statuses that still wait for the worker, an approval or a person.
OPEN_REMEDIATION_STATUSES = (
    RemediationStatus.AWAITING_APPROVAL,
    RemediationStatus.PENDING,
    RemediationStatus.IN_PROGRESS,
    RemediationStatus.STAGED,
    RemediationStatus.OPEN,
)


def record_connector_error(connector: str) -> None:
    """Count one error raised by the connector instance named `connector`."""
    _CONNECTOR_ERRORS.labels(connector=connector).inc()


def record_job_run(job: str, outcome: str) -> None:
    """Count one run of a background job; `outcome` is a short fixed word."""
    _JOB_RUNS.labels(job=job, outcome=outcome).inc()


class DatabaseCollector(Collector):
    """Gauges of the inventory, the reviews and the outbox, read at scrape time.

    Each scrape runs four aggregate queries in one read-only transaction.
    When the database cannot be read, the scrape still succeeds with
    `steward_database_up 0` and no gauges, so the counters stay visible.
    """

    def __init__(self, app: Steward) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "steward_database_up",
            "1 when this scrape read the database, 0 when reading it failed.",
        )
        try:
            with self.app.sessions() as session:
                families = _read_gauges(session, utcnow())
        except SQLAlchemyError as error:
            detail = str(error).splitlines()[0]
            logger.warning("metrics: reading the database failed: %s", detail)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _read_gauges(session: Session, now: datetime) -> list[Metric]:
    return [
        _identities(session),
        *_reviews(session, now),
        *_remediations(session),
    ]


def _identities(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "steward_identities",
        "Identities in the inventory, by lifecycle state and risk tier.",
        labels=["state", "tier"],
    )
    counts = {
        (state, tier): count
        for state, tier, count in session.execute(
            sa.select(Identity.state, Identity.tier, sa.func.count()).group_by(
                Identity.state, Identity.tier
            )
        )
    }
    # Every combination is reported, zeros included, so that a series does
    # not disappear from dashboards when its last identity changes state.
    for state in IdentityState:
        for tier in RiskTier:
            family.add_metric([state.value, tier.value], counts.get((state, tier), 0))
    return family


def _reviews(session: Session, now: datetime) -> list[Metric]:
    open_count, overdue_count = session.execute(
        sa.select(
            sa.func.count(),
            # SUM(CASE ...) instead of COUNT(*) FILTER, which older SQLite lacks.
            sa.func.coalesce(
                sa.func.sum(sa.case((Review.due_at < now, 1), else_=0)), 0
            ),
        ).where(Review.status == ReviewStatus.PENDING)
    ).one()
    open_reviews = GaugeMetricFamily(
        "steward_reviews_open",
        "Certification reviews waiting for an answer.",
        value=open_count,
    )
    overdue = GaugeMetricFamily(
        "steward_reviews_overdue",
        "Certification reviews waiting for an answer past their due time.",
        value=overdue_count,
    )
    return [open_reviews, overdue]


def _remediations(session: Session) -> list[Metric]:
    rows = session.execute(
        sa.select(Remediation.kind, Remediation.status, sa.func.count())
        .where(
            Remediation.status.in_(
                [*OPEN_REMEDIATION_STATUSES, RemediationStatus.NEEDS_HUMAN]
            )
        )
        .group_by(Remediation.kind, Remediation.status)
    )
    counts = {(kind, status): count for kind, status, count in rows}
    pending = GaugeMetricFamily(
        "steward_remediations_pending",
        "Remediations not finished yet, by kind and status.",
        labels=["kind", "status"],
    )
    failed = GaugeMetricFamily(
        "steward_remediations_needs_human",
        "Remediations that failed and wait for a person, by kind.",
        labels=["kind"],
    )
    for kind in RemediationKind:
        for status in OPEN_REMEDIATION_STATUSES:
            pending.add_metric(
                [kind.value, status.value], counts.get((kind, status), 0)
            )
        failed.add_metric(
            [kind.value], counts.get((kind, RemediationStatus.NEEDS_HUMAN), 0)
        )
    return [pending, failed]
