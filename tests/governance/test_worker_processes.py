"""The remediation worker as real processes: crashes, restarts and takeover.

The workers that crash or are killed run `steward worker` in a child process
through tests/support/steward_launcher.py, with the file-backed revoker of
tests/support/file_revoker.py, so the revoker's state and call log outlive
the process and can be checked afterwards. A restart after a crash runs the
same command in the test process, which saves one interpreter start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from connectors.registry import CONNECTOR_TYPES
from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.campaign.decision import decide_review
from governance.cli.main import cli
from governance.clock import utcnow
from governance.control.models import Lease
from governance.faults import FAILPOINT_ENV, FAILPOINT_EXIT
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.runner import SCHEDULER_LEASE
from governance.settings import Settings
from tests.support.deciding import ADMIN, open_reviews
from tests.support.file_revoker import (
    FILE_REVOKER_FACTORY,
    REVOKED,
    TYPE_NAME,
    create_store,
    read_calls,
    read_states,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "filestore"
TERMINAL = {RemediationStatus.SUCCEEDED, RemediationStatus.ALREADY_GONE}
# The audit action the worker writes when a revocation is verified.
REVOKED_ACTION = "remediation.revoked"


@dataclass(frozen=True)
class Outbox:
    """Revocations decided in a campaign, waiting for the worker."""

    config: Path
    store: Path
    external_ids: list[str]
    identity_ids: list[int]


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _queue_revocations(
    app: Steward,
    settings: Settings,
    tmp_path: Path,
    count: int,
    *,
    delay_seconds: float = 0.0,
) -> Outbox:
    with app.session() as session:
        reviews = open_reviews(session, settings, count, source=SOURCE)
    for review_id, _, _ in reviews:
        with app.session() as session:
            decide_review(
                session,
                review_id,
                active=False,
                minimal=True,
                actor=ADMIN,
                settings=settings,
            )
    store = tmp_path / "credentials.db"
    external_ids = [external_id for _, _, external_id in reviews]
    create_store(store, external_ids)
    config = tmp_path / "steward.toml"
    config.write_text(
        f"[connectors.{SOURCE}]\n"
        f'type = "{TYPE_NAME}"\n'
        f'path = "{store}"\n'
        f"delay_seconds = {delay_seconds}\n",
        encoding="utf-8",
    )
    return Outbox(
        config=config,
        store=store,
        external_ids=external_ids,
        identity_ids=[identity_id for _, identity_id, _ in reviews],
    )


def _worker_args(outbox: Outbox, *options: str) -> list[str]:
    return ["--config", str(outbox.config), "worker", *options]


def _worker_command(outbox: Outbox, *options: str) -> list[str]:
    launcher = ["-m", "tests.support.steward_launcher"]
    return [sys.executable, *launcher, *_worker_args(outbox, *options)]


def _worker_env(database_url: str, failpoint: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if "STEWARD_" not in key}
    env["STEWARD_DATABASE_URL"] = database_url
    if failpoint is not None:
        env[FAILPOINT_ENV] = failpoint
    return env


def _crash_once(
    outbox: Outbox, database_url: str, failpoint: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _worker_command(outbox, "--once", "--lock-seconds", "1"),
        cwd=ROOT,
        env=_worker_env(database_url, failpoint),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _restart_once(
    outbox: Outbox, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Result:
    monkeypatch.setitem(CONNECTOR_TYPES, TYPE_NAME, FILE_REVOKER_FACTORY)
    monkeypatch.delenv(FAILPOINT_ENV, raising=False)
    return CliRunner().invoke(
        cli,
        _worker_args(outbox, "--once", "--lock-seconds", "1"),
        env={"STEWARD_DATABASE_URL": database_url},
    )


def _revocations(app: Steward) -> list[Remediation]:
    with app.session() as session:
        return list(
            session.scalars(
                sa.select(Remediation)
                .where(Remediation.kind == RemediationKind.REVOKE)
                .order_by(Remediation.id)
            )
        )


def _remediation_events(app: Steward) -> dict[int, list[AuditEvent]]:
    with app.session() as session:
        events = session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.object_type == "remediation")
            .order_by(AuditEvent.seq)
        ).all()
    by_remediation: dict[int, list[AuditEvent]] = {}
    for event in events:
        by_remediation.setdefault(int(event.object_id), []).append(event)
    return by_remediation


def _assert_revoked_once(app: Steward, outbox: Outbox) -> list[Remediation]:
    """Check every decided revocation ended once, in Steward and in the store."""
    revocations = _revocations(app)
    assert len(revocations) == len(outbox.external_ids)
    for remediation in revocations:
        assert remediation.status in TERMINAL, remediation.id
        assert remediation.locked_by is None
    events = _remediation_events(app)
    for remediation in revocations:
        actions = [event.action for event in events[remediation.id]]
        assert actions == ["remediation.queued", REVOKED_ACTION], remediation.id

    with app.session() as session:
        states = session.scalars(
            sa.select(Identity.state).where(Identity.id.in_(outbox.identity_ids))
        ).all()
        revoked_events = session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "identity.revoked")
        )
        assert verify_database(session).ok
    assert set(states) == {IdentityState.REVOKED}
    assert revoked_events == len(outbox.identity_ids)

    assert set(read_states(outbox.store).values()) == {REVOKED}
    changes = [call.external_id for call in read_calls(outbox.store) if call.changed]
    assert sorted(changes) == sorted(outbox.external_ids)
    return revocations


def _expire_scheduler_lease(app: Steward) -> None:
    # What an operator does after a holder is known dead: the lease would
    # otherwise block every worker for the rest of its period.
    with app.session() as session:
        session.execute(
            sa.update(Lease)
            .where(Lease.name == SCHEDULER_LEASE)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def _locks_expired(app: Steward) -> bool:
    with app.session() as session:
        latest = session.scalar(
            sa.select(sa.func.max(Remediation.locked_until)).where(
                Remediation.status == RemediationStatus.IN_PROGRESS
            )
        )
    return latest is None or latest < utcnow()


# Failure point -> status of the first revocation after the restart. Points
# after the revoker changed the credential leave it for the restarted worker
# to find gone; a crash after recording leaves nothing to redo.
KILL_POINTS = {
    "remediation.claimed": RemediationStatus.SUCCEEDED,
    "revoker.called": RemediationStatus.ALREADY_GONE,
    "remediation.verified": RemediationStatus.ALREADY_GONE,
    "remediation.recorded": RemediationStatus.SUCCEEDED,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_crashed_worker_revokes_once(
    app: Steward,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    outbox = _queue_revocations(app, settings, tmp_path, 3)

    crashed = _crash_once(outbox, database_url, point)
    assert crashed.returncode == FAILPOINT_EXIT, crashed.stderr
    after_crash = _revocations(app)
    recorded = [item for item in after_crash if item.status in TERMINAL]
    assert len(recorded) == (1 if point == "remediation.recorded" else 0)
    in_progress = [
        item for item in after_crash if item.status is RemediationStatus.IN_PROGRESS
    ]
    assert len(in_progress) == len(after_crash) - len(recorded)
    first_state = read_states(outbox.store)[outbox.external_ids[0]]
    assert (first_state == REVOKED) is (point != "remediation.claimed")

    _expire_scheduler_lease(app)
    _wait_for(lambda: _locks_expired(app), 10, "the crashed worker's locks")
    restarted = _restart_once(outbox, database_url, monkeypatch)
    assert restarted.exit_code == 0, restarted.output

    revocations = _assert_revoked_once(app, outbox)
    assert revocations[0].status is KILL_POINTS[point]
    for remediation in revocations[1:]:
        assert remediation.status is RemediationStatus.SUCCEEDED
    # The revoker is called once more for a credential whose outcome was lost.
    repeated = 1 if KILL_POINTS[point] is RemediationStatus.ALREADY_GONE else 0
    assert len(read_calls(outbox.store)) == len(outbox.external_ids) + repeated


def _lease_holder(app: Steward) -> str | None:
    with app.session() as session:
        return session.scalar(
            sa.select(Lease.holder).where(Lease.name == SCHEDULER_LEASE)
        )


@pytest.mark.postgresql
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_second_worker_takes_over(
    app: Steward, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    outbox = _queue_revocations(app, settings, tmp_path, 30, delay_seconds=0.05)
    options = ("--interval", "0.2", "--lease-seconds", "5", "--lock-seconds", "3")
    logs = [tmp_path / f"worker-{number}.log" for number in range(2)]
    workers: list[subprocess.Popen[bytes]] = []
    for log in logs:
        with log.open("wb") as handle:
            workers.append(
                subprocess.Popen(
                    _worker_command(outbox, *options),
                    cwd=ROOT,
                    env=_worker_env(database_url),
                    stdout=subprocess.DEVNULL,
                    stderr=handle,
                )
            )
    # Every distinct lease holder, in the order the test saw them.
    holders: list[str] = []

    def watch_lease() -> None:
        holder = _lease_holder(app)
        if holder is not None and (not holders or holders[-1] != holder):
            holders.append(holder)

    def revoked_at_least(count: int) -> Callable[[], bool]:
        def check() -> bool:
            watch_lease()
            calls = read_calls(outbox.store)
            return sum(call.changed for call in calls) >= count

        return check

    def all_done() -> bool:
        watch_lease()
        return all(item.status in TERMINAL for item in _revocations(app))

    try:
        _wait_for(revoked_at_least(5), 30, "the first worker to revoke 5")
        for worker in workers:
            assert worker.poll() is None, worker.args
        assert len(holders) == 1
        first_id = holders[0]
        by_pid = {worker.pid: worker for worker in workers}
        first_pid = int(first_id.rsplit(":", 1)[1])
        assert first_pid in by_pid
        first = by_pid.pop(first_pid)
        [second] = by_pid.values()
        second_id = f"{socket.gethostname()}:{second.pid}"

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        calls_before_kill = read_calls(outbox.store)
        assert {call.pid for call in calls_before_kill} == {first_pid}
        assert _lease_holder(app) == first_id

        _wait_for(all_done, 40, "the second worker to finish the outbox")
        assert holders == [first_id, second_id]
        calls_after_kill = read_calls(outbox.store)[len(calls_before_kill) :]
        assert calls_after_kill
        assert {call.pid for call in calls_after_kill} == {second.pid}

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0, logs[workers.index(second)].read_text()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    _assert_revoked_once(app, outbox)
    recorded_by: dict[str, int] = {}
    for remediation_id, events in _remediation_events(app).items():
        named = {
            event.details["worker"] for event in events if "worker" in event.details
        }
        assert len(named) == 1, remediation_id
        [worker_id] = named
        recorded_by[worker_id] = recorded_by.get(worker_id, 0) + 1
    assert set(recorded_by) == {first_id, second_id}
    assert sum(recorded_by.values()) == len(outbox.external_ids)
    with app.session() as session:
        lease = session.get_one(Lease, SCHEDULER_LEASE)
        assert lease.expires_at <= utcnow()
