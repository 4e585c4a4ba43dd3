"""A fixed start time and a frozen clock for the scheduled-job tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

# A Monday morning, far enough ahead that no default date lands after it.
T0 = datetime(2031, 1, 6, 9, 0, tzinfo=UTC)


def at(moment: datetime) -> time_machine.travel:
    """Freeze the clock at `moment` inside a `with` block."""
    return time_machine.travel(moment, tick=False)


def day(count: float) -> datetime:
    """Return T0 plus `count` days."""
    return T0 + timedelta(days=count)
