"""Opening certification campaigns on a schedule.

Each run opens one campaign per tier for the identities falling due within
the look-ahead window that are not in an open review yet. Due dates come
from `governance.campaign.schedule`, which spreads first reviews across the
first cycle, so a large backlog arrives over many runs instead of one.
A run that finds nothing due opens nothing, so running it again at once
opens no second campaign.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from governance.app import Steward
from governance.audit.service import Actor
from governance.campaign.service import count_due_identities, start_campaign
from governance.clock import utcnow
from governance.identity.models import RiskTier

logger = logging.getLogger(__name__)


def lookahead_days(app: Steward) -> int:
    """Return the look-ahead window in days: the setting, or the response period."""
    configured = app.settings.scheduler.certification_lookahead_days
    return configured if configured is not None else app.settings.review.response_days


def plan_certifications(app: Steward, *, actor: Actor) -> list[int]:
    """Open a campaign per tier for the identities due soon; return their ids.

    Each campaign is opened and committed in its own transaction, so a
    failure in one tier leaves the campaigns of the others in place.
    """
    days = lookahead_days(app)
    opened: list[int] = []
    for tier in RiskTier:
        with app.session() as session:
            horizon = utcnow() + timedelta(days=days)
            due = count_due_identities(session, tier=tier, horizon=horizon)
            if due == 0:
                continue
            campaign = start_campaign(
                session,
                actor=actor,
                settings=app.settings,
                tier=tier,
                due_within_days=days,
            )
            opened.append(campaign.id)
        logger.info(
            "planned campaign %s for %s %s identities due within %s days",
            campaign.id,
            due,
            tier.value,
            days,
        )
    return opened
