"""The JSON body of a lifecycle event, validated before anything is written."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from governance.business_event.models import EventType
from governance.business_event.service import MAX_EVENT_ID_LENGTH, parse_event_type
from governance.errors import InvalidInputError
from governance.imports.values import parse_timestamp
from governance.settings import normalize_email
from governance.textsafety import first_control_character

MAX_ENTITY_KEY_LENGTH = 200
MAX_ACTOR_LENGTH = 320
# An event closing an entity more than this long ago is taken to carry a
# wrong time (such as a default of 1900-01-01) rather than a late delivery.
MAX_EVENT_AGE = timedelta(days=365)


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # With duplicate keys json.loads keeps the last value, and a proxy or a
    # log reader that keeps the first would see a different event.
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKeyError(key)
        document[key] = value
    return document


class LifecycleEventRequest(BaseModel):
    """One event as the ITSM sends it.

    `time` is when the entity was closed, in UTC. `actor` is the person who
    closed it in the ITSM: an email (stored lower-case) or a name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    type: EventType
    entity_key: str
    time: datetime
    actor: str

    @field_validator("event_id", "entity_key", "actor", mode="before")
    @classmethod
    def _check_text(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        text = value.strip()
        limit = {
            "event_id": MAX_EVENT_ID_LENGTH,
            "entity_key": MAX_ENTITY_KEY_LENGTH,
            "actor": MAX_ACTOR_LENGTH,
        }[str(info.field_name)]
        if not 1 <= len(text) <= limit:
            raise ValueError(f"expected 1 to {limit} characters")
        control = first_control_character(text)
        if control is not None:
            raise ValueError(f"contains the control character {control}")
        return text

    @field_validator("type", mode="before")
    @classmethod
    def _parse_type(cls, value: Any) -> EventType:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        try:
            return parse_event_type(value)
        except InvalidInputError as error:
            raise ValueError(str(error)) from None

    @field_validator("time", mode="before")
    @classmethod
    def _parse_time(cls, value: Any, info: ValidationInfo) -> datetime:
        if not isinstance(value, str):
            raise ValueError("expected an ISO 8601 date or time as a string")
        moment = parse_timestamp(value)
        if moment is None:
            raise ValueError("expected an ISO 8601 date or time, got an empty string")
        latest: datetime | None = (info.context or {}).get("latest")
        if latest is not None and moment > latest:
            raise ValueError(f"{value} is in the future")
        earliest: datetime | None = (info.context or {}).get("earliest")
        if earliest is not None and moment < earliest:
            raise ValueError(
                f"{value} is more than {MAX_EVENT_AGE.days} days ago; "
                "send the time the entity was closed"
            )
        return moment

    @field_validator("actor")
    @classmethod
    def _normalize_actor(cls, value: str) -> str:
        # An email is compared with the security admins' emails when the
        # event's approval is decided, so it is stored in their normal form.
        return normalize_email(value) if "@" in value else value


def parse_event_request(
    body: bytes, *, now: datetime, max_skew: timedelta
) -> LifecycleEventRequest:
    """Parse and validate a request body.

    Raises InvalidInputError naming the invalid field or the duplicate key.
    A `time` later than `now + max_skew` is rejected as in the future, and
    one earlier than `now - MAX_EVENT_AGE` as too old.
    """
    try:
        document = json.loads(body, object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError:
        raise InvalidInputError("invalid body: expected UTF-8 text") from None
    except _DuplicateKeyError as error:
        raise InvalidInputError(
            f"malformed JSON: the key {error.key!r} appears more than once"
        ) from None
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"malformed JSON: {error}") from None
    except RecursionError:
        raise InvalidInputError("malformed JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidInputError("invalid body: expected a JSON object")
    try:
        return LifecycleEventRequest.model_validate(
            document,
            context={"latest": now + max_skew, "earliest": now - MAX_EVENT_AGE},
        )
    except ValidationError as error:
        raise InvalidInputError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "body"
        if item["type"] == "missing":
            problems.append(f"missing field {field!r}")
        elif item["type"] == "extra_forbidden":
            problems.append(f"unknown field {field!r}")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"invalid field {field!r}: {message}")
    return "; ".join(problems)
