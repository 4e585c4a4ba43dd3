"""Times shown in the reader's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.timefmt import show_date, show_time


def test_time_in_reader_zone() -> None:
    moment = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    assert show_time(moment, "Europe/Paris") == "2026-12-05 00:30 CET"
    assert show_time(moment, "America/New_York") == "2026-12-04 18:30 EST"


def test_unknown_zone_falls_back_to_utc() -> None:
    moment = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    assert show_time(moment, "Mars/Olympus") == "2026-12-04 23:30 UTC"
    assert show_time(moment, None) == "2026-12-04 23:30 UTC"


def test_naive_value_taken_as_utc() -> None:
    assert show_date(datetime(2026, 12, 4, 23, 30), "Asia/Tokyo") == "2026-12-05"
    assert show_time(None, "UTC") == "never"
