"""Engine configuration and the UTC timestamp column type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.person.models import Person
from tests.factories import make_person


def test_sqlite_pragmas(app: Steward, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite pragmas")
    with app.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA busy_timeout").scalar() == 30_000


def test_foreign_keys_enforced(session: Session) -> None:
    session.add(Person(email="orphan@example.com", manager_id=999_999))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_timestamps_round_trip_as_utc(app: Steward, session: Session) -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=paris)
    person = make_person(session, deactivated_at=moment)
    session.commit()

    with app.sessions() as fresh:
        loaded = fresh.get(Person, person.id)
        assert loaded is not None
        assert loaded.deactivated_at == moment
        assert loaded.deactivated_at is not None
        assert loaded.deactivated_at.tzinfo == UTC
        assert loaded.deactivated_at.hour == 11


def test_naive_timestamp_rejected(session: Session) -> None:
    session.add(Person(email="naive@example.com", deactivated_at=datetime(2026, 1, 1)))
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        session.flush()
