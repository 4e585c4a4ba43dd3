"""Reading the trail: verification against the database, and export files.

An export contains every canonical field plus `hash`, so an auditor can
re-verify it offline, with `steward audit verify --file` or by following the
canonical form described in `governance.audit.chain`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.audit.chain import CANONICAL_FIELDS, format_timestamp
from governance.audit.models import AuditEvent
from governance.audit.service import Head
from governance.audit.verify import VerificationResult, verify_events
from governance.errors import InvalidInputError
from governance.textsafety import neutralise_cell, restore_cell

EXPORT_FIELDS = (*CANONICAL_FIELDS, "hash")
ExportFormat = Literal["csv", "jsonl"]


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    """Return an event as a mapping of its canonical fields plus `hash`."""
    return {
        "seq": event.seq,
        "occurred_at": format_timestamp(event.occurred_at),
        "actor": event.actor,
        "actor_type": event.actor_type,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before_state": event.before_state,
        "after_state": event.after_state,
        "reason": event.reason,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def iter_events(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Yield events in `seq` order as dicts, reading in batches."""
    statement = sa.select(AuditEvent).order_by(AuditEvent.seq)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.occurred_at < until)
    last_seq = 0
    while True:
        batch = (
            session.execute(
                statement.where(AuditEvent.seq > last_seq).limit(batch_size)
            )
            .scalars()
            .all()
        )
        if not batch:
            return
        for event in batch:
            yield event_to_dict(event)
        last_seq = batch[-1].seq
        session.expunge_all()


def verify_database(
    session: Session, expected_head: Head | None = None
) -> VerificationResult:
    """Verify the whole trail stored in the database."""

    def find_seq_by_hash(value: str) -> int | None:
        return session.execute(
            sa.select(AuditEvent.seq).where(AuditEvent.hash == value)
        ).scalar_one_or_none()

    return verify_events(iter_events(session), find_seq_by_hash, expected_head)


def _csv_row(event: dict[str, Any]) -> list[str]:
    row = []
    for field in EXPORT_FIELDS:
        value = event[field]
        if field == "details":
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        elif value is None:
            text = ""
        else:
            text = str(value)
        row.append(neutralise_cell(text))
    return row


def write_export(
    events: Iterator[dict[str, Any]], output: IO[str], export_format: ExportFormat
) -> Head | None:
    """Write events to `output` and return the last one's head, if any.

    In CSV, a cell that a spreadsheet would run as a formula, or that starts
    with an apostrophe, gets one leading apostrophe; readers drop it. An empty
    cell in `before_state` or `after_state` is a null.
    """
    last: dict[str, Any] | None = None
    if export_format == "csv":
        writer = csv.writer(output, lineterminator="\n")
        writer.writerow(EXPORT_FIELDS)
        for event in events:
            writer.writerow(_csv_row(event))
            last = event
    else:
        for event in events:
            output.write(json.dumps(event, sort_keys=True, ensure_ascii=False))
            output.write("\n")
            last = event
    if last is None:
        return None
    return Head(int(last["seq"]), str(last["hash"]))


def _parse_csv_row(row: dict[str, str], line: int, path: Path) -> dict[str, Any]:
    event: dict[str, Any] = {field: restore_cell(row[field]) for field in EXPORT_FIELDS}
    try:
        event["seq"] = int(event["seq"])
        event["details"] = json.loads(event["details"])
    except ValueError as error:
        raise InvalidInputError(
            f"{path}, line {line}: invalid value: {error}"
        ) from None
    for field in ("before_state", "after_state"):
        event[field] = event[field] or None
    return event


def read_export(path: Path) -> list[dict[str, Any]]:
    """Read a CSV or JSON lines export back into event mappings."""
    try:
        return _read_export(path)
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"{path} is not a UTF-8 text file; expected an export written by "
            "steward audit export"
        ) from None
    except csv.Error as error:
        raise InvalidInputError(f"{path}: malformed CSV: {error}") from None


def _read_export(path: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            missing = set(EXPORT_FIELDS) - set(reader.fieldnames or ())
            if missing:
                raise InvalidInputError(
                    f"{path}: missing columns {', '.join(sorted(missing))}"
                )
            for row in reader:
                events.append(_parse_csv_row(row, reader.line_num, path))
        else:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InvalidInputError(
                        f"{path}, line {number}: invalid JSON: {error}"
                    ) from None
                missing = set(EXPORT_FIELDS) - set(event)
                if missing:
                    raise InvalidInputError(
                        f"{path}, line {number}: missing fields "
                        f"{', '.join(sorted(missing))}"
                    )
                events.append(event)
    return events


def verify_export(path: Path, expected_head: Head | None = None) -> VerificationResult:
    """Verify an export file offline.

    An export filtered with `--since` starts after the genesis event, so the
    chain is checked from its first event onwards, taking that event's
    `prev_hash` on trust.
    """
    events = read_export(path)
    seq_by_hash = {str(event["hash"]): int(event["seq"]) for event in events}
    if not events:
        return verify_events([], seq_by_hash.get, expected_head)
    first = events[0]
    anchor = Head(int(first["seq"]) - 1, str(first["prev_hash"]))
    return verify_events(events, seq_by_hash.get, expected_head, anchor=anchor)
