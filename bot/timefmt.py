"""Times are stored in UTC and shown in the reader's own time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from governance.clock import as_utc


def zone(name: str | None) -> ZoneInfo:
    """Return the IANA time zone `name`, or UTC when it is missing or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def show_time(value: datetime | None, time_zone: str | None) -> str:
    """Return `value` as local date and time with the zone's abbreviation."""
    if value is None:
        return "never"
    local = as_utc(value).astimezone(zone(time_zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def show_date(value: datetime | None, time_zone: str | None) -> str:
    """Return the local date of `value`, or "never"."""
    if value is None:
        return "never"
    return f"{as_utc(value).astimezone(zone(time_zone)):%Y-%m-%d}"
