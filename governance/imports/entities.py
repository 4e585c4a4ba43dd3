"""Importing business entities: applications, projects and vendors.

Columns (case-insensitive; [optional]): type, key, name, [status],
[owner_email]. `type` is application, project or vendor; a key is unique per
type. `status` is active or closed (empty: active). Closing an entity that
is active in Steward is not an import: it deprovisions identities, so it must
arrive as a lifecycle event (`steward event`). An entity closed in Steward
stays closed when a later file lists it as active.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor, EventSpec, record_many
from governance.business_entity.models import BusinessEntity, EntityStatus, EntityType
from governance.clock import utcnow
from governance.database.bulk import allocate_ids, insert_rows
from governance.database.locks import ENTITY_IMPORT_LOCK_KEY, lock_for_transaction
from governance.discovery.models import DiscoveryRun, RunStatus, run_error
from governance.gc_pause import paused_gc
from governance.imports.csvfile import (
    CsvSource,
    FileChangedError,
    Progress,
    Row,
    RowDigest,
    RowError,
    ValidationErrors,
    batches,
    check_unchanged,
    report_progress,
    reread_valid_rows,
)
from governance.imports.values import parse_optional_email
from governance.person.models import Person

REQUIRED = ("type", "key", "name")
OPTIONAL = ("status", "owner_email")
ALIASES = {"owner": "owner_email", "entity_type": "type"}
ENTITIES_SOURCE = "entities"
MAX_KEY_LENGTH = 200
# Rows checked against the database and written per statement.
BATCH_SIZE = 5_000
ENTITY_TABLE = cast(sa.Table, BusinessEntity.__table__)
INSERT_COLUMNS = (
    "id",
    "type",
    "key",
    "name",
    "status",
    "owner_id",
    "closed_at",
    "created_at",
    "updated_at",
)
# The lifecycle event that closes an active entity of each type.
CLOSING_EVENTS = {
    EntityType.PROJECT: "project.closed",
    EntityType.VENDOR: "vendor.offboarded",
    EntityType.APPLICATION: "application.decommissioned",
}


@dataclass(frozen=True)
class EntityRow:
    type: EntityType
    key: str
    name: str
    status: EntityStatus
    owner_email: str | None


@dataclass
class EntityImportResult:
    """Counts of one entity import."""

    run_id: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def _convert(row: Row) -> tuple[EntityRow | None, list[RowError]]:
    cells = row.cells
    errors: list[RowError] = []
    type_text = cells["type"].lower()
    types = ", ".join(member.value for member in EntityType)
    if type_text not in {member.value for member in EntityType}:
        errors.append(
            RowError(row.line, "type", f"expected one of {types}, got {type_text!r}")
        )
    key = cells["key"]
    if not key:
        errors.append(RowError(row.line, "key", "missing value"))
    elif len(key) > MAX_KEY_LENGTH:
        errors.append(RowError(row.line, "key", f"too long: at most {MAX_KEY_LENGTH}"))
    name = cells["name"]
    if not name:
        errors.append(RowError(row.line, "name", "missing value"))
    elif len(name) > 300:
        errors.append(RowError(row.line, "name", "too long: at most 300 characters"))
    status_text = cells.get("status", "").lower() or EntityStatus.ACTIVE.value
    if status_text not in {member.value for member in EntityStatus}:
        errors.append(
            RowError(
                row.line, "status", f"expected active or closed, got {status_text!r}"
            )
        )
    owner = None
    try:
        owner = parse_optional_email(cells.get("owner_email", ""))
    except ValueError as error:
        errors.append(RowError(row.line, "owner_email", str(error)))
    if errors:
        return None, errors
    return EntityRow(
        EntityType(type_text), key, name, EntityStatus(status_text), owner
    ), []


class _Validation:
    """The validation pass, which keeps the first line of each key, never whole rows."""

    def __init__(self, session: Session, skip_invalid: bool) -> None:
        self.session = session
        self.errors = ValidationErrors(keep_all=skip_invalid)
        self.digest = RowDigest()
        self.first_line: dict[tuple[EntityType, str], int] = {}

    def check_batch(self, batch: list[Row]) -> None:
        converted = [(row, *_convert(row)) for row in batch]
        parsed = [entity for _, entity, _ in converted if entity is not None]
        known_owners = _stored_emails(
            self.session, {e.owner_email for e in parsed if e.owner_email}
        )
        stored = _stored_entities(self.session, parsed)
        for row, entity, conversion_errors in converted:
            self.digest.add(row)
            errors = conversion_errors
            if entity is not None:
                errors = self._check_references(row.line, entity, known_owners, stored)
            if errors:
                self.errors.add(row.line, errors)

    def _check_references(
        self,
        line: int,
        entity: EntityRow,
        known_owners: set[str],
        stored: dict[tuple[EntityType, str], StoredEntity],
    ) -> list[RowError]:
        errors: list[RowError] = []
        label = (entity.type, entity.key)
        first = self.first_line.setdefault(label, line)
        if first != line:
            errors.append(
                RowError(
                    line,
                    "key",
                    f"repeated {entity.type.value} key, first on line {first}",
                )
            )
        if entity.owner_email and entity.owner_email not in known_owners:
            errors.append(
                RowError(
                    line, "owner_email", f"{entity.owner_email} is not a known person"
                )
            )
        current = stored.get(label)
        if (
            current is not None
            and current.status is EntityStatus.ACTIVE
            and entity.status is EntityStatus.CLOSED
        ):
            event = CLOSING_EVENTS[entity.type]
            errors.append(
                RowError(
                    line,
                    "status",
                    f"closing an active {entity.type.value} deprovisions its "
                    "identities; send the event instead: "
                    f"steward event {event} {entity.key} --id ID",
                )
            )
        return errors


class StoredEntity(NamedTuple):
    """The stored fields of a business entity that an import compares."""

    id: int
    name: str
    owner_id: int | None
    status: EntityStatus


def _stored_entities(
    session: Session, entities: list[EntityRow]
) -> dict[tuple[EntityType, str], StoredEntity]:
    keys_by_type: dict[EntityType, set[str]] = {}
    for entity in entities:
        keys_by_type.setdefault(entity.type, set()).add(entity.key)
    stored: dict[tuple[EntityType, str], StoredEntity] = {}
    for entity_type, keys in keys_by_type.items():
        rows = session.execute(
            sa.select(
                BusinessEntity.key,
                BusinessEntity.id,
                BusinessEntity.name,
                BusinessEntity.owner_id,
                BusinessEntity.status,
            ).where(BusinessEntity.type == entity_type, BusinessEntity.key.in_(keys))
        )
        for row in rows:
            stored[(entity_type, row.key)] = StoredEntity(
                row.id, row.name, row.owner_id, row.status
            )
    return stored


def _stored_emails(session: Session, emails: set[str]) -> set[str]:
    if not emails:
        return set()
    return set(session.scalars(sa.select(Person.email).where(Person.email.in_(emails))))


def _owner_ids(session: Session, emails: set[str]) -> dict[str, int]:
    if not emails:
        return {}
    rows = session.execute(
        sa.select(Person.email, Person.id).where(Person.email.in_(emails))
    )
    return {row.email: row.id for row in rows}


def _validate(
    session: Session,
    source: CsvSource,
    *,
    skip_invalid: bool,
    rejects_path: Path | None,
    progress: Progress | None,
) -> tuple[set[int], bytes, int]:
    """Validate the whole file in one reading, raising CsvImportError if invalid.

    With `skip_invalid`, the invalid rows go to the rejects file instead.
    Returns the invalid lines, the digest of the rows and the rejected count.
    """
    validation = _Validation(session, skip_invalid)
    malformed: list[RowError] = []
    count = 0
    for batch in batches(source.rows(errors=malformed), BATCH_SIZE):
        validation.check_batch(batch)
        for problem in malformed:
            validation.errors.add(problem.line, [problem])
        malformed.clear()
        count = report_progress(progress, "validated", count, len(batch))
    for problem in malformed:
        validation.errors.add(problem.line, [problem])
    rejected = validation.errors.check(source, rejects_path)
    return validation.errors.lines, validation.digest.digest(), rejected


@paused_gc()
def import_entities(
    app: Steward,
    path: Path,
    *,
    actor: Actor,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> EntityImportResult:
    """Create and update business entities from a CSV file in one transaction.

    The file is never held in memory. It is read once to validate every row
    and once more to write the entities in batches. Raises FileChangedError,
    changing nothing, when the file changes between the two readings.
    """
    source = CsvSource(path, required=REQUIRED, optional=OPTIONAL, aliases=ALIASES)
    with app.session() as session:
        run = DiscoveryRun(
            source=ENTITIES_SOURCE, method="csv-entities", actor=actor.name
        )
        session.add(run)
        session.flush()
        result = EntityImportResult(run_id=run.id)

    try:
        with app.session() as session:
            # A second import validated before the first commits would
            # insert the same entities again and fail on the unique key.
            lock_for_transaction(session, ENTITY_IMPORT_LOCK_KEY)
            invalid_lines, digest, result.rejected = _validate(
                session,
                source,
                skip_invalid=skip_invalid,
                rejects_path=rejects_path,
                progress=progress,
            )
            rows = reread_valid_rows(source, _convert, invalid_lines, digest)
            try:
                _write_entities(session, rows, actor, result, progress)
            except FileChangedError:
                raise
            except Exception:
                # A changed file can break a constraint that validation checked,
                # such as a new repeated key, before its end is read. Report the
                # change as the cause.
                check_unchanged(source, digest)
                raise
    except BaseException as error:
        _finish(app, result, RunStatus.FAILED, error=run_error(error))
        raise
    _finish(app, result, RunStatus.SUCCEEDED)
    return result


def _write_entities(
    session: Session,
    rows: Iterator[tuple[Row, EntityRow]],
    actor: Actor,
    result: EntityImportResult,
    progress: Progress | None,
) -> None:
    count = 0
    for batch in batches(rows, BATCH_SIZE):
        entities = [entity for _, entity in batch]
        stored = _stored_entities(session, entities)
        owners = _owner_ids(session, {e.owner_email for e in entities if e.owner_email})
        now = utcnow()
        created: list[tuple[EntityRow, int | None]] = []
        updates: list[dict[str, object]] = []
        events: list[EventSpec] = []
        for entity in entities:
            owner_id = owners.get(entity.owner_email or "")
            label = f"{entity.type.value}:{entity.key}"
            current = stored.get((entity.type, entity.key))
            if current is None:
                created.append((entity, owner_id))
                events.append(
                    EventSpec(
                        action="entity.created",
                        object_type="business_entity",
                        object_id=label,
                        after_state=entity.status.value,
                    )
                )
                continue
            # A closed entity stays closed: its identities were deprovisioned
            # by an event, and a stale export listing it as active must not
            # undo that.
            status = (
                EntityStatus.CLOSED
                if current.status is EntityStatus.CLOSED
                else entity.status
            )
            changed = [
                name
                for name, value in (
                    ("name", entity.name),
                    ("owner_id", owner_id),
                    ("status", status),
                )
                if getattr(current, name) != value
            ]
            if not changed:
                result.unchanged += 1
                continue
            updates.append(
                {
                    "entity_id": current.id,
                    "name": entity.name,
                    "owner_id": owner_id,
                    "status": status,
                    "updated_at": now,
                }
            )
            events.append(
                EventSpec(
                    action="entity.updated",
                    object_type="business_entity",
                    object_id=label,
                    before_state=current.status.value,
                    after_state=status.value,
                    details={"changed": changed},
                )
            )
        _insert_entities(session, created, now)
        if updates:
            session.execute(
                sa.update(ENTITY_TABLE).where(
                    ENTITY_TABLE.c.id == sa.bindparam("entity_id")
                ),
                updates,
            )
        record_many(session, actor, events)
        result.created += len(created)
        result.updated += len(updates)
        count = report_progress(progress, "imported", count, len(batch))


def _insert_entities(
    session: Session, created: list[tuple[EntityRow, int | None]], now: datetime
) -> None:
    ids = allocate_ids(session, ENTITY_TABLE, len(created))
    insert_rows(
        session,
        ENTITY_TABLE,
        INSERT_COLUMNS,
        [
            (
                entity_id,
                entity.type,
                entity.key,
                entity.name,
                entity.status,
                owner_id,
                now if entity.status is EntityStatus.CLOSED else None,
                now,
                now,
            )
            for entity_id, (entity, owner_id) in zip(ids, created, strict=True)
        ],
    )


def _finish(
    app: Steward,
    result: EntityImportResult,
    status: RunStatus,
    error: str | None = None,
) -> None:
    with app.session() as session:
        run = session.get_one(DiscoveryRun, result.run_id)
        run.status = status
        run.finished_at = utcnow()
        run.error = error
        run.seen_count = result.created + result.updated + result.unchanged
        run.new_count = result.created
        run.changed_count = result.updated
        run.unchanged_count = result.unchanged
        run.rejected_count = result.rejected
