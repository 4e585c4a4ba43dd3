"""Owner and business entities read from AWS resource tags."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.aws.config import TagNames

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """Return AWS's list of {"Key": ..., "Value": ...} pairs as a dict."""
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in tags or ()}


def tag_value(tags: Mapping[str, str], names: Iterable[str]) -> str | None:
    """Return the stripped value of the first tag in `names`, or None.

    Names match case-insensitively; an empty value counts as missing.
    """
    lowered = {key.lower(): value for key, value in sorted(tags.items())}
    for name in names:
        value = lowered.get(name.lower(), "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True)
class TaggedFields:
    """The owner and business entity keys read from one resource's tags.

    `owner_email` is set only when the owner tag contains an email address;
    any other owner value (a team name, a user name) is kept in `owner_tag`.
    """

    owner_email: str | None
    owner_tag: str | None
    application: str | None
    project: str | None
    vendor: str | None


def tagged_fields(tags: Mapping[str, str], names: TagNames) -> TaggedFields:
    """Read the owner and the business entity keys from `tags`."""
    owner = tag_value(tags, names.owner)
    is_email = owner is not None and _EMAIL.match(owner) is not None
    return TaggedFields(
        owner_email=owner.lower() if owner is not None and is_email else None,
        owner_tag=owner if owner is not None and not is_email else None,
        application=tag_value(tags, names.application),
        project=tag_value(tags, names.project),
        vendor=tag_value(tags, names.vendor),
    )
