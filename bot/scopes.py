"""The bot token scopes Steward needs, and a check of the scopes a token has.

`METHOD_SCOPES` names the scopes of every Web API method Steward calls with
the bot token, as Slack's method reference lists them. The app manifest in
deploy/slack/manifest.yaml requests exactly `REQUIRED_SCOPES`, and a test
keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable

METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    # The delivery check reads back what the bot posted in public and private
    # channels and in direct messages.
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "conversations.open": ("im:write",),
    # users.info returns the profile's email only with users:read.email.
    "users.info": ("users:read", "users:read.email"),
    "users.lookupByEmail": ("users:read.email",),
    "usergroups.users.list": ("usergroups:read",),
    "views.publish": (),
    "views.open": (),
}

# Scopes that features need beyond Web API calls: the slash command, and the
# user_change event (delivered only with users:read).
FEATURE_SCOPES: dict[str, tuple[str, ...]] = {
    "slash commands": ("commands",),
    "user_change event": ("users:read",),
}

REQUIRED_SCOPES: frozenset[str] = frozenset(
    scope
    for scopes in [*METHOD_SCOPES.values(), *FEATURE_SCOPES.values()]
    for scope in scopes
)


def parse_scopes(header: str) -> frozenset[str]:
    """Return the scopes of an `X-OAuth-Scopes` header (comma-separated)."""
    return frozenset(part.strip() for part in header.split(",") if part.strip())


def missing_scopes(granted: Iterable[str]) -> list[str]:
    """Return the required scopes that are not in `granted`, sorted."""
    return sorted(REQUIRED_SCOPES - set(granted))
