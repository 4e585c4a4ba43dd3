"""Benchmark: opening certification campaigns and draining the revocation outbox.

Opens a campaign over N due identities with `start_campaign` (the production
path: reviews, evidence, audit events, claim requests for orphans and the
owned -> under_review transition), on SQLite and on a scratch PostgreSQL
database created for the run and dropped after it. Then drains revocations
through `RemediationWorker.run_once` with an in-memory revoker. Seeding
writes straight into the tables and is not measured. One identity in 100 is
an orphan, so the claim requests are part of the measured work.

    .venv/bin/python benchmarks/campaign.py --sqlite-sizes 10000,100000 \\
        --postgres-sizes 100000,1000000 --drain 10000
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import platform
import pstats
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from connectors.base import IdentityRef, RevocationOutcome, RevocationResult
from governance.app import Steward, create_app
from governance.audit.service import Actor
from governance.campaign.service import start_campaign
from governance.clock import utcnow
from governance.database import migrate
from governance.database.engine import create_database_engine
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.worker import RemediationWorker
from governance.settings import Settings

ACTOR = Actor.person("bench@example.com")
SOURCE = "bench"
SEED_CHUNK = 10_000
ORPHAN_EVERY = 100
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class MemoryRevoker:
    """A revoker whose credentials live in a set in this process."""

    name = SOURCE

    def __init__(self) -> None:
        self.revoked: set[str] = set()

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        if identity.external_id in self.revoked:
            return RevocationResult(RevocationOutcome.ALREADY_GONE, "already revoked")
        self.revoked.add(identity.external_id)
        return RevocationResult(RevocationOutcome.REVOKED, "revoked")


# Databases


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="steward-bench-") as directory:
        url = f"sqlite:///{Path(directory) / 'steward.db'}"
        engine = create_database_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@contextlib.contextmanager
def postgres_database(server: URL) -> Iterator[str]:
    name = f"steward_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    url = server.set(database=name)
    try:
        engine = create_database_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )
        admin.dispose()


def scratch_database(
    backend: str, server: URL
) -> contextlib.AbstractContextManager[str]:
    return sqlite_database() if backend == "sqlite" else postgres_database(server)


def open_app(url: str) -> Steward:
    return create_app(Settings(database_url=url))


# Seeding, not measured


def seed_identities(app: Steward, count: int, state: IdentityState) -> None:
    """Insert `count` standard-tier identities due for review, owned by one person.

    With state OWNED, every ORPHAN_EVERY-th identity is an orphan instead.
    """
    now = utcnow()
    due = now - timedelta(days=1)
    with app.session() as session:
        owner = Person(email="owner@example.com", display_name="Owner")
        session.add(owner)
        session.flush()
        owner_id = owner.id
    table = cast(sa.Table, Identity.__table__)
    for start in range(0, count, SEED_CHUNK):
        rows: list[dict[str, Any]] = []
        for number in range(start, min(start + SEED_CHUNK, count)):
            orphan = state is IdentityState.OWNED and number % ORPHAN_EVERY == 0
            rows.append(
                {
                    "source": SOURCE,
                    "kind": "api_key",
                    "external_id": f"key-{number:08d}",
                    "name": f"integration {number}",
                    "tier": RiskTier.STANDARD,
                    "detected_tier": RiskTier.STANDARD,
                    "scope_summary": "read:reports",
                    "state": IdentityState.ORPHANED if orphan else state,
                    "owner_id": None if orphan else owner_id,
                    "review_due_at": due,
                    "created_at": due,
                    "last_used_at": due,
                }
            )
        with app.session() as session:
            session.execute(sa.insert(table), rows)
    analyze(app)


def analyze(app: Steward) -> None:
    """Gather PostgreSQL's planner statistics, as a database in use has them.

    Autovacuum gathers them some time after a bulk load and Steward's
    imports refresh them when they end; seeding writes straight into the
    tables, so it gathers them here. Without them PostgreSQL plans the
    campaign's updates as scans of every identity in a state.
    """
    if app.engine.dialect.name == "postgresql":
        with app.session() as session:
            session.execute(sa.text("ANALYZE identity"))


def seed_revocations(app: Steward, count: int) -> None:
    """Insert `count` identities awaiting revocation and their pending rows."""
    seed_identities(app, count, IdentityState.REVOCATION_PENDING)
    now = utcnow()
    with app.session() as session:
        identity_ids = session.scalars(
            sa.select(Identity.id).order_by(Identity.id)
        ).all()
    for start in range(0, len(identity_ids), SEED_CHUNK):
        rows = [
            {
                "kind": RemediationKind.REVOKE,
                "status": RemediationStatus.PENDING,
                "dedupe_key": f"bench:revoke:{identity_id}",
                "identity_id": identity_id,
                "payload": {},
                "reason": "benchmark",
                "requested_by": ACTOR.name,
                "next_attempt_at": now,
            }
            for identity_id in identity_ids[start : start + SEED_CHUNK]
        ]
        with app.session() as session:
            session.execute(sa.insert(cast(sa.Table, Remediation.__table__)), rows)


# Measured phases


def measure_campaign(url: str, count: int, profile: bool) -> dict[str, Any]:
    app = open_app(url)
    try:
        seed_identities(app, count, IdentityState.OWNED)
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        with app.session() as session:
            campaign = start_campaign(session, actor=ACTOR, settings=app.settings)
            campaign_id = campaign.id
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - started
        with app.session() as session:
            reviews = session.scalar(
                sa.text("SELECT count(*) FROM review WHERE campaign_id = :id"),
                {"id": campaign_id},
            )
    finally:
        app.close()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return {"reviews": reviews, "seconds": seconds}


def measure_drain(url: str, count: int) -> dict[str, Any]:
    app = open_app(url)
    try:
        seed_revocations(app, count)
        revoker = MemoryRevoker()
        worker = RemediationWorker(app, {SOURCE: revoker}, worker_id="bench")
        passes = 0
        started = time.perf_counter()
        while worker.run_once().taken:
            passes += 1
        seconds = time.perf_counter() - started
        with app.session() as session:
            succeeded = session.scalar(
                sa.select(sa.func.count())
                .select_from(Remediation)
                .where(Remediation.status == RemediationStatus.SUCCEEDED)
            )
    finally:
        app.close()
    if succeeded != count or len(revoker.revoked) != count:
        raise SystemExit(
            f"drain incomplete: {succeeded} of {count} succeeded, "
            f"{len(revoker.revoked)} revoked"
        )
    return {"revocations": count, "seconds": seconds, "passes": passes}


# Report


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs (nproc), {model}, Python {platform.python_version()}"


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-sizes", type=sizes, default=[10_000, 100_000])
    parser.add_argument("--postgres-sizes", type=sizes, default=[100_000, 1_000_000])
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("STEWARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create the scratch databases on",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of each campaign"
    )
    args = parser.parse_args()

    server = make_url(args.postgres_url)
    print(machine())
    print("| backend    | identities | start_campaign | reviews per second |")
    print("|------------|------------|----------------|--------------------|")
    runs: list[tuple[str, int]] = [("sqlite", size) for size in args.sqlite_sizes]
    runs += [("postgresql", size) for size in args.postgres_sizes]
    for backend, size in runs:
        with scratch_database(backend, server) as url:
            result = measure_campaign(url, size, args.profile)
        rate = result["reviews"] / result["seconds"]
        print(
            f"| {backend:<10} | {result['reviews']:>10,} | "
            f"{result['seconds']:>12.2f} s | {rate:>18,.0f} |",
            flush=True,
        )
    if args.drain:
        print()
        print("| backend    | revocations | drain time | revocations per second |")
        print("|------------|-------------|------------|------------------------|")
        for backend in ("sqlite", "postgresql"):
            with scratch_database(backend, server) as url:
                result = measure_drain(url, args.drain)
            rate = result["revocations"] / result["seconds"]
            print(
                f"| {backend:<10} | {result['revocations']:>11,} | "
                f"{result['seconds']:>8.2f} s | {rate:>22,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
