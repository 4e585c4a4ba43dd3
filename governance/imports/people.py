"""Importing people from an HR or directory export.

Columns (case-insensitive; [optional]): email, display_name,
[slack_user_id], [manager_email], [active], [time_zone]. `active` is yes or
no (empty: yes). People missing from the file are left as they are.

A person who turns inactive triggers the owner-departure rule: each identity
they owned passes to an active backup owner or becomes an orphan, and their
pending reviews are reassigned.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import available_timezones

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor, EventSpec, record_many
from governance.clock import utcnow
from governance.database.bulk import allocate_ids, insert_rows
from governance.database.locks import PEOPLE_IMPORT_LOCK_KEY, lock_for_transaction
from governance.discovery.models import DiscoveryRun, RunStatus, run_error
from governance.errors import ConfirmationRequiredError
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
from governance.imports.values import parse_bool, parse_email, parse_optional_email
from governance.ownership.service import DepartureResult, handle_departure
from governance.person.models import Person
from governance.settings import Settings

logger = logging.getLogger(__name__)

REQUIRED = ("email", "display_name")
OPTIONAL = ("slack_user_id", "manager_email", "active", "time_zone")
ALIASES = {
    "name": "display_name",
    "manager": "manager_email",
    "slack_id": "slack_user_id",
}
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
PEOPLE_SOURCE = "people"
# Rows checked against the database and written per statement. A batch sends
# IN lists of up to twice this many values (people and their managers), below
# SQLite's default limit of 32,766 bound parameters (since SQLite 3.32).
BATCH_SIZE = 5_000
# Departures handled between two flushes that empty the session.
DEPARTURES_PER_FLUSH = 200
PERSON_TABLE = cast(sa.Table, Person.__table__)
# The fields a file sets, in the order a `changed` list names them.
COMPARED_FIELDS = ("display_name", "slack_user_id", "active", "time_zone")
INSERT_COLUMNS = (
    "id",
    "email",
    "display_name",
    "slack_user_id",
    "time_zone",
    "active",
    "deactivated_at",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class PersonRow:
    email: str
    display_name: str
    slack_user_id: str | None
    manager_email: str | None
    active: bool
    time_zone: str | None


@dataclass
class PeopleImportResult:
    """Counts of one people import."""

    run_id: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: int = 0
    departures: list[DepartureResult] = field(default_factory=list)


def _convert(row: Row, zones: set[str]) -> tuple[PersonRow | None, list[RowError]]:
    cells = row.cells
    errors: list[RowError] = []

    def fail(column: str, message: str) -> None:
        errors.append(RowError(row.line, column, message))

    email = manager = None
    active = True
    try:
        email = parse_email(cells["email"])
    except ValueError as error:
        fail("email", str(error))
    try:
        manager = parse_optional_email(cells.get("manager_email", ""))
    except ValueError as error:
        fail("manager_email", str(error))
    try:
        active = parse_bool(cells.get("active", ""), default=True)
    except ValueError as error:
        fail("active", str(error))
    name = cells["display_name"]
    if not name:
        fail("display_name", "missing value")
    elif len(name) > 200:
        fail("display_name", "too long: at most 200 characters")
    slack_id = cells.get("slack_user_id", "") or None
    if slack_id is not None and not SLACK_USER_ID.match(slack_id):
        fail(
            "slack_user_id",
            f"expected a Slack user id such as U012AB3CD, got {slack_id!r}",
        )
    zone = cells.get("time_zone", "") or None
    if zone is not None and zone not in zones:
        fail(
            "time_zone",
            f"expected an IANA time zone such as Europe/Paris, got {zone!r}",
        )
    if email is not None and manager == email:
        fail("manager_email", "a person cannot be their own manager")
    if errors or email is None:
        return None, errors
    return PersonRow(email, name, slack_id, manager, active, zone), []


class _Validation:
    """The validation pass, which keeps small data per email and never whole rows.

    `first_email` and `first_slack_id` map each email and Slack user id to
    the line where it first appears. A manager found neither earlier in the
    file nor in the database waits in `unresolved_managers`, with the lines
    that name it, until the end of the file. So that a row lists its errors
    in the same order however far its manager is, a "Slack id already
    belongs to" error on such a row waits in `after_manager` too.
    """

    def __init__(self, session: Session, zones: set[str], skip_invalid: bool) -> None:
        self.session = session
        self.zones = zones
        self.errors = ValidationErrors(keep_all=skip_invalid)
        self.digest = RowDigest()
        self.first_email: dict[str, int] = {}
        self.first_slack_id: dict[str, int] = {}
        self.unresolved_managers: dict[str, list[int]] = {}
        self.after_manager: dict[int, RowError] = {}
        # Lines that deactivate a person active in the database.
        self.leaving_lines: list[int] = []

    def check_batch(self, batch: list[Row]) -> None:
        converted = [(row, *_convert(row, self.zones)) for row in batch]
        parsed = [person for _, person, _ in converted if person is not None]
        slack_owners = _slack_id_owners(
            self.session, {p.slack_user_id for p in parsed if p.slack_user_id}
        )
        stored_managers = _stored_emails(
            self.session,
            {
                p.manager_email
                for p in parsed
                if p.manager_email and p.manager_email not in self.first_email
            },
        )
        stored_active = _stored_emails(
            self.session, {p.email for p in parsed if not p.active}, active_only=True
        )
        for row, person, conversion_errors in converted:
            self.digest.add(row)
            errors = conversion_errors
            if person is not None:
                errors = self._check_references(
                    row.line, person, slack_owners, stored_managers
                )
                if not person.active and person.email in stored_active:
                    self.leaving_lines.append(row.line)
            if errors:
                self.errors.add(row.line, errors)

    def _check_references(
        self,
        line: int,
        person: PersonRow,
        slack_owners: dict[str, str],
        stored_managers: set[str],
    ) -> list[RowError]:
        errors: list[RowError] = []
        first = self.first_email.setdefault(person.email, line)
        if first != line:
            errors.append(RowError(line, "email", f"repeated, first on line {first}"))
        slack_id = person.slack_user_id
        if slack_id:
            first = self.first_slack_id.setdefault(slack_id, line)
            if first != line:
                errors.append(
                    RowError(line, "slack_user_id", f"repeated, first on line {first}")
                )
        manager = person.manager_email
        unresolved = bool(
            manager
            and manager not in self.first_email
            and manager not in stored_managers
        )
        if manager and unresolved:
            self.unresolved_managers.setdefault(manager, []).append(line)
        owner = slack_owners.get(slack_id or "")
        if owner is not None and owner != person.email:
            conflict = RowError(line, "slack_user_id", f"already belongs to {owner}")
            if unresolved:
                self.after_manager[line] = conflict
            else:
                errors.append(conflict)
        return errors

    def check_managers(self) -> None:
        """Reject the rows whose manager the whole file and the database lack."""
        for manager, lines in self.unresolved_managers.items():
            known = manager in self.first_email
            for line in lines:
                errors = []
                if not known:
                    message = f"{manager} is not a known person"
                    errors.append(RowError(line, "manager_email", message))
                waiting = self.after_manager.pop(line, None)
                if waiting is not None:
                    errors.append(waiting)
                if errors:
                    self.errors.add(line, errors)
        self.unresolved_managers.clear()


def _slack_id_owners(session: Session, slack_ids: set[str]) -> dict[str, str]:
    if not slack_ids:
        return {}
    rows = session.execute(
        sa.select(Person.slack_user_id, Person.email).where(
            Person.slack_user_id.in_(slack_ids)
        )
    )
    return {slack_id: email for slack_id, email in rows if slack_id is not None}


def _stored_emails(
    session: Session, emails: set[str], *, active_only: bool = False
) -> set[str]:
    if not emails:
        return set()
    query = sa.select(Person.email).where(Person.email.in_(emails))
    if active_only:
        query = query.where(Person.active)
    return set(session.scalars(query))


@dataclass(frozen=True)
class _Validated:
    """The results of the validation pass that the import needs."""

    invalid_lines: set[int]
    digest: bytes
    rejected: int
    deactivations: int


def _validate(
    session: Session,
    source: CsvSource,
    zones: set[str],
    *,
    skip_invalid: bool,
    rejects_path: Path | None,
    progress: Progress | None,
) -> _Validated:
    """Validate the whole file in one reading, raising CsvImportError if invalid.

    With `skip_invalid`, the invalid rows go to the rejects file instead.
    """
    validation = _Validation(session, zones, skip_invalid)
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
    validation.check_managers()
    errors = validation.errors
    rejected = errors.check(source, rejects_path)
    return _Validated(
        invalid_lines=errors.lines,
        digest=validation.digest.digest(),
        rejected=rejected,
        deactivations=sum(
            1 for line in validation.leaving_lines if line not in errors.lines
        ),
    )


@paused_gc()
def import_people(
    app: Steward,
    path: Path,
    *,
    actor: Actor,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    confirm: bool = False,
    progress: Progress | None = None,
) -> PeopleImportResult:
    """Create and update people from a CSV file in one transaction.

    The file is never held in memory. It is read once to validate every row,
    once to write the people in batches, and once more to link each person
    to their manager, who may appear later in the file.

    Raises ConfirmationRequiredError, changing nothing but the run record,
    when the file would deactivate more than `guards.max_deactivation_share`
    of the active people (and at least `guards.deactivation_guard_minimum`),
    unless `confirm` is set: every departure orphans or hands over identities.
    Raises FileChangedError, changing nothing, when the file changes between
    two readings.
    """
    source = CsvSource(path, required=REQUIRED, optional=OPTIONAL, aliases=ALIASES)
    zones = available_timezones()
    with app.session() as session:
        run = DiscoveryRun(source=PEOPLE_SOURCE, method="csv-people", actor=actor.name)
        session.add(run)
        session.flush()
        run_id = run.id

    try:
        with app.session() as session:
            # A second import validated before the first commits would
            # insert the same people again and fail on the unique email.
            lock_for_transaction(session, PEOPLE_IMPORT_LOCK_KEY)
            validated = _validate(
                session,
                source,
                zones,
                skip_invalid=skip_invalid,
                rejects_path=rejects_path,
                progress=progress,
            )
            if not confirm:
                _check_deactivations(session, validated.deactivations, app.settings)

            def valid_rows() -> Iterator[tuple[Row, PersonRow]]:
                return reread_valid_rows(
                    source,
                    lambda row: _convert(row, zones),
                    validated.invalid_lines,
                    validated.digest,
                )

            result = PeopleImportResult(run_id=run_id, rejected=validated.rejected)
            try:
                leaving = _write_people(session, valid_rows(), actor, result, progress)
                _link_managers(session, valid_rows(), actor, source.path, leaving)
            except FileChangedError:
                raise
            except Exception:
                # A changed file can break a constraint that validation checked,
                # such as a new repeated email, before its end is read. Report
                # the change as the cause.
                check_unchanged(source, validated.digest)
                raise
            _handle_departures(session, leaving, actor, app.settings, result)
    except BaseException as error:
        status = (
            RunStatus.BLOCKED
            if isinstance(error, ConfirmationRequiredError)
            else RunStatus.FAILED
        )
        _finish(app, run_id, status, error=run_error(error))
        raise
    _finish(app, run_id, RunStatus.SUCCEEDED, result=result)
    return result


def _check_deactivations(
    session: Session, deactivated: int, settings: Settings
) -> None:
    if not deactivated:
        return
    active = (
        session.scalar(
            sa.select(sa.func.count()).select_from(Person).where(Person.active)
        )
        or 0
    )
    guards = settings.guards
    if deactivated < guards.deactivation_guard_minimum or not active:
        return
    share = deactivated / active
    if share > guards.max_deactivation_share:
        raise ConfirmationRequiredError(
            f"the file would deactivate {deactivated} of {active} active people "
            f"({share:.0%}, above the limit of {guards.max_deactivation_share:.0%}); "
            "each departure hands over or orphans identities, so check the file "
            "and run again with --confirm"
        )


def _finish(
    app: Steward,
    run_id: int,
    status: RunStatus,
    *,
    result: PeopleImportResult | None = None,
    error: str | None = None,
) -> None:
    with app.session() as session:
        run = session.get_one(DiscoveryRun, run_id)
        run.status = status
        run.finished_at = utcnow()
        run.error = error
        if result is not None:
            run.seen_count = result.created + result.updated + result.unchanged
            run.new_count = result.created
            run.changed_count = result.updated
            run.unchanged_count = result.unchanged
            run.rejected_count = result.rejected
            run.details = {"deactivated": result.deactivated}


def _write_people(
    session: Session,
    rows: Iterator[tuple[Row, PersonRow]],
    actor: Actor,
    result: PeopleImportResult,
    progress: Progress | None,
) -> dict[str, int]:
    """Create and update the people of `rows`, without their managers.

    Returns the id of each person deactivated, by email.
    """
    leaving: dict[str, int] = {}
    count = 0
    for batch in batches(rows, BATCH_SIZE):
        people = [person for _, person in batch]
        stored = {
            row.email: row
            for row in session.execute(
                sa.select(
                    PERSON_TABLE.c.id,
                    *(PERSON_TABLE.c[name] for name in COMPARED_FIELDS),
                    PERSON_TABLE.c.email,
                    PERSON_TABLE.c.deactivated_at,
                ).where(PERSON_TABLE.c.email.in_([p.email for p in people]))
            )
        }
        now = utcnow()
        created: list[PersonRow] = []
        updates: list[dict[str, object]] = []
        events: list[EventSpec] = []
        for person in people:
            current = stored.get(person.email)
            if current is None:
                created.append(person)
                events.append(
                    _event("person.created", person, {"active": person.active})
                )
                continue
            changed = [
                name
                for name in COMPARED_FIELDS
                if getattr(current, name) != getattr(person, name)
            ]
            if not changed:
                continue
            deactivated_at = current.deactivated_at
            if "active" in changed and not person.active:
                action = "person.deactivated"
                deactivated_at = now
                leaving[person.email] = current.id
                result.deactivated += 1
            elif "active" in changed:
                action = "person.reactivated"
                deactivated_at = None
            else:
                action = "person.updated"
            updates.append(
                {
                    "person_id": current.id,
                    "display_name": person.display_name,
                    "slack_user_id": person.slack_user_id,
                    "active": person.active,
                    "time_zone": person.time_zone,
                    "deactivated_at": deactivated_at,
                    "updated_at": now,
                }
            )
            events.append(_event(action, person, {"changed": changed}))
        _insert_people(session, created, now)
        if updates:
            session.execute(
                sa.update(PERSON_TABLE).where(
                    PERSON_TABLE.c.id == sa.bindparam("person_id")
                ),
                updates,
            )
        record_many(session, actor, events)
        result.created += len(created)
        result.updated += len(updates)
        result.unchanged += len(people) - len(created) - len(updates)
        count = report_progress(progress, "imported", count, len(batch))
    return leaving


def _insert_people(session: Session, people: list[PersonRow], now: datetime) -> None:
    ids = allocate_ids(session, PERSON_TABLE, len(people))
    insert_rows(
        session,
        PERSON_TABLE,
        INSERT_COLUMNS,
        [
            (
                person_id,
                person.email,
                person.display_name,
                person.slack_user_id,
                person.time_zone,
                person.active,
                None if person.active else now,
                now,
                now,
            )
            for person_id, person in zip(ids, people, strict=True)
        ],
    )


def _link_managers(
    session: Session,
    rows: Iterator[tuple[Row, PersonRow]],
    actor: Actor,
    path: Path,
    leaving: dict[str, int],
) -> None:
    """Set each person's manager, once every person of the file exists.

    A manager who is not stored (named in a rejected row) leaves the person
    without a manager. People deactivated by this file get no
    `person.manager_changed` event, only their deactivation.
    """
    for batch in batches(rows, BATCH_SIZE):
        emails = {person.email for _, person in batch}
        emails.update(
            person.manager_email for _, person in batch if person.manager_email
        )
        stored = {
            email: (person_id, manager_id)
            for person_id, email, manager_id in session.execute(
                sa.select(
                    PERSON_TABLE.c.id, PERSON_TABLE.c.email, PERSON_TABLE.c.manager_id
                ).where(PERSON_TABLE.c.email.in_(emails))
            )
        }
        now = utcnow()
        updates: list[dict[str, object]] = []
        events: list[EventSpec] = []
        for row, person in batch:
            current = stored.get(person.email)
            if current is None:
                # Every row of this reading was written by the previous one.
                raise FileChangedError(path, row.line)
            manager = stored.get(person.manager_email or "")
            manager_id = manager[0] if manager is not None else None
            if current[1] == manager_id:
                continue
            updates.append(
                {"person_id": current[0], "manager_id": manager_id, "updated_at": now}
            )
            if person.email not in leaving:
                details = {"manager": person.manager_email}
                events.append(_event("person.manager_changed", person, details))
        if updates:
            session.execute(
                sa.update(PERSON_TABLE).where(
                    PERSON_TABLE.c.id == sa.bindparam("person_id")
                ),
                updates,
            )
        record_many(session, actor, events)


def _handle_departures(
    session: Session,
    leaving: dict[str, int],
    actor: Actor,
    settings: Settings,
    result: PeopleImportResult,
) -> None:
    """Apply the owner-departure rule to each person deactivated, in file order."""
    for count, person_id in enumerate(leaving.values(), start=1):
        person = session.get_one(Person, person_id)
        result.departures.append(
            handle_departure(session, person, actor=actor, settings=settings)
        )
        if count % DEPARTURES_PER_FLUSH == 0:
            # Written objects leave the session, so it stays small.
            session.flush()
            session.expunge_all()


def _event(action: str, person: PersonRow, details: dict[str, Any]) -> EventSpec:
    return EventSpec(
        action=action, object_type="person", object_id=person.email, details=details
    )
