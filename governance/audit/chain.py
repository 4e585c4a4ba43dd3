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
from json.encoder import encode_basestring
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


# One encoder for every event: json.dumps builds a new encoder per call.
_DETAILS_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def details_json(details: Mapping[str, Any]) -> str:
    """Return `details` as canonical JSON text, the form it takes inside an event.

    Raises TypeError or ValueError when `details` contains a value JSON cannot
    represent.
    """
    if not details:
        return "{}"
    return _DETAILS_ENCODER.encode(details)


def canonical_text(
    *,
    seq: int,
    occurred_at: str,
    actor: str,
    actor_type: str,
    action: str,
    object_type: str,
    object_id: str,
    before_state: str | None,
    after_state: str | None,
    reason: str,
    details: str,
    prev_hash: str,
) -> str:
    """Return the canonical JSON text of an event from typed fields.

    Writes the document key by key in sorted order instead of sorting a dict,
    with json's own string encoder, so the text equals json.dumps with the
    canonical options (tests compare the two). `occurred_at` is already in
    the canonical timestamp form and `details` is the text `details_json`
    returns.
    """
    text = encode_basestring
    return (
        f'{{"action":{text(action)},"actor":{text(actor)},'
        f'"actor_type":{text(actor_type)},'
        f'"after_state":{_json_text(after_state)},'
        f'"before_state":{_json_text(before_state)},'
        f'"details":{details},"object_id":{text(object_id)},'
        f'"object_type":{text(object_type)},"occurred_at":{text(occurred_at)},'
        f'"prev_hash":{text(prev_hash)},"reason":{text(reason)},'
        f'"seq":{int.__repr__(seq)}}}'
    )


_TEXT_FIELDS = (
    "actor",
    "actor_type",
    "action",
    "object_type",
    "object_id",
    "occurred_at",
    "reason",
    "prev_hash",
)
_OPTIONAL_TEXT_FIELDS = ("before_state", "after_state")


def _has_plain_types(document: Mapping[str, Any]) -> bool:
    # The typed encoder covers what the writers store; anything else (an
    # export edited by hand, say) takes json.dumps, which defines the form.
    return (
        type(document["seq"]) is int
        and all(isinstance(document[name], str) for name in _TEXT_FIELDS)
        and all(
            document[name] is None or isinstance(document[name], str)
            for name in _OPTIONAL_TEXT_FIELDS
        )
        and isinstance(document["details"], dict)
    )


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """Return the canonical JSON bytes of an event given as a mapping.

    `occurred_at` may be a datetime or its canonical string. Raises TypeError
    or ValueError when `details` contains a value JSON cannot represent.
    """
    document = {field: event[field] for field in CANONICAL_FIELDS}
    occurred_at = document["occurred_at"]
    if isinstance(occurred_at, datetime):
        document["occurred_at"] = format_timestamp(occurred_at)
    if _has_plain_types(document):
        document["details"] = details_json(document["details"])
        return canonical_text(**document).encode("utf-8")
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
