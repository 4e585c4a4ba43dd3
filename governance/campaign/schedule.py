"""When each identity is due for certification.

A certified identity is due when its certification ends. An identity never
certified is due within its first cycle: at first seen plus a share of its
tier's interval taken from a hash of its external id. Identities found
together, such as the whole backlog on the first discovery, so fall due
spread across the first cycle instead of all on one day, and none waits
longer than one interval.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from governance.identity.models import RiskTier
from governance.settings import ReviewSettings


def interval_days(tier: RiskTier, review: ReviewSettings) -> int:
    """Return the certification cycle of a tier, in days."""
    if tier is RiskTier.PRIVILEGED:
        return review.privileged_interval_days
    return review.standard_interval_days


def first_review_due(
    first_seen: datetime, tier: RiskTier, external_id: str, review: ReviewSettings
) -> datetime:
    """Return the first due date of an identity never certified."""
    days = interval_days(tier, review)
    digest = hashlib.blake2b(external_id.encode("utf-8"), digest_size=4).digest()
    offset = int.from_bytes(digest, "big") % days + 1
    return first_seen + timedelta(days=offset)


def certified_until(
    decided_at: datetime, tier: RiskTier, review: ReviewSettings
) -> datetime:
    """Return when a certification given at `decided_at` ends."""
    return decided_at + timedelta(days=interval_days(tier, review))
