"""Benchmark: importing an identity export through the production path.

Generates a CSV export of N identities, imports it into a fresh SQLite
database with `import_identities` (validation, reconciliation, the lifecycle
state machine and one audit event per identity included), re-imports the
unchanged file, and writes the same rows to the same two tables with a raw
`sqlite3.executemany` for comparison. Each phase runs in its own process so
that its peak memory (maximum resident set size) is its own.

    .venv/bin/python benchmarks/import_identities.py --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from governance.app import create_app
from governance.audit.service import Actor
from governance.database import migrate
from governance.database.engine import create_database_engine
from governance.imports.identities import import_identities
from governance.settings import Settings

HEADER = [
    "kind",
    "external_id",
    "name",
    "description",
    "owner_email",
    "tier",
    "created",
    "last_used",
    "managed",
    "metadata",
]


def generate(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for number in range(rows):
            writer.writerow(
                [
                    "api_key" if number % 3 else "oauth_grant",
                    f"key-{number:08d}",
                    f"integration {number}",
                    "token used by the nightly export job",
                    f"owner{number % 500}@example.com" if number % 7 else "",
                    "privileged" if number % 10 == 0 else "standard",
                    "2025-01-15",
                    "never" if number % 11 == 0 else "2026-11-01T10:00:00Z",
                    "yes" if number % 2 else "no",
                    f"team=team-{number % 40};region=eu",
                ]
            )


def _migrated(path: Path) -> str:

    url = f"sqlite:///{path}"
    engine = create_database_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_import(database: Path, export: Path, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]

    url = _migrated(database) if not database.exists() else f"sqlite:///{database}"
    app = create_app(Settings(database_url=url))
    started = time.perf_counter()
    result = import_identities(
        app, export, source="saas-export", actor=Actor.person("bench@example.com")
    )
    elapsed = time.perf_counter() - started
    app.close()
    queue.put(
        {
            "seconds": elapsed,
            "new": result.reconcile.new,
            "unchanged": result.reconcile.unchanged,
            "peak_mb": _peak_mb(),
        }
    )


def run_raw(database: Path, export: Path, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    _migrated(database)
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    started = time.perf_counter()
    with export.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        identity_rows = []
        audit_rows = []
        previous = "0" * 64
        for number, cells in enumerate(reader, start=1):
            identity_rows.append(
                (
                    number,
                    "saas-export",
                    cells[0],
                    cells[1],
                    cells[2],
                    cells[3],
                    cells[5],
                    "",
                    cells[5],
                    "",
                    "",
                    0,
                    None,
                    None,
                    0,
                    "owned",
                    now,
                    now,
                    now,
                    "{}",
                    "",
                    now,
                )
            )
            digest = hashlib.sha256(f"{previous}{number}".encode()).hexdigest()
            audit_rows.append(
                (
                    number,
                    now,
                    "bench@example.com",
                    "person",
                    "identity.discovered",
                    "identity",
                    str(number),
                    None,
                    "owned",
                    "",
                    "{}",
                    previous,
                    digest,
                )
            )
            previous = digest
            if len(identity_rows) == 2000:
                _flush(connection, identity_rows, audit_rows)
        _flush(connection, identity_rows, audit_rows)
    elapsed = time.perf_counter() - started
    connection.close()
    queue.put({"seconds": elapsed, "peak_mb": _peak_mb()})


def _flush(
    connection: sqlite3.Connection,
    identities: list[tuple[object, ...]],
    audits: list[tuple[object, ...]],
) -> None:
    with connection:
        connection.executemany(
            "INSERT INTO identity (id, source, kind, external_id, name, description, "
            "tier, tier_reason, detected_tier, detected_tier_reason, scope_summary, "
            "managed, created_at, last_used_at, never_used, state, state_changed_at, "
            "first_seen_at, last_seen_at, attributes, fingerprint, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            identities,
        )
        connection.executemany(
            "INSERT INTO audit_event (seq, occurred_at, actor, actor_type, action, "
            "object_type, object_id, before_state, after_state, reason, details, "
            "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            audits,
        )
    identities.clear()
    audits.clear()


def _phase(target: object, *args: object) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=target, args=(*args, queue))
    process.start()
    result: dict[str, float] = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=arguments.workdir) as directory:
        work = Path(directory)
        export = work / "export.csv"
        generate(export, arguments.rows)
        raw = _phase(run_raw, work / "raw.db", export)
        first = _phase(run_import, work / "steward.db", export)
        again = _phase(run_import, work / "steward.db", export)

    rows = arguments.rows
    report = {
        "rows": rows,
        "raw_rows_per_second": round(rows / raw["seconds"]),
        "import_rows_per_second": round(rows / first["seconds"]),
        "import_share_of_raw": round(raw["seconds"] / first["seconds"], 3),
        "import_peak_mb": round(first["peak_mb"]),
        "reimport_rows_per_second": round(rows / again["seconds"]),
        "reimport_peak_mb": round(again["peak_mb"]),
        "raw_peak_mb": round(raw["peak_mb"]),
        "import_seconds": round(first["seconds"], 1),
        "reimport_seconds": round(again["seconds"], 1),
        "raw_seconds": round(raw["seconds"], 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
