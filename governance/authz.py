"""Permission checks for security admins, owners, backup owners and reviewers."""

from __future__ import annotations

from governance.audit.service import Actor
from governance.errors import PermissionDeniedError
from governance.identity.models import Identity
from governance.settings import Settings


def is_security_admin(settings: Settings, actor: Actor) -> bool:
    """Return whether the actor is a configured or authenticated security admin."""
    if actor.kind != "person":
        return False
    return actor.security_admin or actor.name in settings.security.admins


def require_security_admin(settings: Settings, actor: Actor, action: str) -> None:
    """Raise PermissionDeniedError unless the actor is a security admin."""
    if not is_security_admin(settings, actor):
        raise PermissionDeniedError(
            f"{actor.name} may not {action}: only security admins may"
        )


def may_act_for(settings: Settings, actor: Actor, identity: Identity) -> bool:
    """Return whether the actor is the owner, an active backup owner or an admin."""
    if is_security_admin(settings, actor):
        return True
    if identity.owner is not None and identity.owner.email == actor.name:
        return True
    return any(
        backup.email == actor.name and backup.active
        for backup in identity.backup_owners
    )
