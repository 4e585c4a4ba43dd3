"""A revoker backed by an SQLite file, for tests that run the worker as a process.

The file contains a `credential` table (external id -> "active" or "revoked") and
a `call` log with one row per revocation call: the credential, whether the
call changed its state, and the id of the process that made it. Tests read
both to check that each credential was revoked at most once as a real change
and which worker process made each call.

Options: `path` (the SQLite file, required) and `delay_seconds` (a pause
before each revocation, so that a test can stop a worker mid-batch).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.base import (
    DiscoveredIdentity,
    HealthState,
    HealthStatus,
    IdentityRef,
    RevocationOutcome,
    RevocationResult,
)
from connectors.errors import ConnectorConfigError
from governance.faults import failpoint

ACTIVE = "active"
REVOKED = "revoked"
TYPE_NAME = "file"
FILE_REVOKER_FACTORY = "tests.support.file_revoker:create"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS credential (
    external_id TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS call (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL,
    changed INTEGER NOT NULL,
    pid INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Call:
    """One logged revocation call."""

    external_id: str
    changed: bool
    pid: int


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode, so that BEGIN IMMEDIATE below starts each transaction.
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def create_store(path: Path, active: Iterable[str]) -> None:
    """Create the file with the given credentials active."""
    connection = _connect(path)
    try:
        connection.executescript(_SCHEMA)
        connection.executemany(
            "INSERT INTO credential (external_id, state) VALUES (?, ?)",
            [(external_id, ACTIVE) for external_id in active],
        )
    finally:
        connection.close()


def read_states(path: Path) -> dict[str, str]:
    """Return external id -> state of every credential in the file."""
    connection = _connect(path)
    try:
        return dict(connection.execute("SELECT external_id, state FROM credential"))
    finally:
        connection.close()


def read_calls(path: Path) -> list[Call]:
    """Return the call log in call order."""
    connection = _connect(path)
    try:
        rows = connection.execute(
            "SELECT external_id, changed, pid FROM call ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return [Call(external_id, bool(changed), pid) for external_id, changed, pid in rows]


class FileRevoker:
    """A revoker of the credentials listed in the SQLite file; discovers nothing."""

    def __init__(self, name: str, path: Path, delay_seconds: float = 0.0) -> None:
        self.name = name
        self.path = path
        self.delay_seconds = delay_seconds

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        """Mark the credential revoked, then verify it by a second look-up."""
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        connection = _connect(self.path)
        try:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(
                "SELECT state FROM credential WHERE external_id = ?",
                (identity.external_id,),
            ).fetchone()
            changed = row is not None and row[0] == ACTIVE
            if changed:
                connection.execute(
                    "UPDATE credential SET state = ? WHERE external_id = ?",
                    (REVOKED, identity.external_id),
                )
            connection.execute(
                "INSERT INTO call (external_id, changed, pid) VALUES (?, ?, ?)",
                (identity.external_id, int(changed), os.getpid()),
            )
            connection.execute("COMMIT")
            if not changed:
                return RevocationResult(
                    RevocationOutcome.ALREADY_GONE,
                    f"credential {identity.external_id} was not active",
                )
            # The state changed: a crash here leaves the credential revoked
            # with the outcome unrecorded.
            failpoint("revoker.called")
            state = connection.execute(
                "SELECT state FROM credential WHERE external_id = ?",
                (identity.external_id,),
            ).fetchone()
        finally:
            connection.close()
        if state is None or state[0] != REVOKED:
            return RevocationResult(
                RevocationOutcome.RETRYABLE,
                f"credential {identity.external_id} still active after revocation",
            )
        return RevocationResult(
            RevocationOutcome.REVOKED, f"credential {identity.external_id} revoked"
        )

    def discover(self) -> Iterator[DiscoveredIdentity]:
        return iter(())

    def check_health(self) -> HealthStatus:
        if self.path.is_file():
            return HealthStatus(HealthState.OK)
        return HealthStatus(HealthState.FAILING, f"file not found: {self.path}")

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "delay_seconds": self.delay_seconds}

    def close(self) -> None:
        pass


def create(name: str, options: Mapping[str, Any]) -> FileRevoker:
    """Build the connector from its options; the file must exist."""
    if "path" not in options:
        raise ConnectorConfigError(f"connector {name}: missing option path")
    path = Path(options["path"])
    if not path.is_file():
        raise ConnectorConfigError(f"connector {name}: file not found: {path}")
    return FileRevoker(name, path, float(options.get("delay_seconds", 0.0)))
