"""Benchmark: importing a people file through the production path.

Generates a CSV file of N people, each with a Slack user id and all but the
first with a manager listed earlier in the file. Imports it into a fresh
SQLite database with `import_people`, which includes validation, one audit
event per person and one per manager link. Then imports the unchanged file
again. Each import runs in its own process, so that its peak memory (maximum
resident set size) is its own.

    .venv/bin/python benchmarks/import_people.py --rows 100000
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from governance.app import create_app
from governance.audit.service import Actor
from governance.database import migrate
from governance.database.engine import create_database_engine
from governance.imports.people import import_people
from governance.settings import Settings

HEADER = ["email", "display_name", "slack_user_id", "manager_email", "active"]


def generate(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for number in range(rows):
            manager = f"person{number // 10}@example.com" if number else ""
            writer.writerow(
                [
                    f"person{number}@example.com",
                    f"Person Number {number}",
                    f"U{number:09d}",
                    manager,
                    "yes",
                ]
            )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_import(database: Path, people: Path, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    url = f"sqlite:///{database}"
    if not database.exists():
        engine = create_database_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    app = create_app(Settings(database_url=url))
    started = time.perf_counter()
    result = import_people(app, people, actor=Actor.person("bench@example.com"))
    elapsed = time.perf_counter() - started
    app.close()
    queue.put(
        {
            "seconds": elapsed,
            "created": result.created,
            "unchanged": result.unchanged,
            "peak_mb": _peak_mb(),
        }
    )


def _phase(database: Path, people: Path) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=run_import, args=(database, people, queue))
    process.start()
    result: dict[str, float] = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=arguments.workdir) as directory:
        work = Path(directory)
        people = work / "people.csv"
        generate(people, arguments.rows)
        first = _phase(work / "steward.db", people)
        again = _phase(work / "steward.db", people)

    rows = arguments.rows
    report = {
        "rows": rows,
        "import_seconds": round(first["seconds"], 1),
        "import_rows_per_second": round(rows / first["seconds"]),
        "import_peak_mb": round(first["peak_mb"]),
        "import_created": first["created"],
        "reimport_seconds": round(again["seconds"], 1),
        "reimport_rows_per_second": round(rows / again["seconds"]),
        "reimport_peak_mb": round(again["peak_mb"]),
        "reimport_unchanged": again["unchanged"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
