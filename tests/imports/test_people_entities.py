"""Importing people and business entities, and the owner-departure rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityStatus, EntityType
from governance.campaign.models import Campaign, Review
from governance.clock import utcnow
from governance.errors import ConfirmationRequiredError
from governance.identity.models import Identity, OwnerOrigin
from governance.imports.csvfile import CsvImportError
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
