"""Parsing of CSV cell values; each parser raises ValueError with what it expected."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from governance.settings import normalize_email

_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}


def parse_bool(text: str, *, default: bool | None = None) -> bool:
    value = text.strip().lower()
    if not value and default is not None:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


def parse_email(text: str) -> str:
    return normalize_email(text)


def parse_optional_email(text: str) -> str | None:
    return normalize_email(text) if text.strip() else None


def parse_timestamp(text: str) -> datetime | None:
    """Parse an ISO 8601 date or date-time; no time zone means UTC."""
    value = text.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 date or time such as 2026-03-01 or "
            f"2026-03-01T12:00:00Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


Scalar = str | int | float | bool | None


def parse_metadata(text: str) -> dict[str, Scalar]:
    """Parse non-secret metadata: a JSON object of scalars, or k=v pairs split by ;."""
    value = text.strip()
    if not value:
        return {}
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"invalid JSON object: {error.msg}") from None
        if not isinstance(document, dict):
            raise ValueError("expected a JSON object")
        for key, item in document.items():
            if not isinstance(item, str | int | float | bool) and item is not None:
                raise ValueError(
                    f"metadata {key!r} must be a string, number or boolean"
                )
        _reject_secret_keys(document)
        return document
    pairs: dict[str, Scalar] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        key, separator, item = part.partition("=")
        if not separator or not key.strip():
            raise ValueError(
                "expected key=value pairs separated by ';' or a JSON object, "
                f"got {part!r}"
            )
        pairs[key.strip()] = item.strip()
    _reject_secret_keys(pairs)
    return pairs


# Metadata names that suggest a credential value rather than a description.
_SECRET_KEY = re.compile(
    r"(password|passwd|secret|private_?key|credential|token)", re.I
)
_IDENTIFIER_SUFFIX = re.compile(r"(_id|_accessor|_name|_arn)$", re.I)


def _reject_secret_keys(metadata: dict[str, Scalar]) -> None:
    # One search over all keys clears most rows: no secret word in any key.
    # Keys are joined by a line break, which no secret word contains.
    if _SECRET_KEY.search("\n".join(metadata)) is None:
        return
    for key in metadata:
        if _SECRET_KEY.search(key) and not _IDENTIFIER_SUFFIX.search(key):
            raise ValueError(
                f"metadata {key!r} looks like a secret; Steward stores metadata "
                "and identifiers only, so remove it from the export"
            )
