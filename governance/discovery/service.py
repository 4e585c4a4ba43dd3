"""Reconciling a source's complete snapshot with the inventory.

A run reads the snapshot twice. The first pass only counts it and finds the
identities it no longer contains, so that the blast-radius guard can stop a
run before anything changes. The second pass writes new and changed
identities in batches; unchanged ones are not written at all. Identities
missing from the snapshot move to `gone` last, and only when every record was
applied.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool

from connectors.base import DiscoveredIdentity
from governance.app import Steward
from governance.audit import service as audit
from governance.audit.service import Actor, EventSpec, record_many
from governance.business_entity.models import BusinessEntity, EntityType
from governance.campaign.schedule import first_review_due
from governance.clock import utcnow
from governance.database.bulk import allocate_ids, insert_rows
from governance.discovery.models import DiscoveryRun, RunStatus, run_error
from governance.errors import ConfirmationRequiredError, InvalidInputError
from governance.gc_pause import paused_gc
from governance.identity.models import (
    Identity,
    OwnerOrigin,
    RiskTier,
    identity_entity_link,
)
from governance.lifecycle import LIVE_STATES, IdentityState, initial_state, transition
from governance.ownership.rules import adopt, orphan, start_claim_window
from governance.person.models import Person

logger = logging.getLogger(__name__)

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
DEFAULT_TIER_REASON = "standard by default: the source reports no tier"
# New and gone identities in one run after which the planner statistics of
# the identity table are refreshed on PostgreSQL.
ANALYZE_AFTER_CHANGES = 10_000
STEWARD_OWNER_ORIGINS = frozenset(
    {OwnerOrigin.ASSIGNED, OwnerOrigin.CLAIMED, OwnerOrigin.INHERITED}
)
ENTITY_FIELDS = (
    ("application", EntityType.APPLICATION),
    ("project", EntityType.PROJECT),
    ("vendor", EntityType.VENDOR),
)

Snapshot = Callable[[], Iterable[DiscoveredIdentity]]


def check_source_name(name: str) -> str:
    """Return `name` if it is a valid source name, else raise InvalidInputError."""
    if not SOURCE_NAME.match(name):
        raise InvalidInputError(
            f"invalid source name {name!r}: expected lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (at most 100)"
        )
    return name


def fingerprint(record: DiscoveredIdentity) -> str:
    """Return a digest of everything the source reports about an identity.

    The JSON follows the model's field order, and DiscoveredIdentity sorts its
    attributes, so equal reports give equal digests.
    """
    # to_json returns the bytes model_dump_json would decode into its text.
    return hashlib.sha256(record.__pydantic_serializer__.to_json(record)).hexdigest()


def key_digest(external_id: str) -> bytes:
    """Return the 16-byte digest that stands for an external id in seen sets."""
    return hashlib.blake2b(external_id.encode("utf-8"), digest_size=16).digest()


def _commit(session: Session) -> None:
    """Commit and close the session, rolling it back when the commit fails."""
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass
class ReconcileResult:
    """Counts of one run; `run_id` names its DiscoveryRun record."""

    run_id: int
    source: str
    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    reappeared: int = 0
    owner_disagreements: int = 0
    unknown_entities: dict[str, int] = field(default_factory=dict)

    def as_details(self) -> dict[str, Any]:
        return {
            "reappeared": self.reappeared,
            "owner_disagreements": self.owner_disagreements,
            "unknown_entities": dict(sorted(self.unknown_entities.items())[:50]),
        }


@dataclass
class _Lookups:
    people: dict[str, Person]
    entities: dict[tuple[EntityType, str], BusinessEntity]


class Reconciler:
    """Applies complete snapshots of one source to the inventory."""

    def __init__(
        self,
        app: Steward,
        source: str,
        *,
        method: str,
        actor: Actor,
        confirm: bool = False,
        batch_size: int = 2000,
    ) -> None:
        self.app = app
        self.source = check_source_name(source)
        self.method = method
        self.actor = actor
        self.confirm = confirm
        self.batch_size = batch_size
        # In-memory SQLite connections work only in the thread that opened
        # them, so those sessions commit where they were written.
        self._commit_on_thread = not isinstance(app.engine.pool, SingletonThreadPool)
        self.claim_deadline_days = app.settings.ownership.claim_deadline_days
        self.max_gone_share = app.settings.guards.max_gone_share
        self.review_settings = app.settings.review

    # The run record

    def start_run(self) -> int:
        """Write the run record, committed on its own, and return its id."""
        with self.app.session() as session:
            run = DiscoveryRun(
                source=self.source, method=self.method, actor=self.actor.name
            )
            session.add(run)
            session.flush()
            return run.id

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        result: ReconcileResult | None = None,
        error: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Close the run record with its outcome and counts."""
        with self.app.session() as session:
            run = session.get_one(DiscoveryRun, run_id)
            run.status = status
            run.finished_at = utcnow()
            run.error = error
            if result is not None:
                run.seen_count = result.seen
                run.new_count = result.new
                run.changed_count = result.changed
                run.unchanged_count = result.unchanged
                run.gone_count = result.gone
                run.details = {**result.as_details(), **(details or {})}
            elif details:
                run.details = details

    # The run

    @paused_gc()
    def run(
        self,
        snapshot: Snapshot,
        *,
        run_id: int | None = None,
        scanned: set[bytes] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ReconcileResult:
        """Reconcile the snapshot; `snapshot` is called once per pass.

        `scanned` replaces the first pass when the caller already collected
        the key digests (see `key_digest`) of every external id the source
        contains. `progress` receives the number of records applied after
        each batch. Raises ConfirmationRequiredError, having changed nothing but
        the run record, when the run would mark more than the allowed share
        gone.
        """
        run_id = run_id if run_id is not None else self.start_run()
        result = ReconcileResult(run_id=run_id, source=self.source)
        try:
            with self._source_lock():
                if scanned is None:
                    seen = self._scan(snapshot(), result)
                else:
                    seen = scanned
                    result.seen = len(scanned)
                gone_ids, live = self._find_gone(seen)
                del seen
                self._check_guard(run_id, len(gone_ids), live, result)
                self._apply(snapshot(), result, progress)
                self._mark_gone(gone_ids, result)
        except ConfirmationRequiredError:
            raise
        except BaseException as error:
            # Batches committed before an interruption stay, so an
            # interrupted run is recorded as failed, with its counts.
            message = run_error(error, first_line=False)
            self.finish_run(run_id, RunStatus.FAILED, result, error=message)
            logger.error(
                "discovery run %s of %s failed: %s", run_id, self.source, message
            )
            raise
        self.finish_run(run_id, RunStatus.SUCCEEDED, result)
        if result.new + result.gone >= ANALYZE_AFTER_CHANGES:
            self._refresh_statistics()
        logger.info(
            "discovery run %s of %s: %s seen, %s new, %s changed, %s unchanged, "
            "%s gone",
            run_id,
            self.source,
            result.seen,
            result.new,
            result.changed,
            result.unchanged,
            result.gone,
        )
        return result

    @contextmanager
    def _source_lock(self) -> Iterator[None]:
        """Hold this source's lock for a run, so runs of one source never overlap.

        Each batch commits on its own, so on PostgreSQL two overlapping runs
        would insert the same new identities and fail on the unique key. A
        session-level advisory lock on a separate connection spans the
        batches, and ends with the connection if the process dies. SQLite
        needs none: its transactions run one at a time, and a run's batches
        find the identities an interleaved run committed.
        """
        if self.app.engine.dialect.name != "postgresql":
            yield
            return
        name = f"steward.reconcile:{self.source}".encode()
        key = int.from_bytes(
            hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True
        )
        engine = self.app.engine.execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.select(sa.func.pg_advisory_lock(key)))
            try:
                yield
            finally:
                try:
                    connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                except sa.exc.SQLAlchemyError as error:
                    # Closing the connection is what releases the lock then,
                    # so it must not go back to the pool.
                    logger.warning(
                        "failed to release the lock of source %s (%s), so its "
                        "connection is closed",
                        self.source,
                        error,
                    )
                    connection.invalidate()

    def _refresh_statistics(self) -> None:
        # PostgreSQL plans from table statistics, which autovacuum gathers
        # only some time after a bulk load. Until then it may plan
        # `id IN (...) AND state = ...` as a scan of every identity in that
        # state, which makes a campaign opened right after a large first
        # import take time quadratic in its size (docs/benchmarks.md).
        if self.app.engine.dialect.name != "postgresql":
            return
        with self.app.session() as session:
            session.execute(sa.text("ANALYZE identity"))

    def _scan(
        self, records: Iterable[DiscoveredIdentity], result: ReconcileResult
    ) -> set[bytes]:
        # NOTE: the set of seen keys grows by about 70 bytes per identity; the
        # records themselves are not kept.
        seen: set[bytes] = set()
        for record in records:
            digest = key_digest(record.external_id)
            if digest in seen:
                raise InvalidInputError(
                    f"duplicate external id {record.external_id!r} in the snapshot "
                    f"of source {self.source!r}"
                )
            seen.add(digest)
        result.seen = len(seen)
        return seen

    def _find_gone(self, seen: set[bytes]) -> tuple[list[int], int]:
        gone: list[int] = []
        live = 0
        with self.app.session() as session:
            # Read in chunks instead of buffering a million rows at once.
            rows = session.execute(
                sa.select(Identity.id, Identity.external_id)
                .where(Identity.source == self.source, Identity.state.in_(LIVE_STATES))
                .execution_options(yield_per=10_000)
            )
            for identity_id, external_id in rows:
                live += 1
                if key_digest(external_id) not in seen:
                    gone.append(identity_id)
        return gone, live

    def _check_guard(
        self, run_id: int, gone: int, live: int, result: ReconcileResult
    ) -> None:
        if self.confirm or gone == 0 or live == 0:
            return
        share = gone / live
        if share <= self.max_gone_share:
            return
        message = (
            f"the run would mark {gone} of {live} live identities of source "
            f"{self.source!r} gone ({share:.0%}, above the limit of "
            f"{self.max_gone_share:.0%}); an empty or truncated export looks like "
            "this, so check it and run again with --confirm"
        )
        self.finish_run(
            run_id,
            RunStatus.BLOCKED,
            None,
            error=message,
            details={"would_be_gone": gone, "live": live, "seen": result.seen},
        )
        logger.warning(
            "discovery run %s of %s blocked: %s", run_id, self.source, message
        )
        raise ConfirmationRequiredError(message)

    def _apply(
        self,
        records: Iterable[DiscoveredIdentity],
        result: ReconcileResult,
        progress: Callable[[int], None] | None,
    ) -> None:
        applied = 0
        pending: tuple[Future[None], int] | None = None

        def settle() -> None:
            # Wait for the previous batch's commit, then report it applied.
            nonlocal applied, pending
            if pending is None:
                return
            committed, rows = pending
            pending = None
            committed.result()
            applied += rows
            if progress is not None:
                progress(applied)

        # Each batch commits on a thread while the next one is read. Both
        # drivers release the interpreter lock while the database commits
        # (for SQLite that includes the checkpoints that copy the
        # write-ahead log into the database file), so the commit overlaps
        # the parsing of the next batch.
        with ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="steward-commit"
        ) as committer:
            for batch in _batches(records, self.batch_size):
                settle()
                session = self.app.sessions()
                try:
                    self._apply_batch(session, batch, result)
                except BaseException:
                    session.rollback()
                    session.close()
                    raise
                if self._commit_on_thread:
                    committed = committer.submit(_commit, session)
                else:
                    committed = Future()
                    _commit(session)
                    committed.set_result(None)
                pending = (committed, len(batch))
            settle()

    def _lookups(
        self, session: Session, batch: Sequence[DiscoveredIdentity]
    ) -> _Lookups:
        emails = {r.owner_email.strip().lower() for r in batch if r.owner_email}
        people: dict[str, Person] = {}
        if emails:
            people = {
                person.email: person
                for person in session.scalars(
                    sa.select(Person).where(Person.email.in_(emails))
                )
            }
        keys: dict[EntityType, set[str]] = {}
        for record in batch:
            for field_name, entity_type in ENTITY_FIELDS:
                key = getattr(record, field_name)
                if key:
                    keys.setdefault(entity_type, set()).add(key)
        entities: dict[tuple[EntityType, str], BusinessEntity] = {}
        for entity_type, type_keys in keys.items():
            for entity in session.scalars(
                sa.select(BusinessEntity).where(
                    BusinessEntity.type == entity_type,
                    BusinessEntity.key.in_(type_keys),
                )
            ):
                entities[(entity.type, entity.key)] = entity
        return _Lookups(people=people, entities=entities)

    def _apply_batch(
        self, session: Session, batch: list[DiscoveredIdentity], result: ReconcileResult
    ) -> None:
        # Columns, not ORM objects: most records of a repeated run are
        # unchanged, and those need only their fingerprint and state.
        known = {
            external_id: (identity_id, stored, state)
            for identity_id, external_id, stored, state in session.execute(
                sa.select(
                    Identity.id,
                    Identity.external_id,
                    Identity.fingerprint,
                    Identity.state,
                ).where(
                    Identity.source == self.source,
                    Identity.external_id.in_([r.external_id for r in batch]),
                )
            )
        }
        new_records: list[tuple[DiscoveredIdentity, str]] = []
        changed_records: list[tuple[DiscoveredIdentity, str, int]] = []
        for record in batch:
            digest = fingerprint(record)
            current = known.get(record.external_id)
            if current is None:
                new_records.append((record, digest))
            elif current[1] == digest and current[2] in LIVE_STATES:
                result.unchanged += 1
            else:
                changed_records.append((record, digest, current[0]))
        if not new_records and not changed_records:
            return
        lookups = self._lookups(
            session,
            [record for record, _ in new_records]
            + [record for record, _, _ in changed_records],
        )
        if changed_records:
            identities = {
                identity.id: identity
                for identity in session.scalars(
                    sa.select(Identity).where(
                        Identity.id.in_([id_ for _, _, id_ in changed_records])
                    )
                )
            }
            for record, digest, identity_id in changed_records:
                self._update(
                    session, identities[identity_id], record, digest, lookups, result
                )
        if new_records:
            self._insert(session, new_records, lookups, result)

    # New identities: bulk inserts, one audit event each

    def _owner_for(
        self, record: DiscoveredIdentity, lookups: _Lookups
    ) -> Person | None:
        if not record.owner_email:
            return None
        person = lookups.people.get(record.owner_email.strip().lower())
        return person if person is not None and person.active else None

    def _linked_entities(
        self, record: DiscoveredIdentity, lookups: _Lookups, result: ReconcileResult
    ) -> list[BusinessEntity]:
        linked = []
        for field_name, entity_type in ENTITY_FIELDS:
            key = getattr(record, field_name)
            if not key:
                continue
            entity = lookups.entities.get((entity_type, key))
            if entity is None:
                label = f"{entity_type.value}:{key}"
                result.unknown_entities[label] = (
                    result.unknown_entities.get(label, 0) + 1
                )
            else:
                linked.append(entity)
        return linked

    def _insert(
        self,
        session: Session,
        records: list[tuple[DiscoveredIdentity, str]],
        lookups: _Lookups,
        result: ReconcileResult,
    ) -> None:
        now = utcnow()
        claim_deadline = now + timedelta(days=self.claim_deadline_days)
        table = cast(sa.Table, Identity.__table__)
        # Ids reserved up front spare a query for them after the insert.
        identity_ids = allocate_ids(session, table, len(records))
        rows: list[tuple[Any, ...]] = []
        owners: list[Person | None] = []
        for identity_id, (record, digest) in zip(identity_ids, records, strict=True):
            owner = self._owner_for(record, lookups)
            owners.append(owner)
            tier = _TIERS[record.tier]
            reason = record.tier_reason or (
                DEFAULT_TIER_REASON if record.tier is None else "reported by the source"
            )
            rows.append(
                (
                    identity_id,
                    *_identity_values(record),
                    self.source,
                    tier,
                    reason,
                    tier,
                    reason,
                    initial_state(owner is not None),
                    now,
                    owner.id if owner is not None else None,
                    OwnerOrigin.SOURCE if owner is not None else None,
                    now,
                    now,
                    digest,
                    now,
                    first_review_due(
                        now, tier, record.external_id, self.review_settings
                    ),
                    None if owner is not None else now,
                    None if owner is not None else claim_deadline,
                )
            )
        insert_rows(session, table, INSERT_COLUMNS, rows)

        links = []
        events = []
        reason = f"first reported by {self.source}"
        for (record, _), row, owner in zip(records, rows, owners, strict=True):
            identity_id = row[0]
            for entity in self._linked_entities(record, lookups, result):
                links.append({"identity_id": identity_id, "entity_id": entity.id})
            state: IdentityState = row[_STATE_INDEX]
            row_tier: RiskTier = row[_TIER_INDEX]
            events.append(
                EventSpec(
                    action="identity.discovered",
                    object_type="identity",
                    object_id=str(identity_id),
                    before_state=None,
                    after_state=state.value,
                    reason=reason,
                    details={
                        "source": self.source,
                        "kind": record.kind,
                        "external_id": record.external_id,
                        "tier": row_tier.value,
                        "owner": owner.email if owner is not None else None,
                        "reported_owner": record.owner_email,
                    },
                )
            )
        if links:
            session.execute(sa.insert(identity_entity_link), links)
        record_many(session, self.actor, events)
        result.new += len(rows)

    # Known identities: changes, owners, reappearance

    def _update(
        self,
        session: Session,
        identity: Identity,
        record: DiscoveredIdentity,
        digest: str,
        lookups: _Lookups,
        result: ReconcileResult,
    ) -> None:
        changed = _apply_fields(identity, record)
        identity.fingerprint = digest
        identity.last_seen_at = utcnow()
        for entity in self._linked_entities(record, lookups, result):
            if entity not in identity.entities:
                identity.entities.append(entity)
                changed.append(f"link:{entity.type.value}:{entity.key}")

        if identity.state is IdentityState.REVOKED:
            transition(
                session,
                identity,
                IdentityState.REVOCATION_FAILED,
                actor=self.actor,
                action="identity.still_reported",
                reason=f"{self.source} still reports a revoked identity",
                details={"changed": changed},
            )
            result.changed += 1
            return

        reported_owner = self._owner_for(record, lookups)
        if identity.state is IdentityState.GONE:
            self._reappear(session, identity, reported_owner, changed)
            result.reappeared += 1
            result.changed += 1
            return

        self._reconcile_owner(session, identity, record, reported_owner, result)
        if changed:
            session.flush()
            audit.record(
                session,
                actor=self.actor,
                action="identity.updated",
                object_type="identity",
                object_id=str(identity.id),
                before_state=identity.state.value,
                after_state=identity.state.value,
                reason=f"reported changed by {self.source}",
                details={"changed": changed},
            )
        result.changed += 1

    def _reappear(
        self,
        session: Session,
        identity: Identity,
        owner: Person | None,
        changed: list[str],
    ) -> None:
        if (
            identity.owner_origin in STEWARD_OWNER_ORIGINS
            and identity.owner is not None
        ):
            owner = identity.owner if identity.owner.active else None
        identity.owner = owner
        identity.owner_id = owner.id if owner is not None else None
        if owner is None:
            identity.owner_origin = None
            start_claim_window(identity, self.claim_deadline_days)
        elif identity.owner_origin is None:
            identity.owner_origin = OwnerOrigin.SOURCE
        transition(
            session,
            identity,
            initial_state(owner is not None),
            actor=self.actor,
            action="identity.reappeared",
            reason=f"reported again by {self.source}",
            details={"changed": changed},
        )

    def _reconcile_owner(
        self,
        session: Session,
        identity: Identity,
        record: DiscoveredIdentity,
        reported: Person | None,
        result: ReconcileResult,
    ) -> None:
        if identity.owner_origin in STEWARD_OWNER_ORIGINS:
            # An owner set in Steward wins; a different report is only recorded.
            reported_email = (record.owner_email or "").strip().lower()
            owner = identity.owner
            if reported_email and owner is not None and reported_email != owner.email:
                result.owner_disagreements += 1
            return
        if reported is not None and reported is not identity.owner:
            adopt(
                session,
                identity,
                reported,
                OwnerOrigin.SOURCE,
                actor=self.actor,
                action="owner.reported",
                reason=f"owner reported by {self.source}",
            )
        elif reported is None and identity.owner is not None:
            orphan(
                session,
                identity,
                actor=self.actor,
                action="owner.unreported",
                reason=f"{self.source} no longer reports an active owner",
                claim_deadline_days=self.claim_deadline_days,
            )

    # Identities missing from the snapshot

    def _mark_gone(self, gone_ids: list[int], result: ReconcileResult) -> None:
        for batch in _batches(gone_ids, self.batch_size):
            with self.app.session() as session:
                for identity in session.scalars(
                    sa.select(Identity).where(Identity.id.in_(batch))
                ):
                    if identity.state not in LIVE_STATES:
                        continue
                    transition(
                        session,
                        identity,
                        IdentityState.GONE,
                        actor=self.actor,
                        action="identity.gone",
                        reason=f"no longer reported by {self.source}",
                    )
                    result.gone += 1


# The columns the source reports, in the order of `_identity_values`.
REPORTED_COLUMNS = (
    "kind",
    "external_id",
    "name",
    "description",
    "scope_summary",
    "managed",
    "created_at",
    "last_used_at",
    "never_used",
    "source_owner_email",
    "attributes",
)
# Every column a new identity is inserted with, in the order `_insert` writes.
INSERT_COLUMNS = (
    "id",
    *REPORTED_COLUMNS,
    "source",
    "tier",
    "tier_reason",
    "detected_tier",
    "detected_tier_reason",
    "state",
    "state_changed_at",
    "owner_id",
    "owner_origin",
    "first_seen_at",
    "last_seen_at",
    "fingerprint",
    "updated_at",
    "review_due_at",
    "orphaned_at",
    "claim_deadline",
)
_STATE_INDEX = INSERT_COLUMNS.index("state")
# A reported tier as the enum; no tier means standard.
_TIERS: dict[str | None, RiskTier] = {
    None: RiskTier.STANDARD,
    **{tier.value: tier for tier in RiskTier},
}
_TIER_INDEX = INSERT_COLUMNS.index("tier")


def _identity_values(record: DiscoveredIdentity) -> tuple[Any, ...]:
    return (
        record.kind,
        record.external_id,
        record.name,
        record.description,
        record.scope_summary,
        record.managed,
        record.created_at,
        record.last_used_at,
        record.never_used,
        record.owner_email.strip().lower() if record.owner_email else None,
        dict(record.attributes),
    )


def _apply_fields(identity: Identity, record: DiscoveredIdentity) -> list[str]:
    """Copy reported fields onto the identity; return the names that changed."""
    changed = []
    for name, value in zip(REPORTED_COLUMNS, _identity_values(record), strict=True):
        if getattr(identity, name) != value:
            setattr(identity, name, value)
            changed.append(name)
    tier = RiskTier(record.tier) if record.tier else RiskTier.STANDARD
    reason = record.tier_reason or (
        DEFAULT_TIER_REASON if record.tier is None else "reported by the source"
    )
    if identity.detected_tier is not tier or identity.detected_tier_reason != reason:
        identity.detected_tier = tier
        identity.detected_tier_reason = reason
        changed.append("detected_tier")
        if identity.tier_override is None:
            identity.tier = tier
            identity.tier_reason = reason
    return changed
