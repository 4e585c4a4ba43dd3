"""The canonical form of an audit event and its hash.

Canonical form: a JSON object with exactly the keys `seq`, `occurred_at`,
`actor`, `actor_type`, `action`, `object_type`, `object_id`, `before_state`,
`after_state`, `reason`, `details` and `prev_hash`; keys sorted, no
whitespace (separators "," and ":"), non-ASCII characters written as UTF-8
rather than escaped, and `occurred_at` as UTC with six fractional digits and
a "Z" suffix (2026-01-31T23:59:59.000000Z). The event's hash is the lowercase
hex SHA-256 of those bytes. The first event's `prev_hash` is 64 zeros.

An auditor can recompute every hash from an export with any JSON library that
sorts keys, following the paragraph above.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

CANONICAL_FIELDS = (
    "seq",
    "occurred_at",
    "actor",
    "actor_type",
    "action",
    "object_type",
    "object_id",
    "before_state",
    "after_state",
    "reason",
    "details",
    "prev_hash",
)


def format_timestamp(value: datetime) -> str:
    """Return `value` in the canonical UTC form with microseconds and "Z"."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> datetime:
    """Parse a canonical timestamp back into an aware UTC datetime."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """Return the canonical JSON bytes of an event given as a mapping.

    `occurred_at` may be a datetime or its canonical string. Raises TypeError
    or ValueError when `details` contains a value JSON cannot represent.
    """
    document = {field: event[field] for field in CANONICAL_FIELDS}
    occurred_at = document["occurred_at"]
    if isinstance(occurred_at, datetime):
        document["occurred_at"] = format_timestamp(occurred_at)
    return json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


def event_hash(event: Mapping[str, Any]) -> str:
    """Return the hex SHA-256 of the event's canonical form."""
    return hashlib.sha256(canonical_bytes(event)).hexdigest()
