"""The governance maturity stage, judged from coverage counts alone.

Stages build on each other, and a stage counts only when every lower stage is
reached:

1. Discovery: the inventory contains live identities, so the coverage gap (how
   many no secrets manager manages) is known.
2. Ownership: enough live identities have an active owner.
3. Certification: enough live identities are certified within their cycle.
4. Lifecycle: enough live identities are linked to a business entity.

Every decision uses integer counts and decimal thresholds, never binary
floating point, so 90% of 100 requires exactly 90 identities.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from governance.settings import MaturitySettings

DISCOVERY = 1
OWNERSHIP = 2
CERTIFICATION = 3
LIFECYCLE = 4
STAGE_NAMES = {
    DISCOVERY: "discovery",
    OWNERSHIP: "ownership",
    CERTIFICATION: "certification",
    LIFECYCLE: "lifecycle",
}
HIGHEST_STAGE = LIFECYCLE


class CoverageCounts(BaseModel):
    """Live identities and how many of them meet each stage's criterion."""

    model_config = ConfigDict(frozen=True)

    live: int
    with_active_owner: int
    certified: int
    linked: int


class StageStatus(BaseModel):
    """One stage of the maturity model and how far the inventory is from it.

    `met` is true when the stage's own criterion is met, and `reached` is true
    when every lower stage is reached too. `actual` counts the live identities
    that meet the criterion now, and `required` the minimum count that reaches
    the threshold. Discovery has no threshold, so its `threshold` and
    `required` are None.
    """

    model_config = ConfigDict(frozen=True)

    stage: int
    name: str
    met: bool
    reached: bool
    threshold: float | None
    required: int | None
    actual: int | None
    detail: str


class MaturityAssessment(BaseModel):
    """The highest stage reached (0 to 4) and what the next stage still needs."""

    model_config = ConfigDict(frozen=True)

    stage: int
    stage_name: str | None
    next_stage: int | None
    next_stage_name: str | None
    missing: str | None
    stages: list[StageStatus]


def required_count(threshold: float, live: int) -> int:
    """Return the minimum count out of `live` that reaches `threshold`, a fraction.

    The threshold goes through its shortest decimal text, so 0.9 is read as
    nine tenths rather than as the slightly larger binary float.
    """
    return math.ceil(Decimal(repr(threshold)) * live)


def format_share(part: int, whole: int) -> str:
    """Return `part / whole` as a percentage with one decimal, rounded down.

    Rounding down keeps a share just under a threshold from printing as equal to
    it: 949 of 1,000 prints as 94.9%, and 9,499 of 10,000 too.
    """
    if whole == 0:
        return "-"
    tenths = math.floor(Fraction(part * 1000, whole))
    return f"{tenths // 10}.{tenths % 10}%"


def format_threshold(threshold: float) -> str:
    """Return a threshold fraction as a percentage without trailing zeros."""
    percent = (Decimal(repr(threshold)) * 100).normalize()
    return f"{percent:f}%"


def _share_stage(
    stage: int,
    *,
    actual: int,
    live: int,
    threshold: float,
    subject: str,
    action: str,
    lower_reached: bool,
) -> StageStatus:
    required = required_count(threshold, live)
    met = live > 0 and actual >= required
    name = STAGE_NAMES[stage]
    if live == 0:
        detail = "no live identities to measure"
    else:
        detail = (
            f"{format_share(actual, live)} of {live:,} live identities {subject}, "
            f"{format_threshold(threshold)} needed"
        )
        if not met:
            detail += f": {required - actual:,} more must {action}"
    return StageStatus(
        stage=stage,
        name=name,
        met=met,
        reached=lower_reached and met,
        threshold=threshold,
        required=required,
        actual=actual,
        detail=detail,
    )


def _discovery_stage(live: int) -> StageStatus:
    if live > 0:
        detail = f"{live:,} live identities in the inventory"
    else:
        detail = (
            "the inventory holds no live identities: "
            "run discovery on at least one source"
        )
    return StageStatus(
        stage=DISCOVERY,
        name=STAGE_NAMES[DISCOVERY],
        met=live > 0,
        reached=live > 0,
        threshold=None,
        required=None,
        actual=live,
        detail=detail,
    )


def assess_maturity(
    counts: CoverageCounts, thresholds: MaturitySettings
) -> MaturityAssessment:
    """Return the stage reached by an inventory with `counts`.

    An inventory without live identities reaches no stage (stage 0).
    """
    share_stages = (
        (
            OWNERSHIP,
            counts.with_active_owner,
            thresholds.ownership_threshold,
            "have an active owner",
            "get an owner",
        ),
        (
            CERTIFICATION,
            counts.certified,
            thresholds.certification_threshold,
            "are certified within their cycle",
            "be certified",
        ),
        (
            LIFECYCLE,
            counts.linked,
            thresholds.lifecycle_threshold,
            "are linked to a business entity",
            "be linked",
        ),
    )
    stages = [_discovery_stage(counts.live)]
    for stage, actual, threshold, subject, action in share_stages:
        stages.append(
            _share_stage(
                stage,
                actual=actual,
                live=counts.live,
                threshold=threshold,
                subject=subject,
                action=action,
                lower_reached=stages[-1].reached,
            )
        )

    reached = max((status.stage for status in stages if status.reached), default=0)
    if reached == HIGHEST_STAGE:
        return MaturityAssessment(
            stage=reached,
            stage_name=STAGE_NAMES[reached],
            next_stage=None,
            next_stage_name=None,
            missing=None,
            stages=stages,
        )
    following = stages[reached]
    return MaturityAssessment(
        stage=reached,
        stage_name=STAGE_NAMES.get(reached),
        next_stage=following.stage,
        next_stage_name=following.name,
        missing=f"{following.name}: {following.detail}",
        stages=stages,
    )
