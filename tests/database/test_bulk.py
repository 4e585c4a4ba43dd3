"""Bulk inserts: the same stored values as a Core insert, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.database.base import sqlite_timestamp
from governance.database.bulk import allocate_ids, insert_rows
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from tests.factories import make_identity

OUTBOX = cast(sa.Table, Remediation.__table__)
COLUMNS = (
    "kind",
    "status",
    "dedupe_key",
    "payload",
    "reason",
    "requested_by",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
# Text that COPY and executemany must carry unchanged: delimiters, escapes,
# line breaks and non-ASCII characters.
AWKWARD = 'tab\there, line\nbreak\r, back\\slash, "quote", \\N, naïve, 中文'
BERLIN = timezone(timedelta(hours=1))


def _values(number: int, moment: datetime) -> tuple[Any, ...]:
    return (
        RemediationKind.NOTIFY,
        "pending",
        f"bulk:{number}",
        {"text": AWKWARD, "nested": {"n": number, "none": None}},
        AWKWARD,
        "bulk@example.com",
        number,
        None,
        moment,
        moment,
    )


def _stored(session: Session, dedupe_key: str) -> dict[str, Any]:
    remediation = session.scalars(
        sa.select(Remediation).where(Remediation.dedupe_key == dedupe_key)
    ).one()
    return {
        "kind": remediation.kind,
        "status": remediation.status,
        "payload": remediation.payload,
        "reason": remediation.reason,
        "attempts": remediation.attempts,
        "next_attempt_at": remediation.next_attempt_at,
        "created_at": remediation.created_at,
    }


def test_stores_what_core_insert_stores(session: Session) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=BERLIN)
    assert insert_rows(session, OUTBOX, COLUMNS, [_values(1, moment)]) == 1
    session.execute(
        sa.insert(OUTBOX),
        [dict(zip(COLUMNS, _values(2, moment), strict=True))],
    )
    session.commit()
    session.expire_all()

    bulk = _stored(session, "bulk:1")
    core = _stored(session, "bulk:2")
    assert bulk["payload"] == {"text": AWKWARD, "nested": {"n": 1, "none": None}}
    assert bulk["reason"] == AWKWARD
    assert bulk["kind"] is RemediationKind.NOTIFY
    assert bulk["status"] is RemediationStatus.PENDING
    assert bulk["next_attempt_at"] is None
    assert bulk["created_at"] == moment
    assert bulk["created_at"].tzinfo == UTC
    assert core["created_at"] == bulk["created_at"]
    assert core["reason"] == bulk["reason"]
    assert core["attempts"] == 2


def test_sqlite_timestamps_stored_as_core_stores_them(
    session: Session, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the text form is SQLite's")
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=BERLIN)
    insert_rows(session, OUTBOX, COLUMNS, [_values(1, moment)])
    session.execute(
        sa.insert(OUTBOX), [dict(zip(COLUMNS, _values(2, moment), strict=True))]
    )
    stored = session.execute(
        sa.text("SELECT created_at FROM remediation ORDER BY dedupe_key")
    ).all()
    assert [row[0] for row in stored] == ["2026-03-01 11:00:00.000000"] * 2


def test_sqlite_timestamp_text_sorts_in_time_order() -> None:
    early = datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC)
    late = datetime(2026, 1, 1, tzinfo=UTC)
    assert sqlite_timestamp(early) == "0999-12-31 23:59:59.000000"
    assert sqlite_timestamp(early) < sqlite_timestamp(late)
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_timestamp(datetime(2026, 1, 1))


def test_many_distinct_timestamps_stored(session: Session) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        _values(number, start + timedelta(seconds=number)) for number in range(5000)
    ]
    rows.append(_values(5000, start.astimezone(BERLIN)))
    insert_rows(session, OUTBOX, COLUMNS, rows)
    session.commit()
    assert _stored(session, "bulk:4999")["created_at"] == start + timedelta(
        seconds=4999
    )
    assert _stored(session, "bulk:5000")["created_at"] == start
    assert _stored(session, "bulk:0")["created_at"] == start


def test_text_for_json_column_stored_as_given(session: Session) -> None:
    row = list(_values(1, datetime.now(UTC)))
    row[COLUMNS.index("payload")] = '{"b": 1, "a": "x"}'
    insert_rows(session, OUTBOX, COLUMNS, [row], json_text=("payload",))
    session.commit()
    assert _stored(session, "bulk:1")["payload"] == {"a": "x", "b": 1}


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("status", "finished", "not a valid RemediationStatus for column status"),
        ("created_at", datetime(2026, 1, 1), "naive datetime"),
    ],
)
def test_invalid_value_writes_nothing(
    session: Session, column: str, value: Any, message: str
) -> None:
    good = _values(1, datetime.now(UTC))
    bad = list(_values(2, datetime.now(UTC)))
    bad[COLUMNS.index(column)] = value
    with pytest.raises(ValueError, match=message):
        insert_rows(session, OUTBOX, COLUMNS, [good, bad])
    count = session.scalar(sa.select(sa.func.count()).select_from(Remediation))
    assert count == 0


def test_columns_with_defaults_required(session: Session) -> None:
    with pytest.raises(ValueError, match="columns with defaults: attempts"):
        insert_rows(session, OUTBOX, [c for c in COLUMNS if c != "attempts"], [])
    with pytest.raises(ValueError, match="has no columns colour"):
        insert_rows(session, OUTBOX, [*COLUMNS, "colour"], [])


def test_allocated_ids_never_collide(session: Session) -> None:
    first = make_identity(session)
    table = cast(sa.Table, Identity.__table__)
    ids = allocate_ids(session, table, 3)
    assert len(set(ids)) == 3
    assert min(ids) > first.id
    rows = [
        {
            "id": identity_id,
            "source": "bulk",
            "kind": "api_key",
            "external_id": f"key-{identity_id}",
            "name": "bulk",
            "tier": RiskTier.STANDARD,
            "detected_tier": RiskTier.STANDARD,
            "state": IdentityState.ORPHANED,
        }
        for identity_id in ids
    ]
    session.execute(sa.insert(table), rows)
    later = make_identity(session)
    assert later.id not in ids
    assert later.id > first.id
    assert allocate_ids(session, table, 0) == []
    session.commit()
    count = session.scalar(sa.select(sa.func.count()).select_from(Identity))
    assert count == 5
