"""Exports of the audit trail and their offline verification."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import (
    iter_events,
    read_export,
    verify_export,
    write_export,
)
from governance.audit.service import Actor, read_head, record
from governance.audit.verify import TamperKind
from governance.clock import utcnow
from governance.errors import InvalidInputError

ACTOR = Actor.person("auditor@example.com")
FORMULAS = ['=HYPERLINK("http://example.com")', "+1+1", "-2", "@SUM(A1)", "'quoted"]


def _fill(session: Session) -> None:
    for number, reason in enumerate(FORMULAS):
        record(
            session,
            actor=ACTOR,
            action="test.formula",
            object_type="identity",
            object_id=str(number),
            reason=reason,
            details={"text": reason},
        )
    session.commit()


def _export(
    session: Session, path: Path, export_format: str, **filters: object
) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        write_export(iter_events(session, **filters), handle, export_format)  # type: ignore[arg-type]


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_export_verifies_offline(
    session: Session, tmp_path: Path, export_format: str
) -> None:
    _fill(session)
    path = tmp_path / f"trail.{export_format}"
    _export(session, path, export_format)

    result = verify_export(path, read_head(session))
    assert result.ok, result.finding
    assert result.events_checked == len(FORMULAS)
    assert [event["reason"] for event in read_export(path)] == FORMULAS


def test_csv_neutralises_formulas(session: Session, tmp_path: Path) -> None:
    _fill(session)
    path = tmp_path / "trail.csv"
    _export(session, path, "csv")

    with path.open(encoding="utf-8", newline="") as handle:
        reasons = [row["reason"] for row in csv.DictReader(handle)]
    assert reasons == ["'" + reason for reason in FORMULAS]
    for reason in reasons:
        assert not reason.startswith(("=", "+", "-", "@"))


def test_tampered_export_found(session: Session, tmp_path: Path) -> None:
    _fill(session)
    path = tmp_path / "trail.jsonl"
    _export(session, path, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[2])
    event["actor"] = "mallory@example.com"
    lines[2] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    finding = verify_export(path).finding
    assert finding is not None
    assert finding.kind is TamperKind.EDITED
    assert finding.seq == 3


def test_export_time_window(app: Steward, tmp_path: Path) -> None:
    start = utcnow()
    with time_machine.travel(start, tick=False), app.session() as session:
        record(session, actor=ACTOR, action="old", object_type="x", object_id="1")
    later = start + timedelta(days=2)
    with time_machine.travel(later, tick=False), app.session() as session:
        record(session, actor=ACTOR, action="new", object_type="x", object_id="2")
        record(session, actor=ACTOR, action="new", object_type="x", object_id="3")

    path = tmp_path / "window.jsonl"
    with app.sessions() as session:
        _export(session, path, "jsonl", since=start + timedelta(days=1))
        head = read_head(session)
    events = read_export(path)
    assert [event["seq"] for event in events] == [2, 3]
    result = verify_export(path, head)
    assert result.ok, result.finding

    until_path = tmp_path / "until.jsonl"
    with app.sessions() as session:
        _export(session, until_path, "jsonl", until=start + timedelta(days=1))
    assert [event["seq"] for event in read_export(until_path)] == [1]


def test_malformed_export_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"seq": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 1: missing fields"):
        read_export(path)
    csv_path = tmp_path / "broken.csv"
    csv_path.write_text("seq,actor\n1,a\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="missing columns"):
        read_export(csv_path)


def test_write_export_to_memory(session: Session) -> None:
    _fill(session)
    buffer = io.StringIO()
    head = write_export(iter_events(session), buffer, "jsonl")
    assert head == read_head(session)
    assert len(buffer.getvalue().splitlines()) == len(FORMULAS)
