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
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import available_timezones

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor, record
from governance.clock import utcnow
from governance.discovery.models import DiscoveryRun, RunStatus
from governance.errors import ConfirmationRequiredError
from governance.imports.csvfile import (
    CsvSource,
    Row,
    RowError,
    collect_rows,
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


def _check_references(
    session: Session, rows: list[tuple[Row, PersonRow]]
) -> list[RowError]:
    errors: list[RowError] = []
    in_file: dict[str, int] = {}
    slack_ids: dict[str, int] = {}
    for row, person in rows:
        if person.email in in_file:
            errors.append(
                RowError(
                    row.line,
                    "email",
                    f"repeated, first on line {in_file[person.email]}",
                )
            )
        in_file.setdefault(person.email, row.line)
        if person.slack_user_id:
            if person.slack_user_id in slack_ids:
                errors.append(
                    RowError(
                        row.line,
                        "slack_user_id",
                        f"repeated, first on line {slack_ids[person.slack_user_id]}",
                    )
                )
            slack_ids.setdefault(person.slack_user_id, row.line)
    known = set(session.scalars(sa.select(Person.email)))
    taken: dict[str, str] = {}
    for slack_id, email in session.execute(
        sa.select(Person.slack_user_id, Person.email).where(
            Person.slack_user_id.in_(list(slack_ids))
        )
    ):
        if slack_id is not None:
            taken[slack_id] = email
    for row, person in rows:
        manager = person.manager_email
        if manager and manager not in in_file and manager not in known:
            errors.append(
                RowError(row.line, "manager_email", f"{manager} is not a known person")
            )
        owner = taken.get(person.slack_user_id or "")
        if owner is not None and owner != person.email:
            errors.append(
                RowError(row.line, "slack_user_id", f"already belongs to {owner}")
            )
    return errors


def import_people(
    app: Steward,
    path: Path,
    *,
    actor: Actor,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    confirm: bool = False,
) -> PeopleImportResult:
    """Create and update people from a CSV file in one transaction.

    Raises ConfirmationRequiredError, changing nothing but the run record,
    when the file would deactivate more than `guards.max_deactivation_share`
    of the active people (and at least `guards.deactivation_guard_minimum`),
    unless `confirm` is set: every departure orphans or hands over identities.
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
            rows, rejected = collect_rows(
                source,
                lambda row: _convert(row, zones),
                skip_invalid=skip_invalid,
                rejects_path=rejects_path,
                check_references=lambda parsed: _check_references(session, parsed),
            )
            if not confirm:
                _check_deactivations(session, rows, app.settings)
            result = _apply(session, rows, actor=actor, app=app, run_id=run_id)
            result.rejected = rejected
    except Exception as error:
        status = (
            RunStatus.BLOCKED
            if isinstance(error, ConfirmationRequiredError)
            else RunStatus.FAILED
        )
        _finish(app, run_id, status, error=str(error).splitlines()[0])
        raise
    _finish(app, run_id, RunStatus.SUCCEEDED, result=result)
    return result


def _check_deactivations(
    session: Session, rows: list[tuple[Row, PersonRow]], settings: Settings
) -> None:
    leaving = {person.email for _, person in rows if not person.active}
    if not leaving:
        return
    active = set(session.scalars(sa.select(Person.email).where(Person.active)))
    deactivated = len(leaving & active)
    guards = settings.guards
    if deactivated < guards.deactivation_guard_minimum or not active:
        return
    share = deactivated / len(active)
    if share > guards.max_deactivation_share:
        raise ConfirmationRequiredError(
            f"the file would deactivate {deactivated} of {len(active)} active people "
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


def _apply(
    session: Session,
    rows: list[tuple[Row, PersonRow]],
    *,
    actor: Actor,
    app: Steward,
    run_id: int,
) -> PeopleImportResult:
    result = PeopleImportResult(run_id=run_id)
    emails = [person.email for _, person in rows]
    people = {
        person.email: person
        for person in session.scalars(sa.select(Person).where(Person.email.in_(emails)))
    }
    leaving: list[Person] = []
    for _, row in rows:
        person = people.get(row.email)
        if person is None:
            person = Person(
                email=row.email,
                display_name=row.display_name,
                slack_user_id=row.slack_user_id,
                time_zone=row.time_zone,
                active=row.active,
                deactivated_at=None if row.active else utcnow(),
            )
            session.add(person)
            session.flush()
            people[row.email] = person
            _record(session, person, actor, "person.created", {"active": row.active})
            result.created += 1
            continue
        changed = _update(person, row)
        if not changed:
            continue
        if "active" in changed and not row.active:
            person.deactivated_at = utcnow()
            leaving.append(person)
            result.deactivated += 1
            _record(session, person, actor, "person.deactivated", {"changed": changed})
        elif "active" in changed:
            person.deactivated_at = None
            _record(session, person, actor, "person.reactivated", {"changed": changed})
        else:
            _record(session, person, actor, "person.updated", {"changed": changed})
        result.updated += 1

    managers = {
        person.email: person
        for person in session.scalars(
            sa.select(Person).where(
                Person.email.in_({r.manager_email for _, r in rows if r.manager_email})
            )
        )
    }
    for _, row in rows:
        person = people[row.email]
        manager = managers.get(row.manager_email or "") or people.get(
            row.manager_email or ""
        )
        manager_id = manager.id if manager is not None else None
        if person.manager_id != manager_id:
            person.manager_id = manager_id
            if person.id is not None and row.email not in {p.email for p in leaving}:
                _record(
                    session,
                    person,
                    actor,
                    "person.manager_changed",
                    {"manager": row.manager_email},
                )
    result.unchanged = len(rows) - result.created - result.updated
    session.flush()
    for person in leaving:
        result.departures.append(
            handle_departure(session, person, actor=actor, settings=app.settings)
        )
    return result


def _update(person: Person, row: PersonRow) -> list[str]:
    changed = []
    for name in ("display_name", "slack_user_id", "active", "time_zone"):
        value = getattr(row, name)
        if getattr(person, name) != value:
            setattr(person, name, value)
            changed.append(name)
    return changed


def _record(
    session: Session,
    person: Person,
    actor: Actor,
    action: str,
    details: dict[str, object],
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        object_type="person",
        object_id=person.email,
        details=dict(details),
    )
