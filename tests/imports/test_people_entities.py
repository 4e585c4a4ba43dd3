"""Importing people and business entities, and the owner-departure rule."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityStatus, EntityType
from governance.campaign.models import Campaign, Review
from governance.clock import utcnow
from governance.discovery.models import DiscoveryRun, RunStatus
from governance.errors import ConfirmationRequiredError, InvalidInputError
from governance.identity.models import Identity, OwnerOrigin
from governance.imports import entities as entities_module
from governance.imports import people as people_module
from governance.imports.csvfile import CsvImportError, FileChangedError
from governance.imports.entities import import_entities
from governance.imports.people import import_people
from governance.lifecycle import IdentityState
from governance.person.models import Person
from tests.factories import make_identity

ACTOR = Actor.person("hr-sync@example.com")
PEOPLE = (
    "email,display_name,slack_user_id,manager_email,active\n"
    "boss@example.com,The Boss,U0BOSS01,,yes\n"
    "alice@example.com,Alice,U0ALICE1,boss@example.com,yes\n"
    "bob@example.com,Bob,,boss@example.com,yes\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def event_count(app: Steward) -> int:
    with app.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0


def test_people_created_then_unchanged(app: Steward, tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", PEOPLE)
    result = import_people(app, path, actor=ACTOR)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    with app.sessions() as session:
        alice = session.scalars(
            sa.select(Person).where(Person.email == "alice@example.com")
        ).one()
        assert alice.slack_user_id == "U0ALICE1"
        assert alice.manager is not None
        assert alice.manager.email == "boss@example.com"

    events = event_count(app)
    again = import_people(app, path, actor=ACTOR)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert event_count(app) == events


def test_people_validation(app: Steward, tmp_path: Path) -> None:
    path = write(
        tmp_path / "people.csv",
        "email,display_name,slack_user_id,manager_email,active\n"
        "ok@example.com,Ok,,,yes\n"
        "broken,No Email,,,yes\n"
        "carol@example.com,Carol,not-slack,,maybe\n"
        "dave@example.com,Dave,,ghost@example.com,yes\n"
        "ok@example.com,Again,,,yes\n",
    )
    with pytest.raises(CsvImportError) as raised:
        import_people(app, path, actor=ACTOR)
    message = str(raised.value)
    assert "line 3, column email: expected an email address" in message
    assert "line 4, column slack_user_id: expected a Slack user id" in message
    assert "line 4, column active: expected yes or no" in message
    with app.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Person)) == 0

    # References are checked against the file and the database.
    path = write(
        tmp_path / "people2.csv",
        "email,display_name,manager_email\n"
        "dave@example.com,Dave,ghost@example.com\n"
        "ok@example.com,Ok,\n"
        "ok@example.com,Again,\n",
    )
    with pytest.raises(CsvImportError) as raised:
        import_people(app, path, actor=ACTOR)
    assert (
        "line 2, column manager_email: ghost@example.com is not a known person"
        in str(raised.value)
    )
    assert "line 4, column email: repeated, first on line 3" in str(raised.value)


def test_departure_passes_to_backup_or_orphans(
    app: Steward, session: Session, tmp_path: Path
) -> None:
    import_people(app, write(tmp_path / "people.csv", PEOPLE), actor=ACTOR)
    alice = session.scalars(
        sa.select(Person).where(Person.email == "alice@example.com")
    ).one()
    bob = session.scalars(
        sa.select(Person).where(Person.email == "bob@example.com")
    ).one()
    with_backup = make_identity(session, owner=alice, owner_origin=OwnerOrigin.ASSIGNED)
    with_backup.backup_owners.append(bob)
    alone = make_identity(session, owner=alice, state=IdentityState.UNDER_REVIEW)
    campaign = Campaign(name="q1", opened_by="sec@example.com", due_at=utcnow())
    session.add(campaign)
    session.flush()
    review = Review(
        campaign_id=campaign.id,
        identity_id=alone.id,
        open_identity_id=alone.id,
        reviewer_id=alice.id,
        due_at=utcnow(),
    )
    session.add(review)
    session.commit()
    ids = (with_backup.id, alone.id, review.id)
    session.close()

    leaving = PEOPLE.replace(
        "alice@example.com,Alice,U0ALICE1,boss@example.com,yes",
        "alice@example.com,Alice,U0ALICE1,boss@example.com,no",
    )
    result = import_people(app, write(tmp_path / "people.csv", leaving), actor=ACTOR)
    assert result.deactivated == 1
    assert result.departures[0].inherited == 1
    assert result.departures[0].orphaned == 1
    assert result.departures[0].reviews_to_security == 1

    with app.sessions() as fresh:
        inherited = fresh.get_one(Identity, ids[0])
        assert inherited.owner is not None
        assert inherited.owner.email == "bob@example.com"
        assert inherited.owner_origin is OwnerOrigin.INHERITED
        assert inherited.state is IdentityState.OWNED
        orphaned = fresh.get_one(Identity, ids[1])
        assert orphaned.owner_id is None
        assert orphaned.state is IdentityState.UNDER_REVIEW
        assert orphaned.claim_deadline is not None
        assert fresh.get_one(Review, ids[2]).reviewer_id is None
        actions = list(
            fresh.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq))
        )
        assert "person.deactivated" in actions
        assert actions.count("owner.departed") == 2
        assert "review.reassigned" in actions


ENTITIES = (
    "type,key,name,status,owner_email\n"
    "application,crm,CRM,,alice@example.com\n"
    "project,apollo,Apollo,active,\n"
    "vendor,acme,Acme Ltd,,\n"
)


def test_entities_import(app: Steward, tmp_path: Path) -> None:
    import_people(app, write(tmp_path / "people.csv", PEOPLE), actor=ACTOR)
    result = import_entities(app, write(tmp_path / "e.csv", ENTITIES), actor=ACTOR)
    assert (result.created, result.updated) == (3, 0)
    renamed = ENTITIES.replace("vendor,acme,Acme Ltd", "vendor,acme,Acme Group")
    again = import_entities(app, write(tmp_path / "e.csv", renamed), actor=ACTOR)
    assert (again.created, again.updated, again.unchanged) == (0, 1, 2)
    with app.sessions() as session:
        crm = session.scalars(
            sa.select(BusinessEntity).where(BusinessEntity.key == "crm")
        ).one()
        assert crm.type is EntityType.APPLICATION
        assert crm.owner is not None
        assert crm.owner.email == "alice@example.com"


def test_entities_validation(app: Steward, tmp_path: Path) -> None:
    import_entities(
        app,
        write(tmp_path / "e.csv", ENTITIES.replace("alice@example.com", "")),
        actor=ACTOR,
    )
    bad = (
        "type,key,name,status,owner_email\n"
        "team,x,X,,\n"
        "project,apollo,Apollo,closed,\n"
        "vendor,new,New,,nobody@example.com\n"
        "vendor,dup,Dup,,\n"
        "vendor,dup,Dup,,\n"
    )
    with pytest.raises(CsvImportError) as raised:
        import_entities(app, write(tmp_path / "bad.csv", bad), actor=ACTOR)
    message = str(raised.value)
    assert (
        "line 2, column type: expected one of application, project, vendor" in message
    )
    assert "line 3, column status: closing an active project deprovisions" in message
    assert "steward event project.closed apollo" in message
    assert (
        "line 4, column owner_email: nobody@example.com is not a known person"
        in message
    )
    assert "line 6, column key: repeated vendor key, first on line 5" in message
    with app.sessions() as session:
        apollo = session.scalars(
            sa.select(BusinessEntity).where(BusinessEntity.key == "apollo")
        ).one()
        assert apollo.status is EntityStatus.ACTIVE


def test_mass_deactivation_needs_confirm(app: Steward, tmp_path: Path) -> None:
    lines = ["email,display_name,active"]
    lines += [f"p{n}@example.com,P{n},yes" for n in range(20)]
    import_people(
        app, write(tmp_path / "all.csv", "\n".join(lines) + "\n"), actor=ACTOR
    )
    leaving = ["email,display_name,active"]
    leaving += [f"p{n}@example.com,P{n},{'no' if n < 6 else 'yes'}" for n in range(20)]
    path = write(tmp_path / "leaving.csv", "\n".join(leaving) + "\n")
    events = event_count(app)

    with pytest.raises(
        ConfirmationRequiredError, match="deactivate 6 of 20 active people"
    ):
        import_people(app, path, actor=ACTOR)
    assert event_count(app) == events
    with app.sessions() as session:
        active = session.scalar(
            sa.select(sa.func.count()).select_from(Person).where(Person.active)
        )
        assert active == 20

    result = import_people(app, path, actor=ACTOR, confirm=True)
    assert result.deactivated == 6


def test_closed_entity_stays_closed(
    app: Steward, session: Session, tmp_path: Path
) -> None:
    import_entities(
        app,
        write(tmp_path / "e.csv", ENTITIES.replace("alice@example.com", "")),
        actor=ACTOR,
    )
    apollo = session.scalars(
        sa.select(BusinessEntity).where(BusinessEntity.key == "apollo")
    ).one()
    apollo.status = EntityStatus.CLOSED
    session.commit()
    session.close()
    renamed = ENTITIES.replace("alice@example.com", "").replace("Apollo", "Apollo II")
    result = import_entities(app, write(tmp_path / "e2.csv", renamed), actor=ACTOR)
    assert result.updated == 1
    with app.sessions() as fresh:
        stored = fresh.scalars(
            sa.select(BusinessEntity).where(BusinessEntity.key == "apollo")
        ).one()
        assert stored.status is EntityStatus.CLOSED
        assert stored.name == "Apollo II"
        event = fresh.scalars(
            sa.select(AuditEvent).order_by(AuditEvent.seq.desc())
        ).first()
        assert event is not None
        assert (event.before_state, event.after_state) == ("closed", "closed")


def small_batches(monkeypatch: pytest.MonkeyPatch, size: int = 2) -> None:
    monkeypatch.setattr("governance.imports.people.BATCH_SIZE", size)
    monkeypatch.setattr("governance.imports.entities.BATCH_SIZE", size)


def managers_by_email(app: Steward) -> dict[str, str | None]:
    with app.sessions() as session:
        people = session.scalars(sa.select(Person)).all()
        return {
            person.email: person.manager.email if person.manager else None
            for person in people
        }


def actions(app: Steward) -> list[tuple[str, str]]:
    with app.sessions() as session:
        rows = session.execute(
            sa.select(AuditEvent.action, AuditEvent.object_id).order_by(AuditEvent.seq)
        )
        return [(action, object_id) for action, object_id in rows]


def test_managers_listed_after_reports(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    path = write(
        tmp_path / "people.csv",
        "email,display_name,manager_email\n"
        "dev@example.com,Dev,lead@example.com\n"
        "ops@example.com,Ops,lead@example.com\n"
        "lead@example.com,Lead,boss@example.com\n"
        "intern@example.com,Intern,dev@example.com\n"
        "boss@example.com,Boss,\n",
    )
    result = import_people(app, path, actor=ACTOR)

    assert result.created == 5
    assert managers_by_email(app) == {
        "dev@example.com": "lead@example.com",
        "ops@example.com": "lead@example.com",
        "lead@example.com": "boss@example.com",
        "intern@example.com": "dev@example.com",
        "boss@example.com": None,
    }
    linked = [obj for action, obj in actions(app) if action == "person.manager_changed"]
    assert linked == [
        "dev@example.com",
        "ops@example.com",
        "lead@example.com",
        "intern@example.com",
    ]


def test_manager_change_then_unchanged(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    import_people(app, write(tmp_path / "p.csv", PEOPLE), actor=ACTOR)
    moved = PEOPLE.replace(
        "bob@example.com,Bob,,boss@example.com,yes",
        "bob@example.com,Bob,,alice@example.com,yes",
    ).replace(
        "alice@example.com,Alice,U0ALICE1,boss@example.com",
        "alice@example.com,Alice,U0ALICE1,",
    )
    events = event_count(app)

    result = import_people(app, write(tmp_path / "p.csv", moved), actor=ACTOR)

    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)
    assert managers_by_email(app)["bob@example.com"] == "alice@example.com"
    assert managers_by_email(app)["alice@example.com"] is None
    assert actions(app)[events:] == [
        ("person.manager_changed", "alice@example.com"),
        ("person.manager_changed", "bob@example.com"),
    ]


def test_repeated_email_far_apart(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch, 4)
    lines = ["email,display_name"]
    lines += [f"p{n}@example.com,P{n}" for n in range(40)]
    lines.append("p1@example.com,P1 again")
    path = write(tmp_path / "people.csv", "\n".join(lines) + "\n")

    with pytest.raises(CsvImportError) as raised:
        import_people(app, path, actor=ACTOR)

    assert raised.value.total == 1
    assert [(e.line, e.column, e.message) for e in raised.value.errors] == [
        (42, "email", "repeated, first on line 3")
    ]
    with app.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Person)) == 0
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED
    assert event_count(app) == 0


def test_errors_sorted_and_capped(app: Steward, tmp_path: Path) -> None:
    lines = ["email,display_name,manager_email,active"]
    lines.append("first@example.com,First,ghost@example.com,yes")
    lines += [f"p{n}@example.com,P{n},,maybe" for n in range(70)]
    path = write(tmp_path / "people.csv", "\n".join(lines) + "\n")

    with pytest.raises(CsvImportError) as raised:
        import_people(app, path, actor=ACTOR)

    error = raised.value
    assert error.total == 71
    reported = [(e.line, e.column) for e in error.errors]
    assert reported[0] == (2, "manager_email")
    assert reported[1:] == [(line, "active") for line in range(3, 52)]
    assert str(error).splitlines()[-1] == "... and 21 more errors"


def test_people_skip_invalid_writes_rejects(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    path = write(
        tmp_path / "people.csv",
        "email,display_name,slack_user_id,manager_email\n"
        "ann@example.com,Ann,U0ANN001,lead@example.com\n"
        "broken,Broken,,\n"
        "cid@example.com,Cid,,ghost@example.com\n"
        "extra@example.com,Extra,,,surplus\n"
        "lead@example.com,Lead,,\n",
    )
    rejects = tmp_path / "rejects.csv"

    result = import_people(
        app, path, actor=ACTOR, skip_invalid=True, rejects_path=rejects
    )

    assert (result.created, result.rejected) == (2, 3)
    assert managers_by_email(app) == {
        "ann@example.com": "lead@example.com",
        "lead@example.com": None,
    }
    written = rejects.read_text(encoding="utf-8").splitlines()
    assert written[0] == "line,errors,email,display_name,slack_user_id,manager_email"
    assert written[1].startswith(
        f'3,"{path}, line 3, column email: expected an email address'
    )
    assert written[1].endswith(",broken,Broken,,")
    assert written[2] == (
        f'4,"{path}, line 4, column manager_email: ghost@example.com is not a '
        'known person",cid@example.com,Cid,,ghost@example.com'
    )
    assert written[3] == f'5,"{path}, line 5: expected 4 fields, found 5"'
    assert len(written) == 4
    with app.sessions() as session:
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert (run.new_count, run.rejected_count) == (2, 3)


def test_audit_chain_verifies_after_batches(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch, 3)
    lines = ["email,display_name,manager_email"]
    lines += [f"p{n}@example.com,P{n},p{n + 1}@example.com" for n in range(10)]
    lines.append("p10@example.com,P10,")
    people = write(tmp_path / "people.csv", "\n".join(lines) + "\n")
    import_people(app, people, actor=ACTOR)
    renamed = write(
        tmp_path / "renamed.csv", "\n".join(lines).replace(",P4,", ",P4 Jr,") + "\n"
    )
    import_people(app, renamed, actor=ACTOR)
    entities = ["type,key,name,owner_email"]
    entities += [f"project,k{n},K{n},p{n}@example.com" for n in range(8)]
    import_entities(
        app, write(tmp_path / "e.csv", "\n".join(entities) + "\n"), actor=ACTOR
    )

    recorded = actions(app)
    assert len(recorded) == 11 + 10 + 1 + 8
    assert recorded[20] == ("person.manager_changed", "p9@example.com")
    assert recorded[21] == ("person.updated", "p4@example.com")
    assert recorded[-1] == ("entity.created", "project:k7")
    with app.sessions() as session:
        verified = verify_database(session)
        assert verified.finding is None
        assert verified.events_checked == len(recorded)
        assert [e.seq for e in session.scalars(sa.select(AuditEvent))] == list(
            range(1, len(recorded) + 1)
        )


def test_people_file_changed_between_readings(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    path = write(tmp_path / "people.csv", PEOPLE)
    import_people(app, path, actor=ACTOR)
    events = event_count(app)
    validate = people_module._validate
    replacement = {"text": PEOPLE}

    def validate_then_edit(*args: Any, **kwargs: Any) -> Any:
        validated = validate(*args, **kwargs)
        path.write_text(replacement["text"], encoding="utf-8")
        return validated

    monkeypatch.setattr(people_module, "_validate", validate_then_edit)
    cases = [
        # A valid row becomes invalid: the reading stops at it.
        (PEOPLE.replace("bob@example.com,Bob", "bob-at-example,Bob"), ", line 4: "),
        # A row changes but stays valid, bypassing the deactivation guard.
        (PEOPLE.replace("boss@example.com,yes", "boss@example.com,no"), ".csv: the"),
        # New rows repeat an email, which the database rejects in a batch
        # before the end of the file is read.
        (
            PEOPLE.replace("bob@", "eve@example.com,Eve,,,yes\n" * 2 + "bob@"),
            ".csv: the",
        ),
    ]
    for edited, where in cases:
        path.write_text(PEOPLE, encoding="utf-8")
        replacement["text"] = edited
        with pytest.raises(FileChangedError, match="the file changed") as raised:
            import_people(app, path, actor=ACTOR, confirm=True)
        assert where in str(raised.value)
        assert event_count(app) == events
        with app.sessions() as session:
            active = session.scalars(sa.select(Person.email).where(Person.active))
            assert len(list(active)) == 3
            run = session.scalars(
                sa.select(DiscoveryRun).order_by(DiscoveryRun.id.desc())
            ).first()
            assert run is not None
            assert run.status is RunStatus.FAILED


def test_people_interrupted_records_failed_run(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("governance.imports.csvfile.PROGRESS_INTERVAL", 1)
    path = write(tmp_path / "people.csv", PEOPLE)

    def interrupt(phase: str, count: int) -> None:
        if phase == "imported":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_people(app, path, actor=ACTOR, progress=interrupt)
    assert event_count(app) == 0
    with app.sessions() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(Person))
        assert count == 0
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED
        assert run.error == "interrupted (KeyboardInterrupt)"
        assert run.finished_at is not None


def test_entities_interrupted_records_failed_run(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("governance.imports.csvfile.PROGRESS_INTERVAL", 1)
    path = write(tmp_path / "e.csv", ENTITIES.replace("alice@example.com", ""))

    def interrupt(phase: str, count: int) -> None:
        if phase == "imported":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_entities(app, path, actor=ACTOR, progress=interrupt)
    assert event_count(app) == 0
    with app.sessions() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(BusinessEntity))
        assert count == 0
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED
        assert run.error == "interrupted (KeyboardInterrupt)"


@pytest.mark.parametrize("kind", ["people", "entities"])
def test_concurrent_imports_serialised(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    module: Any = people_module if kind == "people" else entities_module
    run_import: Any = import_people if kind == "people" else import_entities
    if kind == "people":
        path = write(tmp_path / "people.csv", PEOPLE)
    else:
        path = write(tmp_path / "e.csv", ENTITIES.replace("alice@example.com", ""))
    validate = module._validate
    # Each import waits after validating until the other has validated too,
    # unless the other waits for the first to commit, which breaks the barrier.
    barrier = threading.Barrier(2, timeout=2)

    def validate_in_step(*args: Any, **kwargs: Any) -> Any:
        validated = validate(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return validated

    monkeypatch.setattr(module, "_validate", validate_in_step)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(run_import, app, path, actor=ACTOR) for _ in range(2)]
        results = [run.result(timeout=60) for run in runs]
    created = sorted(result.created for result in results)
    assert created[0] == 0
    assert created[1] > 0
    assert sorted(result.unchanged for result in results) == [0, created[1]]
    assert len([a for a, _ in actions(app) if a.endswith(".created")]) == created[1]


def test_pipe_rejected_before_reading(app: Steward, tmp_path: Path) -> None:
    # Every reading of a named pipe would wait for a writer, and a second
    # reading would find it empty.
    path = tmp_path / "people.csv"
    os.mkfifo(path)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        import_people(app, path, actor=ACTOR)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        import_entities(app, path, actor=ACTOR)
    assert event_count(app) == 0


def test_people_rejects_path_not_writable(app: Steward, tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", PEOPLE + "broken,Broken,,,\n")
    rejects = tmp_path / "missing" / "rejects.csv"
    with pytest.raises(InvalidInputError, match="cannot write the rejects file"):
        import_people(app, path, actor=ACTOR, skip_invalid=True, rejects_path=rejects)
    assert event_count(app) == 0
    with app.sessions() as session:
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED


def test_wide_header_error_bounded(app: Steward, tmp_path: Path) -> None:
    extra = "x" * 100_000 + "," + ",".join(f"col{n}" for n in range(4999))
    path = write(tmp_path / "people.csv", f"email,display_name,{extra}\n")
    with pytest.raises(InvalidInputError) as raised:
        import_people(app, path, actor=ACTOR)
    message = str(raised.value)
    assert f"unknown columns: {'x' * 40}..., col0, col1," in message
    assert "and 4990 more" in message
    assert "col4999" not in message
    assert len(message) < 1000
    with app.sessions() as session:
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.error is not None
        assert len(run.error) < 1000


def test_rejects_hard_link_to_input(app: Steward, tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", PEOPLE + "broken,Broken,,,\n")
    link = tmp_path / "rejects.csv"
    link.hardlink_to(path)
    with pytest.raises(InvalidInputError, match="is the file being imported"):
        import_people(app, path, actor=ACTOR, skip_invalid=True, rejects_path=link)
    assert path.read_text(encoding="utf-8") == PEOPLE + "broken,Broken,,,\n"
    assert event_count(app) == 0


def test_people_header_changed_between_readings(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rows stay byte for byte the same, but the swapped header turns
    # each manager into the person and each person into the manager.
    rows = (
        "alice@example.com,Alice,bob@example.com\n"
        "bob@example.com,Bob,alice@example.com\n"
    )
    original = "email,display_name,manager_email\n" + rows
    swapped = "manager_email,display_name,email\n" + rows
    path = write(tmp_path / "people.csv", original)
    validate = people_module._validate

    def validate_then_edit(*args: Any, **kwargs: Any) -> Any:
        validated = validate(*args, **kwargs)
        path.write_text(swapped, encoding="utf-8")
        return validated

    monkeypatch.setattr(people_module, "_validate", validate_then_edit)
    with pytest.raises(FileChangedError, match="line 1: the file changed"):
        import_people(app, path, actor=ACTOR)
    with app.sessions() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(Person))
        assert count == 0
    assert event_count(app) == 0


def test_entities_file_changed_between_readings(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "e.csv", ENTITIES.replace("alice@example.com", ""))
    validate = entities_module._validate

    def validate_then_edit(*args: Any, **kwargs: Any) -> Any:
        validated = validate(*args, **kwargs)
        path.write_text(ENTITIES.replace("vendor,acme", "vendor,other"), "utf-8")
        return validated

    monkeypatch.setattr(entities_module, "_validate", validate_then_edit)
    with pytest.raises(FileChangedError, match="the file changed"):
        import_entities(app, path, actor=ACTOR)
    with app.sessions() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(BusinessEntity))
        assert count == 0
    assert event_count(app) == 0


def test_entities_skip_invalid_across_batches(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    import_people(app, write(tmp_path / "people.csv", PEOPLE), actor=ACTOR)
    path = write(
        tmp_path / "e.csv",
        "type,key,name,owner_email\n"
        "vendor,acme,Acme,\n"
        "project,apollo,Apollo,bob@example.com\n"
        "team,x,X,\n"
        "project,gemini,Gemini,nobody@example.com\n"
        "vendor,acme,Acme again,\n",
    )
    rejects = tmp_path / "rejects.csv"

    result = import_entities(
        app, path, actor=ACTOR, skip_invalid=True, rejects_path=rejects
    )

    assert (result.created, result.rejected) == (2, 3)
    lines = [line.split(",")[0] for line in rejects.read_text().splitlines()[1:]]
    assert lines == ["4", "5", "6"]
    assert "repeated vendor key, first on line 2" in rejects.read_text()
    with app.sessions() as session:
        apollo = session.scalars(
            sa.select(BusinessEntity).where(BusinessEntity.key == "apollo")
        ).one()
        assert apollo.owner is not None
        assert apollo.owner.email == "bob@example.com"


def test_progress_reported_per_pass(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch, 2)
    monkeypatch.setattr("governance.imports.csvfile.PROGRESS_INTERVAL", 4)
    lines = ["email,display_name"] + [f"p{n}@example.com,P{n}" for n in range(9)]
    reports: list[tuple[str, int]] = []
    import_people(
        app,
        write(tmp_path / "people.csv", "\n".join(lines) + "\n"),
        actor=ACTOR,
        progress=lambda phase, count: reports.append((phase, count)),
    )
    assert reports == [
        ("validated", 4),
        ("validated", 8),
        ("imported", 4),
        ("imported", 8),
    ]

    entities = ["type,key,name"] + [f"vendor,v{n},V{n}" for n in range(5)]
    reports.clear()
    import_entities(
        app,
        write(tmp_path / "e.csv", "\n".join(entities) + "\n"),
        actor=ACTOR,
        progress=lambda phase, count: reports.append((phase, count)),
    )
    assert reports == [("validated", 4), ("imported", 4)]


def test_row_errors_in_check_order(app: Steward, tmp_path: Path) -> None:
    import_people(app, write(tmp_path / "people.csv", PEOPLE), actor=ACTOR)
    path = write(
        tmp_path / "taken.csv",
        "email,display_name,slack_user_id,manager_email\n"
        "x@example.com,X,U0ALICE1,ghost@example.com\n"
        "y@example.com,Y,U0BOSS01,later@example.com\n"
        "later@example.com,Later,,\n",
    )

    with pytest.raises(CsvImportError) as raised:
        import_people(app, path, actor=ACTOR)

    assert [(e.line, e.column, e.message) for e in raised.value.errors] == [
        (2, "manager_email", "ghost@example.com is not a known person"),
        (2, "slack_user_id", "already belongs to alice@example.com"),
        (3, "slack_user_id", "already belongs to boss@example.com"),
    ]


def test_new_person_with_stored_manager(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    import_people(app, write(tmp_path / "p.csv", PEOPLE), actor=ACTOR)
    events = event_count(app)
    path = write(
        tmp_path / "new.csv",
        "email,display_name,manager_email\n"
        "new@example.com,New,bob@example.com\n"
        "bob@example.com,Bob,\n",
    )

    result = import_people(app, path, actor=ACTOR)

    assert (result.created, result.unchanged) == (1, 1)
    managers = managers_by_email(app)
    assert managers["new@example.com"] == "bob@example.com"
    assert managers["bob@example.com"] is None
    assert actions(app)[events:] == [
        ("person.created", "new@example.com"),
        ("person.manager_changed", "new@example.com"),
        ("person.manager_changed", "bob@example.com"),
    ]
