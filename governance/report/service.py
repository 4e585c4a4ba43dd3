"""The governance report: inventory, coverage and maturity, from SQL aggregates.

Every figure comes from GROUP BY, COUNT and EXISTS queries. The database
scans the identity table, and Python only handles one row per group (of
source, kind, tier, state and managed flag) plus the listed disagreements, so
memory stays flat as the inventory grows. Coverage figures count live
identities only (`LIVE_STATES`) because a gone or revoked identity no longer
needs an owner, a certification or a business entity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from governance.campaign.models import Review, ReviewStatus
from governance.clock import as_utc, utcnow
from governance.identity.models import (
    Identity,
    OwnerOrigin,
    RiskTier,
    identity_entity_link,
)
from governance.lifecycle import LIVE_STATES, IdentityState
from governance.person.models import Person
from governance.report.maturity import (
    CoverageCounts,
    MaturityAssessment,
    assess_maturity,
)
from governance.settings import ReviewSettings, Settings

DEFAULT_DISAGREEMENT_LIMIT = 20

# Owners chosen in Steward. A source reporting another owner does not replace them.
STEWARD_OWNER_ORIGINS = (
    OwnerOrigin.ASSIGNED,
    OwnerOrigin.CLAIMED,
    OwnerOrigin.INHERITED,
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class GroupCount(_Model):
    """Identities sharing one value of a column, and how many of them are live."""

    value: str
    identities: int
    live: int


class Inventory(_Model):
    """Every identity in the inventory, live or not, grouped four ways."""

    identities: int
    live: int
    by_source: list[GroupCount]
    by_kind: list[GroupCount]
    by_tier: list[GroupCount]
    by_state: list[GroupCount]


class SourceGap(_Model):
    """Live identities of one source that no secrets manager manages."""

    source: str
    live: int
    unmanaged: int
    share: float | None


class CoverageGap(_Model):
    """Live identities with `managed = false`, in total and per source."""

    live: int
    unmanaged: int
    share: float | None
    by_source: list[SourceGap]


class OwnerDisagreement(_Model):
    """A live identity whose owner, set in Steward, differs from its source's."""

    id: int
    source: str
    name: str
    owner: str
    reported_owner: str


class OwnershipCoverage(_Model):
    """Live identities with an active owner, orphans and owner disagreements.

    `orphans` counts live identities without an active owner: no owner, or an
    owner who is no longer active. `disagreements` lists at most the requested
    number of disagreements, lowest id first, and `disagreement_count` counts
    them all.
    """

    live: int
    with_active_owner: int
    orphans: int
    share: float | None
    disagreement_count: int
    disagreements: list[OwnerDisagreement]


class CertificationCoverage(_Model):
    """Live identities certified within their cycle, overdue or not yet due.

    An identity is overdue when its certification expired (`certified_until` is
    not after now) or when it was never certified and its first cycle, counted
    from `first_seen_at` with its tier's interval, has ended. Every live
    identity is exactly one of certified, overdue or not yet due.
    """

    live: int
    certified: int
    overdue: int
    overdue_never_certified: int
    overdue_expired: int
    not_yet_due: int
    share: float | None
    pending_reviews: int
    pending_reviews_past_due: int


class LifecycleCoverage(_Model):
    """Live identities linked to at least one business entity."""

    live: int
    linked: int
    unlinked: int
    share: float | None


class GovernanceReport(_Model):
    """Everything `steward report` prints, computed at `generated_at`."""

    generated_at: datetime
    inventory: Inventory
    coverage_gap: CoverageGap
    ownership: OwnershipCoverage
    certification: CertificationCoverage
    lifecycle: LifecycleCoverage
    maturity: MaturityAssessment


def build_report(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    disagreement_limit: int = DEFAULT_DISAGREEMENT_LIMIT,
) -> GovernanceReport:
    """Compute the governance report at `now` (the current time by default).

    A naive `now` is taken to be UTC. The queries run in the caller's
    transaction. On PostgreSQL, open it with
    REPEATABLE READ so that every section reads the same snapshot while
    discovery writes. Raises ValueError when `disagreement_limit` is negative.
    """
    if disagreement_limit < 0:
        raise ValueError(
            f"invalid disagreement_limit {disagreement_limit}: expected 0 or more"
        )
    moment = utcnow() if now is None else as_utc(now)
    inventory, coverage_gap = _inventory(session)
    coverage = _coverage(session, settings.review, moment)
    ownership = _ownership(session, coverage, disagreement_limit)
    certification = _certification(session, coverage, moment)
    lifecycle = LifecycleCoverage(
        live=coverage.live,
        linked=coverage.linked,
        unlinked=coverage.live - coverage.linked,
        share=_share(coverage.linked, coverage.live),
    )
    counts = CoverageCounts(
        live=coverage.live,
        with_active_owner=coverage.with_active_owner,
        certified=coverage.certified,
        linked=coverage.linked,
    )
    return GovernanceReport(
        generated_at=moment,
        inventory=inventory,
        coverage_gap=coverage_gap,
        ownership=ownership,
        certification=certification,
        lifecycle=lifecycle,
        maturity=assess_maturity(counts, settings.maturity),
    )


@dataclass(frozen=True)
class _Coverage:
    live: int
    with_active_owner: int
    certified: int
    expired: int
    never_certified_overdue: int
    linked: int


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _is_live() -> sa.ColumnElement[bool]:
    return Identity.state.in_(LIVE_STATES)


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    # SUM(CASE ...) instead of COUNT(*) FILTER, which older SQLite lacks.
    total = sa.func.sum(sa.case((condition, 1), else_=0))
    return sa.func.coalesce(total, 0)


def _group_counts(
    totals: Counter[str], live: Counter[str], order: list[str]
) -> list[GroupCount]:
    return [
        GroupCount(value=value, identities=totals[value], live=live[value])
        for value in order
        if totals[value]
    ]


def _inventory(session: Session) -> tuple[Inventory, CoverageGap]:
    # One scan grouped by every reported column. The Python loop below runs
    # once per group, never once per identity. Grouping by kind first keeps
    # SQLite from walking the (source, state) index and fetching every row by
    # rowid, which is slower than scanning the table.
    statement = sa.select(
        Identity.source,
        Identity.kind,
        Identity.tier,
        Identity.state,
        Identity.managed,
        sa.func.count(),
    ).group_by(
        Identity.kind,
        Identity.source,
        Identity.tier,
        Identity.state,
        Identity.managed,
    )
    totals: dict[str, Counter[str]] = {
        name: Counter() for name in ("source", "kind", "tier", "state")
    }
    live: dict[str, Counter[str]] = {
        name: Counter() for name in ("source", "kind", "tier", "state")
    }
    unmanaged_by_source: Counter[str] = Counter()
    for source, kind, tier, state, managed, count in session.execute(statement):
        values = {
            "source": source,
            "kind": kind,
            "tier": RiskTier(tier).value,
            "state": IdentityState(state).value,
        }
        is_live = IdentityState(state) in LIVE_STATES
        for name, value in values.items():
            totals[name][value] += count
            if is_live:
                live[name][value] += count
        if is_live and not managed:
            unmanaged_by_source[source] += count

    live_total = live["state"].total()
    inventory = Inventory(
        identities=totals["state"].total(),
        live=live_total,
        by_source=_group_counts(
            totals["source"], live["source"], sorted(totals["source"])
        ),
        by_kind=_group_counts(totals["kind"], live["kind"], sorted(totals["kind"])),
        by_tier=_group_counts(
            totals["tier"], live["tier"], [tier.value for tier in RiskTier]
        ),
        by_state=_group_counts(
            totals["state"], live["state"], [state.value for state in IdentityState]
        ),
    )
    unmanaged = unmanaged_by_source.total()
    coverage_gap = CoverageGap(
        live=live_total,
        unmanaged=unmanaged,
        share=_share(unmanaged, live_total),
        by_source=[
            SourceGap(
                source=source,
                live=live["source"][source],
                unmanaged=unmanaged_by_source[source],
                share=_share(unmanaged_by_source[source], live["source"][source]),
            )
            for source in sorted(live["source"])
            if live["source"][source]
        ],
    )
    return inventory, coverage_gap


def _ownership(
    session: Session, coverage: _Coverage, disagreement_limit: int
) -> OwnershipCoverage:
    disagreeing = sa.and_(
        _is_live(),
        Identity.owner_origin.in_(STEWARD_OWNER_ORIGINS),
        Identity.source_owner_email.is_not(None),
        Identity.source_owner_email != "",
        sa.func.lower(Identity.source_owner_email) != sa.func.lower(Person.email),
    )
    disagreement_count = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Identity)
            .join(Person, Person.id == Identity.owner_id)
            .where(disagreeing)
        )
        or 0
    )
    rows = session.execute(
        sa.select(
            Identity.id,
            Identity.source,
            Identity.name,
            Person.email,
            Identity.source_owner_email,
        )
        .join(Person, Person.id == Identity.owner_id)
        .where(disagreeing)
        .order_by(Identity.id)
        .limit(disagreement_limit)
    )
    disagreements = [
        OwnerDisagreement(
            id=identity_id,
            source=source,
            name=name,
            owner=owner,
            reported_owner=reported or "",
        )
        for identity_id, source, name, owner, reported in rows
    ]
    return OwnershipCoverage(
        live=coverage.live,
        with_active_owner=coverage.with_active_owner,
        orphans=coverage.live - coverage.with_active_owner,
        share=_share(coverage.with_active_owner, coverage.live),
        disagreement_count=disagreement_count,
        disagreements=disagreements,
    )


def _first_cycle_ended(review: ReviewSettings, now: datetime) -> sa.ColumnElement[bool]:
    # Comparing first_seen_at with a cutoff computed here keeps date arithmetic
    # out of SQL, where SQLite and PostgreSQL spell it differently.
    privileged_cutoff = now - timedelta(days=review.privileged_interval_days)
    standard_cutoff = now - timedelta(days=review.standard_interval_days)
    return sa.or_(
        sa.and_(
            Identity.tier == RiskTier.PRIVILEGED,
            Identity.first_seen_at <= privileged_cutoff,
        ),
        sa.and_(
            Identity.tier == RiskTier.STANDARD,
            Identity.first_seen_at <= standard_cutoff,
        ),
    )


def _coverage(session: Session, review: ReviewSettings, now: datetime) -> _Coverage:
    # One scan of the live identities counts the ownership and certification
    # criteria. The entity links get their own query because PostgreSQL runs
    # an EXISTS inside CASE as a subplan once per row, while WHERE EXISTS
    # becomes a hash semi-join.
    never_certified = Identity.certified_until.is_(None)
    row = session.execute(
        sa.select(
            sa.func.count(),
            _count_if(Person.active.is_(True)),
            _count_if(Identity.certified_until > now),
            _count_if(Identity.certified_until <= now),
            _count_if(sa.and_(never_certified, _first_cycle_ended(review, now))),
        )
        .select_from(Identity)
        .outerjoin(Person, Person.id == Identity.owner_id)
        .where(_is_live())
    ).one()
    live, active_owner, certified, expired, never_overdue = (
        int(value) for value in row
    )
    has_entity = sa.exists().where(identity_entity_link.c.identity_id == Identity.id)
    linked = session.scalar(
        sa.select(sa.func.count()).select_from(Identity).where(_is_live(), has_entity)
    )
    return _Coverage(
        live=live,
        with_active_owner=active_owner,
        certified=certified,
        expired=expired,
        never_certified_overdue=never_overdue,
        linked=linked or 0,
    )


def _certification(
    session: Session, coverage: _Coverage, now: datetime
) -> CertificationCoverage:
    reviews = session.execute(
        sa.select(sa.func.count(), _count_if(Review.due_at <= now))
        .select_from(Review)
        .join(Identity, Identity.id == Review.identity_id)
        .where(Review.status == ReviewStatus.PENDING, _is_live())
    ).one()
    overdue = coverage.expired + coverage.never_certified_overdue
    return CertificationCoverage(
        live=coverage.live,
        certified=coverage.certified,
        overdue=overdue,
        overdue_never_certified=coverage.never_certified_overdue,
        overdue_expired=coverage.expired,
        not_yet_due=coverage.live - coverage.certified - overdue,
        share=_share(coverage.certified, coverage.live),
        pending_reviews=int(reviews[0]),
        pending_reviews_past_due=int(reviews[1]),
    )
