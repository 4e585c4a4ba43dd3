"""Reconciling source snapshots: new, changed, unchanged, gone and the guard."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from connectors.base import DiscoveredIdentity
from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.discovery.models import DiscoveryRun, RunStatus
from governance.discovery.service import Reconciler, fingerprint
from governance.errors import ConfirmationRequiredError, InvalidInputError
from governance.identity.models import Identity, OwnerOrigin, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from tests.factories import make_person

ACTOR = Actor.system("discovery")


def record(number: int, **fields: object) -> DiscoveredIdentity:
    values: dict[str, object] = {
        "kind": "api_key",
        "external_id": f"key-{number}",
        "name": f"key {number}",
    }
    values.update(fields)
    return DiscoveredIdentity.model_validate(values)


def reconcile(
    app: Steward, records: list[DiscoveredIdentity], *, confirm: bool = False
) -> object:
    reconciler = Reconciler(app, "saas", method="test", actor=ACTOR, confirm=confirm)
    snapshot: Callable[[], list[DiscoveredIdentity]] = lambda: records  # noqa: E731
    return reconciler.run(snapshot)


def audit_count(app: Steward) -> int:
    with app.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0


def identities(app: Steward) -> dict[str, Identity]:
    with app.sessions() as session:
        rows = session.scalars(sa.select(Identity).order_by(Identity.id)).all()
        return {row.external_id: row for row in rows}


@pytest.fixture
def people(session: Session) -> None:
    make_person(session, "alice@example.com")
    make_person(session, "bob@example.com")
    make_person(session, "gone@example.com", active=False)
    session.add(BusinessEntity(type=EntityType.APPLICATION, key="payments", name="Pay"))
    session.commit()


def test_new_identities_owned_or_orphaned(app: Steward, people: None) -> None:
    result = reconcile(
        app,
        [
            record(
                1,
                owner_email="Alice@Example.com",
                tier="privileged",
                tier_reason="policy admin",
                application="payments",
            ),
            record(2),
            record(3, owner_email="gone@example.com", application="unknown-app"),
        ],
    )
    assert result.new == 3  # type: ignore[attr-defined]
    stored = identities(app)
    first, second, third = stored["key-1"], stored["key-2"], stored["key-3"]
    assert first.state is IdentityState.OWNED
    assert first.owner_origin is OwnerOrigin.SOURCE
    assert first.tier is RiskTier.PRIVILEGED
    assert first.tier_reason == "policy admin"
    assert second.state is IdentityState.ORPHANED
    assert second.claim_deadline is not None
    assert second.orphaned_at is not None
    assert (second.claim_deadline - second.orphaned_at).days == 14
    assert second.tier is RiskTier.STANDARD
    assert third.state is IdentityState.ORPHANED
    assert third.source_owner_email == "gone@example.com"

    with app.sessions() as session:
        linked = session.get_one(Identity, first.id)
        assert [entity.key for entity in linked.entities] == ["payments"]
        events = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [event.action for event in events] == ["identity.discovered"] * 3
        assert [event.after_state for event in events] == [
            "owned",
            "orphaned",
            "orphaned",
        ]
        assert events[0].object_id == str(first.id)
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.SUCCEEDED
        assert (run.seen_count, run.new_count, run.gone_count) == (3, 3, 0)
        assert run.details["unknown_entities"] == {"application:unknown-app": 1}
        assert verify_database(session).ok


def test_unchanged_rerun_writes_only_run_record(app: Steward, people: None) -> None:
    records = [record(n, owner_email="alice@example.com") for n in range(5)]
    reconcile(app, records)
    before_events = audit_count(app)
    before = {key: row.updated_at for key, row in identities(app).items()}

    result = reconcile(app, records)

    assert result.unchanged == 5  # type: ignore[attr-defined]
    assert result.changed == 0  # type: ignore[attr-defined]
    assert audit_count(app) == before_events
    assert {key: row.updated_at for key, row in identities(app).items()} == before
    with app.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(DiscoveryRun)) == 2


def test_changed_identity_updated(app: Steward, people: None) -> None:
    reconcile(app, [record(1, description="old")])
    result = reconcile(app, [record(1, description="new", tier="privileged")])
    assert result.changed == 1  # type: ignore[attr-defined]
    stored = identities(app)["key-1"]
    assert stored.description == "new"
    assert stored.tier is RiskTier.PRIVILEGED
    with app.sessions() as session:
        last = session.scalars(
            sa.select(AuditEvent).order_by(AuditEvent.seq.desc())
        ).first()
        assert last is not None
        assert last.action == "identity.updated"
        assert set(last.details["changed"]) == {"description", "detected_tier"}


def test_override_survives_reported_tier(app: Steward, people: None) -> None:
    reconcile(app, [record(1)])
    with app.session() as session:
        identity = session.scalars(sa.select(Identity)).one()
        identity.tier_override = RiskTier.PRIVILEGED
        identity.tier = RiskTier.PRIVILEGED
    reconcile(app, [record(1, tier="standard", tier_reason="read-only")])
    stored = identities(app)["key-1"]
    assert stored.tier is RiskTier.PRIVILEGED
    assert stored.detected_tier is RiskTier.STANDARD


def test_missing_identity_goes(app: Steward, people: None) -> None:
    reconcile(app, [record(n) for n in range(10)])
    result = reconcile(app, [record(n) for n in range(9)])
    assert result.gone == 1  # type: ignore[attr-defined]
    stored = identities(app)["key-9"]
    assert stored.state is IdentityState.GONE
    assert stored.gone_at is not None


def test_guard_blocks_mass_disappearance(app: Steward, people: None) -> None:
    reconcile(app, [record(n) for n in range(10)])
    events = audit_count(app)

    with pytest.raises(ConfirmationRequiredError, match="3 of 10") as raised:
        reconcile(app, [record(n) for n in range(7)])
    assert "--confirm" in str(raised.value)
    assert audit_count(app) == events
    assert all(row.state is IdentityState.ORPHANED for row in identities(app).values())
    with app.sessions() as session:
        last = session.scalars(
            sa.select(DiscoveryRun).order_by(DiscoveryRun.id.desc())
        ).first()
        assert last is not None
        assert last.status is RunStatus.BLOCKED
        assert last.details["would_be_gone"] == 3

    result = reconcile(app, [record(n) for n in range(7)], confirm=True)
    assert result.gone == 3  # type: ignore[attr-defined]


def test_empty_snapshot_blocked(app: Steward, people: None) -> None:
    reconcile(app, [record(1)])
    with pytest.raises(ConfirmationRequiredError, match="1 of 1"):
        reconcile(app, [])


def test_steward_owner_wins(app: Steward, people: None) -> None:
    reconcile(app, [record(1, owner_email="alice@example.com")])
    with app.session() as session:
        identity = session.scalars(sa.select(Identity)).one()
        bob = session.scalars(
            sa.select(Person).where(Person.email == "bob@example.com")
        ).one()
        identity.owner = bob
        identity.owner_origin = OwnerOrigin.ASSIGNED

    result = reconcile(
        app, [record(1, owner_email="alice@example.com", name="renamed")]
    )
    assert result.owner_disagreements == 1  # type: ignore[attr-defined]
    with app.sessions() as session:
        identity = session.scalars(sa.select(Identity)).one()
        assert identity.owner is not None
        assert identity.owner.email == "bob@example.com"
        assert identity.source_owner_email == "alice@example.com"


def test_reported_owner_removed_orphans(app: Steward, people: None) -> None:
    reconcile(app, [record(1, owner_email="alice@example.com")])
    reconcile(app, [record(1)])
    stored = identities(app)["key-1"]
    assert stored.state is IdentityState.ORPHANED
    assert stored.owner_id is None


def test_gone_identity_reappears(app: Steward, people: None) -> None:
    reconcile(app, [record(n, owner_email="bob@example.com") for n in range(10)])
    reconcile(app, [record(n, owner_email="bob@example.com") for n in range(9)])
    result = reconcile(
        app, [record(n, owner_email="bob@example.com") for n in range(10)]
    )
    assert result.reappeared == 1  # type: ignore[attr-defined]
    stored = identities(app)["key-9"]
    assert stored.state is IdentityState.OWNED
    assert stored.gone_at is None


def test_duplicate_external_id_rejected(app: Steward, people: None) -> None:
    with pytest.raises(InvalidInputError, match="duplicate external id 'key-1'"):
        reconcile(app, [record(1), record(1)])
    assert identities(app) == {}
    with app.sessions() as session:
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED


def test_batches_reported_after_commit(app: Steward, people: None) -> None:
    reconciler = Reconciler(app, "saas", method="test", actor=ACTOR, batch_size=3)
    committed: list[tuple[int, int]] = []

    def progress(applied: int) -> None:
        # Counted from the database, so a report sent before its batch
        # committed would show fewer identities than it claims.
        committed.append((applied, len(identities(app))))

    result = reconciler.run(lambda: [record(n) for n in range(7)], progress=progress)
    assert result.new == 7
    assert committed == [(3, 3), (6, 6), (7, 7)]


def test_read_failure_keeps_committed_batches(app: Steward, people: None) -> None:
    passes: list[str] = []

    def snapshot() -> Iterator[DiscoveredIdentity]:
        passes.append("read")
        for number in range(8):
            if len(passes) == 2 and number == 7:
                raise ConnectionError("source closed the connection")
            yield record(number)

    reconciler = Reconciler(app, "saas", method="test", actor=ACTOR, batch_size=3)
    with pytest.raises(ConnectionError, match="source closed the connection"):
        reconciler.run(snapshot)
    # The first two batches committed, the third never applied.
    assert sorted(identities(app)) == [f"key-{n}" for n in range(6)]
    with app.sessions() as session:
        assert verify_database(session).ok
        run = session.scalars(sa.select(DiscoveryRun)).one()
    assert run.status is RunStatus.FAILED
    assert run.error == "source closed the connection"


def _planner_row_estimate(app: Steward) -> float:
    with app.sessions() as session:
        estimate = session.scalar(
            sa.text("SELECT reltuples FROM pg_class WHERE relname = 'identity'")
        )
    return float(estimate)


def test_bulk_run_refreshes_statistics(
    app: Steward, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("planner statistics are refreshed on PostgreSQL only")
    monkeypatch.setattr("governance.discovery.service.ANALYZE_AFTER_CHANGES", 30)
    reconcile(app, [record(number) for number in range(20)])
    assert _planner_row_estimate(app) != 20
    reconcile(app, [record(number) for number in range(50)])
    assert _planner_row_estimate(app) == 50


def test_fingerprint_digests_json_dump() -> None:
    reported = record(
        1,
        description='naïve ✓ "quoted"',
        attributes={"b": 1, "a": "x"},
        created_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )
    dump = reported.model_dump_json().encode("utf-8")
    assert fingerprint(reported) == hashlib.sha256(dump).hexdigest()
