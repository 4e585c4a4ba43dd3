"""The audit hash chain: canonical form, serialised appends, verification."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.chain import (
    CANONICAL_FIELDS,
    GENESIS_HASH,
    canonical_bytes,
    details_json,
    event_hash,
    format_timestamp,
)
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import (
    Actor,
    EventSpec,
    Head,
    read_head,
    record,
    record_many,
)
from governance.audit.verify import TamperKind, parse_head
from governance.errors import InvalidInputError

ACTOR = Actor.person("auditor@example.com")


def _append(session: Session, count: int, prefix: str = "event") -> None:
    for number in range(count):
        record(
            session,
            actor=ACTOR,
            action="test.appended",
            object_type="identity",
            object_id=f"{prefix}-{number}",
            reason=f"{prefix} {number}",
            details={"number": number, "label": "naïve ünïcode"},
        )


def _rows(session: Session) -> list[AuditEvent]:
    return list(
        session.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    )


def test_canonical_form_matches_documentation() -> None:
    event: dict[str, Any] = {
        "seq": 7,
        "occurred_at": datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC),
        "actor": "alice@example.com",
        "actor_type": "person",
        "action": "review.decided",
        "object_type": "review",
        "object_id": "42",
        "before_state": None,
        "after_state": "decided",
        "reason": "certifié",
        "details": {"b": 1, "a": [True, None]},
        "prev_hash": "ab" * 32,
    }
    text = (
        '{"action":"review.decided","actor":"alice@example.com",'
        '"actor_type":"person","after_state":"decided","before_state":null,'
        '"details":{"a":[true,null],"b":1},"object_id":"42",'
        '"object_type":"review","occurred_at":"2026-01-31T23:59:59.000000Z",'
        f'"prev_hash":"{"ab" * 32}","reason":"certifié","seq":7}}'
    )
    assert event_hash(event) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def _reference_bytes(event: dict[str, Any]) -> bytes:
    """The canonical form as the module documents it, built with json.dumps."""
    document = {name: event[name] for name in CANONICAL_FIELDS}
    if isinstance(document["occurred_at"], datetime):
        document["occurred_at"] = format_timestamp(document["occurred_at"])
    return json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


AWKWARD_TEXT = [
    "",
    'quote " and backslash \\',
    "line\nbreak\ttab\r\u0000nul\u001besc\u007fdel",
    "naïve ünïcode, 中文, emoji \U0001f512",
    "\u2028line separator\u2029",
    "</script>&<>",
]
# PostgreSQL text and JSON cannot hold NUL, so stored events go without it.
STORABLE_TEXT = [text.replace("\u0000", "") for text in AWKWARD_TEXT]


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_typed_encoder_matches_json_dumps(text: str) -> None:
    event: dict[str, Any] = {
        "seq": 2**62,
        "occurred_at": datetime(2026, 1, 31, 23, 59, 59, 17, tzinfo=UTC),
        "actor": text or "system:job",
        "actor_type": "system",
        "action": f"test.{text}",
        "object_type": "identity",
        "object_id": text,
        "before_state": None,
        "after_state": text,
        "reason": text,
        "details": {
            text: [text, 1, -2.5, 1e300, True, None, {"z": {}, "a": []}],
            "nested": {"b": text, "a": 0},
        },
        "prev_hash": "0" * 64,
    }
    assert canonical_bytes(event) == _reference_bytes(event)


def test_unusual_field_types_use_json_dumps() -> None:
    # An edited export may carry types the writers never store.
    event: dict[str, Any] = {
        "seq": 3,
        "occurred_at": "2026-01-31T23:59:59.000000Z",
        "actor": "alice@example.com",
        "actor_type": "person",
        "action": "test.edited",
        "object_type": "identity",
        "object_id": 42,
        "before_state": None,
        "after_state": None,
        "reason": None,
        "details": ["not", "an", "object"],
        "prev_hash": GENESIS_HASH,
    }
    assert canonical_bytes(event) == _reference_bytes(event)


def test_details_json_is_canonical() -> None:
    assert details_json({"b": "é", "a": [1, None]}) == '{"a":[1,null],"b":"é"}'
    with pytest.raises(ValueError, match="JSON compliant"):
        details_json({"value": float("nan")})


def test_bulk_events_verify(session: Session) -> None:
    record(session, actor=ACTOR, action="test.single", object_type="x", object_id="0")
    specs = [
        EventSpec(
            action="test.bulk",
            object_type="identity",
            object_id=str(number),
            before_state="owned" if number % 2 else None,
            after_state="under_review",
            reason=STORABLE_TEXT[number % len(STORABLE_TEXT)],
            details={"number": number, "text": STORABLE_TEXT[number % 3]},
        )
        for number in range(25)
    ]
    assert record_many(session, ACTOR, specs) == 25
    record(session, actor=ACTOR, action="test.single", object_type="x", object_id="1")
    session.commit()

    rows = _rows(session)
    assert [row.seq for row in rows] == list(range(1, 28))
    assert rows[5].details == {"number": 4, "text": STORABLE_TEXT[1]}
    assert rows[5].reason == STORABLE_TEXT[4]
    assert rows[5].before_state is None
    result = verify_database(session)
    assert result.ok, result.finding
    assert result.events_checked == 27


def test_appends_form_one_chain(session: Session) -> None:
    _append(session, 3)
    session.commit()
    _append(session, 2, prefix="second")
    session.commit()

    rows = _rows(session)
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS_HASH
    for previous, current in itertools.pairwise(rows):
        assert current.prev_hash == previous.hash
    assert read_head(session) == Head(5, rows[-1].hash)
    assert verify_database(session).ok


def test_rolled_back_events_leave_no_gap(session: Session) -> None:
    _append(session, 2)
    session.commit()
    _append(session, 3, prefix="discarded")
    session.rollback()
    _append(session, 1, prefix="kept")
    session.commit()

    assert [row.seq for row in _rows(session)] == [1, 2, 3]
    assert verify_database(session).ok


def test_savepoint_rollback_keeps_chain(session: Session) -> None:
    _append(session, 1)
    savepoint = session.begin_nested()
    _append(session, 2, prefix="inner")
    savepoint.rollback()
    _append(session, 1, prefix="after")
    session.commit()

    assert [row.object_id for row in _rows(session)] == ["event-0", "after-0"]
    assert verify_database(session).ok


def test_details_must_be_plain_json(session: Session) -> None:
    with pytest.raises(InvalidInputError, match="plain JSON"):
        record(
            session,
            actor=ACTOR,
            action="x",
            object_type="identity",
            object_id="1",
            details={"when": datetime.now(UTC)},
        )


def test_concurrent_writers_never_fork(app: Steward) -> None:
    writers, per_writer = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(number: int) -> None:
        try:
            start.wait()
            for index in range(per_writer):
                with app.session() as session:
                    _append(session, 2, prefix=f"w{number}-{index}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with app.sessions() as session:
        rows = _rows(session)
        assert [row.seq for row in rows] == list(range(1, writers * per_writer * 2 + 1))
        assert len({row.prev_hash for row in rows}) == len(rows)
        result = verify_database(session)
        assert result.ok, result.finding
        assert result.events_checked == len(rows)


# Tampering, done the way someone with write access to the database would.


def _tamper(app: Steward, *statements: str, **params: Any) -> None:
    with app.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement), params)


def _recompute_from(app: Steward, seq: int) -> None:
    """Rewrite hashes from `seq` on, as a forger hiding an edit would."""
    with app.sessions() as session:
        rows = _rows(session)
        previous_hash = rows[seq - 2].hash if seq > 1 else GENESIS_HASH
        for row in rows[seq - 1 :]:
            row.prev_hash = previous_hash
            fields = {
                "seq": row.seq,
                "occurred_at": row.occurred_at,
                "actor": row.actor,
                "actor_type": row.actor_type,
                "action": row.action,
                "object_type": row.object_type,
                "object_id": row.object_id,
                "before_state": row.before_state,
                "after_state": row.after_state,
                "reason": row.reason,
                "details": row.details,
                "prev_hash": row.prev_hash,
            }
            row.hash = event_hash(fields)
            previous_hash = row.hash
        session.commit()


@pytest.fixture
def trail(app: Steward) -> Head:
    with app.session() as session:
        _append(session, 8)
    with app.sessions() as session:
        return read_head(session)


def _verify(app: Steward, expected: Head | None = None) -> Any:
    with app.sessions() as session:
        return verify_database(session, expected)


def test_intact_trail_verifies(app: Steward, trail: Head) -> None:
    result = _verify(app, trail)
    assert result.ok
    assert result.events_checked == 8
    assert result.head == trail


def test_edited_event_found(app: Steward, trail: Head) -> None:
    _tamper(app, "UPDATE audit_event SET reason = 'nothing to see' WHERE seq = 3")
    finding = _verify(app).finding
    assert finding.kind is TamperKind.EDITED
    assert finding.seq == 3


def test_edited_event_with_new_hash_found(app: Steward, trail: Head) -> None:
    with app.sessions() as session:
        row = session.get(AuditEvent, 3)
        assert row is not None
        row.reason = "rewritten"
        fields = {c: getattr(row, c) for c in _canonical_columns()}
        row.hash = event_hash(fields)
        session.commit()
    finding = _verify(app).finding
    assert finding.kind is TamperKind.EDITED
    assert finding.seq == 3


def _canonical_columns() -> list[str]:
    return list(CANONICAL_FIELDS)


def test_deleted_event_found(app: Steward, trail: Head) -> None:
    _tamper(app, "DELETE FROM audit_event WHERE seq = 4")
    finding = _verify(app).finding
    assert finding.kind is TamperKind.DELETED
    assert finding.seq == 4


def test_deleted_and_renumbered_found(app: Steward, trail: Head) -> None:
    _tamper(
        app,
        "DELETE FROM audit_event WHERE seq = 4",
        "UPDATE audit_event SET seq = seq + 1000 WHERE seq > 4",
        "UPDATE audit_event SET seq = seq - 1001 WHERE seq > 1000",
    )
    finding = _verify(app).finding
    assert finding.kind is TamperKind.DELETED
    assert finding.seq == 4


def test_inserted_event_found(app: Steward, trail: Head) -> None:
    with app.sessions() as session:
        previous = session.get(AuditEvent, 2)
        assert previous is not None
        forged: dict[str, Any] = {
            "seq": 3,
            "occurred_at": previous.occurred_at,
            "actor": "security@example.com",
            "actor_type": "person",
            "action": "review.decided",
            "object_type": "review",
            "object_id": "99",
            "before_state": None,
            "after_state": "decided",
            "reason": "backdated approval",
            "details": {},
            "prev_hash": previous.hash,
        }
        forged_hash = event_hash(forged)
    _tamper(
        app,
        "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 3",
        "UPDATE audit_event SET seq = seq - 999 WHERE seq > 1000",
    )
    with app.sessions() as session:
        session.add(AuditEvent(**forged, hash=forged_hash))
        session.commit()

    finding = _verify(app).finding
    assert finding.kind is TamperKind.INSERTED
    assert finding.seq == 3


def test_reordered_events_found(app: Steward, trail: Head) -> None:
    _tamper(
        app,
        "UPDATE audit_event SET seq = 1005 WHERE seq = 5",
        "UPDATE audit_event SET seq = 5 WHERE seq = 6",
        "UPDATE audit_event SET seq = 6 WHERE seq = 1005",
    )
    finding = _verify(app).finding
    assert finding.kind is TamperKind.REORDERED
    assert finding.seq == 5


def test_truncation_needs_recorded_head(app: Steward, trail: Head) -> None:
    _tamper(app, "DELETE FROM audit_event WHERE seq > 5")
    assert _verify(app).ok
    finding = _verify(app, trail).finding
    assert finding.kind is TamperKind.TRUNCATED
    assert finding.seq == 6
    assert "events 6 to 8 are missing" in finding.message


def test_recomputed_chain_needs_recorded_head(app: Steward, trail: Head) -> None:
    _tamper(app, "UPDATE audit_event SET actor = 'mallory@example.com' WHERE seq = 2")
    _recompute_from(app, 2)
    assert _verify(app).ok
    finding = _verify(app, trail).finding
    assert finding.kind is TamperKind.REWRITTEN
    assert finding.seq == 8


def test_parse_head_rejects_malformed() -> None:
    head = parse_head("12:" + "A" * 64)
    assert head == Head(12, "a" * 64)
    for text in ["12", "x:" + "a" * 64, "12:abc", "12:" + "g" * 64]:
        with pytest.raises(ValueError, match="SEQ:HASH"):
            parse_head(text)


def test_details_survive_storage(app: Steward, session: Session) -> None:
    record(
        session,
        actor=ACTOR,
        action="x",
        object_type="identity",
        object_id="1",
        details={"nested": {"z": 1, "a": [1, 2.5, "三"]}, "flag": False},
    )
    session.commit()
    with app.sessions() as fresh:
        stored = fresh.get(AuditEvent, 1)
        assert stored is not None
        assert json.dumps(stored.details, sort_keys=True) == json.dumps(
            {"nested": {"z": 1, "a": [1, 2.5, "三"]}, "flag": False}, sort_keys=True
        )
        assert verify_database(fresh).ok
