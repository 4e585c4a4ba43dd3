"""Every ORM model, imported so that `Base.metadata` contains all tables."""

from governance.audit.models import AuditEvent
from governance.business_entity.models import BusinessEntity
from governance.business_event.models import BusinessEvent
from governance.campaign.models import Campaign, Review
from governance.claim.models import Claim
from governance.control.models import Lease, Switch
from governance.database import Base
from governance.delivery.models import SentMessage
from governance.discovery.models import DiscoveryRun
from governance.identity.models import Identity
from governance.person.models import Person
from governance.remediation.models import Remediation
from governance.scheduler.models import ScheduledJob

__all__ = [
    "AuditEvent",
    "Base",
    "BusinessEntity",
    "BusinessEvent",
    "Campaign",
    "Claim",
    "DiscoveryRun",
    "Identity",
    "Lease",
    "Person",
    "Remediation",
    "Review",
    "ScheduledJob",
    "SentMessage",
    "Switch",
]
