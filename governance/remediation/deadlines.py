"""Notices about scope reductions whose deadline is near or has passed.

An owner gets one `scope_reduction_due` notice when an open scope reduction
is within `scheduler.scope_reduction_notice_days` of its deadline. Once the
deadline passes, the owner and the security team each get one
`scope_reduction_overdue` notice. A reduction first checked after its
deadline gets only the overdue notices. The notice before the deadline goes to the
security team when the identity has no owner.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa

from governance.app import Steward
from governance.audit.service import Actor
from governance.clock import utcnow
from governance.identity.models import Identity
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.notifications import Template
from governance.remediation.service import Notification, queue_notifications

logger = logging.getLogger(__name__)


def check_scope_reductions(app: Steward, *, actor: Actor) -> int:
    """Queue the due and overdue notices of open scope reductions; return the count."""
    now = utcnow()
    notice = timedelta(days=app.settings.scheduler.scope_reduction_notice_days)
    with app.session() as session:
        rows = session.execute(
            sa.select(Remediation.id, Remediation.deadline, Identity.id, Person.email)
            .outerjoin(Identity, Identity.id == Remediation.identity_id)
            .outerjoin(Person, Person.id == Identity.owner_id)
            .where(
                Remediation.kind == RemediationKind.SCOPE_REDUCTION,
                Remediation.status == RemediationStatus.OPEN,
                Remediation.deadline.is_not(None),
                Remediation.deadline <= now + notice,
            )
            .order_by(Remediation.id)
        ).all()
        notifications: list[Notification] = []
        for remediation_id, deadline, identity_id, owner_email in rows:
            context = {"remediation_id": remediation_id}
            if deadline is not None and deadline > now:
                notifications.append(
                    Notification(
                        dedupe_key=f"remediation:{remediation_id}:due",
                        recipient=owner_email,
                        template=Template.SCOPE_REDUCTION_DUE.value,
                        context=context,
                        identity_id=identity_id,
                    )
                )
                continue
            audiences: list[tuple[str, str | None]] = [("security", None)]
            if owner_email is not None:
                audiences.insert(0, ("owner", owner_email))
            for audience, recipient in audiences:
                notifications.append(
                    Notification(
                        dedupe_key=f"remediation:{remediation_id}:overdue:{audience}",
                        recipient=recipient,
                        template=Template.SCOPE_REDUCTION_OVERDUE.value,
                        context=context,
                        identity_id=identity_id,
                    )
                )
        queued = queue_notifications(session, notifications, actor=actor)
    if queued:
        logger.info("queued %s scope reduction notices", queued)
    return queued
