"""Importing business entities: applications, projects and vendors.

Columns (case-insensitive; [optional]): type, key, name, [status],
[owner_email]. `type` is application, project or vendor; a key is unique per
type. `status` is active or closed (empty: active). Closing an entity that
is active in Steward is not an import: it deprovisions identities, so it must
arrive as a lifecycle event (`steward event`). An entity closed in Steward
stays closed when a later file lists it as active.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor, record
from governance.business_entity.models import BusinessEntity, EntityStatus, EntityType
from governance.clock import utcnow
from governance.discovery.models import DiscoveryRun, RunStatus
from governance.imports.csvfile import (
    CsvSource,
    Row,
    RowError,
    collect_rows,
)
from governance.imports.values import parse_optional_email
from governance.person.models import Person

REQUIRED = ("type", "key", "name")
OPTIONAL = ("status", "owner_email")
ALIASES = {"owner": "owner_email", "entity_type": "type"}
ENTITIES_SOURCE = "entities"
MAX_KEY_LENGTH = 200


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


def _check_references(
    rows: list[tuple[Row, EntityRow]],
    existing: dict[tuple[EntityType, str], BusinessEntity],
    people: dict[str, Person],
) -> list[RowError]:
    errors: list[RowError] = []
    first: dict[tuple[EntityType, str], int] = {}
    for row, entity in rows:
        label = (entity.type, entity.key)
        if label in first:
            errors.append(
                RowError(
                    row.line,
                    "key",
                    f"repeated {entity.type.value} key, first on line {first[label]}",
                )
            )
        first.setdefault(label, row.line)
        if entity.owner_email and entity.owner_email not in people:
            errors.append(
                RowError(
                    row.line,
                    "owner_email",
                    f"{entity.owner_email} is not a known person",
                )
            )
        current = existing.get(label)
        if (
            current is not None
            and current.status is EntityStatus.ACTIVE
            and entity.status is EntityStatus.CLOSED
        ):
            event = {
                EntityType.PROJECT: "project.closed",
                EntityType.VENDOR: "vendor.offboarded",
                EntityType.APPLICATION: "application.decommissioned",
            }[entity.type]
            errors.append(
                RowError(
                    row.line,
                    "status",
                    f"closing an active {entity.type.value} deprovisions its "
                    "identities; send the event instead: "
                    f"steward event {event} {entity.key} --id ID",
                )
            )
    return errors


def import_entities(
    app: Steward,
    path: Path,
    *,
    actor: Actor,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
) -> EntityImportResult:
    """Create and update business entities from a CSV file in one transaction."""
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
            existing = {
                (entity.type, entity.key): entity
                for entity in session.scalars(sa.select(BusinessEntity))
            }
            people: dict[str, Person] = {}

            def check(parsed: list[tuple[Row, EntityRow]]) -> list[RowError]:
                owners = {r.owner_email for _, r in parsed if r.owner_email}
                people.update(
                    (person.email, person)
                    for person in session.scalars(
                        sa.select(Person).where(Person.email.in_(owners))
                    )
                )
                return _check_references(parsed, existing, people)

            rows, rejected = collect_rows(
                source,
                _convert,
                skip_invalid=skip_invalid,
                rejects_path=rejects_path,
                check_references=check,
            )
            result.rejected = rejected
            _apply(session, rows, existing, people, actor, result)
    except Exception as error:
        _finish(app, result, RunStatus.FAILED, error=str(error).splitlines()[0])
        raise
    _finish(app, result, RunStatus.SUCCEEDED)
    return result


def _apply(
    session: Session,
    rows: list[tuple[Row, EntityRow]],
    existing: dict[tuple[EntityType, str], BusinessEntity],
    people: dict[str, Person],
    actor: Actor,
    result: EntityImportResult,
) -> None:
    for _, row in rows:
        owner = people.get(row.owner_email or "")
        owner_id = owner.id if owner is not None else None
        current = existing.get((row.type, row.key))
        label = f"{row.type.value}:{row.key}"
        if current is None:
            entity = BusinessEntity(
                type=row.type,
                key=row.key,
                name=row.name,
                status=row.status,
                owner_id=owner_id,
                closed_at=utcnow() if row.status is EntityStatus.CLOSED else None,
            )
            session.add(entity)
            record(
                session,
                actor=actor,
                action="entity.created",
                object_type="business_entity",
                object_id=label,
                after_state=row.status.value,
            )
            result.created += 1
            continue
        # A closed entity stays closed: its identities were deprovisioned by
        # an event, and a stale export listing it as active must not undo that.
        status = (
            EntityStatus.CLOSED if current.status is EntityStatus.CLOSED else row.status
        )
        before = current.status.value
        changed = []
        for name, value in (
            ("name", row.name),
            ("owner_id", owner_id),
            ("status", status),
        ):
            if getattr(current, name) != value:
                setattr(current, name, value)
                changed.append(name)
        if not changed:
            result.unchanged += 1
            continue
        record(
            session,
            actor=actor,
            action="entity.updated",
            object_type="business_entity",
            object_id=label,
            before_state=before,
            after_state=current.status.value,
            details={"changed": changed},
        )
        result.updated += 1


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
