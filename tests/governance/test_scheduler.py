"""The scheduler: due jobs, stored last runs, the lease, and `steward worker`."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from connectors.registry import CONNECTOR_TYPES
from governance.app import Steward, create_app
from governance.cli.main import cli
from governance.clock import utcnow
from governance.control.lease import current_holder
from governance.control.models import Lease
from governance.discovery.models import DiscoveryRun, RunStatus
from governance.errors import ConfigurationError, JobFailedError
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from governance.ownership.rules import start_claim_window
from governance.remediation.models import Remediation, RemediationKind
from governance.remediation.runner import SCHEDULER_LEASE
from governance.remediation.worker import RemediationWorker, WorkerStats
from governance.scheduler.jobs import SCHEDULER_ACTOR, JobSpec, expire_claims
from governance.scheduler.models import JobStatus, ScheduledJob
from governance.scheduler.process import start_in_process
from governance.scheduler.scheduler import StewardScheduler, build_scheduler
from governance.scheduler.store import FAILURE_RETRY
from governance.settings import Settings, load_settings
from tests.factories import make_identity
from tests.support.file_revoker import FILE_REVOKER_FACTORY, TYPE_NAME, create_store
from tests.support.timeline import T0, at

HOURLY = [
    "expire_claims",
    "plan_certifications",
    "escalate_reviews",
    "send_reminders",
    "check_scope_reductions",
]
EVERY_JOB = [*HOURLY, "audit_head", "drain_outbox"]
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _scheduler(app: Steward, holder: str) -> StewardScheduler:
    worker = RemediationWorker(app, {}, worker_id=holder)
    return build_scheduler(app, holder_id=holder, drainers=[worker], discovery=None)


def _ran(scheduler: StewardScheduler, moment: datetime) -> list[str]:
    with at(moment):
        return [result.job_id for result in scheduler.run_pending()]


def _stored(app: Steward) -> dict[str, ScheduledJob]:
    with app.session() as session:
        return {job.job_id: job for job in session.scalars(sa.select(ScheduledJob))}


def test_first_run_runs_every_job(app: Steward) -> None:
    scheduler = _scheduler(app, "host:1")
    assert list(scheduler.jobs) == EVERY_JOB
    with at(T0):
        results = scheduler.run_pending()
    assert [result.job_id for result in results] == EVERY_JOB
    assert {result.status for result in results} == {JobStatus.SUCCEEDED}

    stored = _stored(app)
    assert set(stored) == set(EVERY_JOB)
    for job in stored.values():
        assert job.last_status is JobStatus.SUCCEEDED
        assert job.last_started_at == T0
        assert job.last_finished_at == T0
        assert job.last_holder == "host:1"
        assert job.run_count == 1
    assert stored["audit_head"].last_count == 1
    with app.session() as session:
        heads = session.scalars(
            sa.select(Remediation).where(Remediation.reason == "audit_head")
        ).all()
    assert len(heads) == 1


def test_jobs_run_on_their_intervals(app: Steward) -> None:
    scheduler = _scheduler(app, "host:1")
    _ran(scheduler, T0)
    assert _ran(scheduler, T0) == []
    assert _ran(scheduler, T0 + timedelta(seconds=4)) == []
    assert _ran(scheduler, T0 + timedelta(seconds=5)) == ["drain_outbox"]
    assert _ran(scheduler, T0 + HOUR - MINUTE) == ["drain_outbox"]
    assert _ran(scheduler, T0 + HOUR) == [*HOURLY, "drain_outbox"]
    assert _ran(scheduler, T0 + timedelta(hours=24)) == EVERY_JOB
    assert _stored(app)["audit_head"].run_count == 2


def test_restart_resumes_from_stored_runs(app: Steward) -> None:
    first = _scheduler(app, "host:1")
    _ran(first, T0)
    with at(T0 + MINUTE):
        first.shutdown()

    # A new process neither repeats the runs made before the restart...
    second = _scheduler(app, "host:2")
    assert _ran(second, T0 + HOUR - MINUTE) == ["drain_outbox"]
    # ...nor skips the ones that fall due after it.
    assert _ran(second, T0 + HOUR) == [*HOURLY, "drain_outbox"]

    # After a long outage each job runs once, not once per missed interval.
    second.shutdown()
    third = _scheduler(app, "host:3")
    assert _ran(third, T0 + timedelta(hours=5)) == [*HOURLY, "drain_outbox"]
    stored = _stored(app)
    assert stored["send_reminders"].run_count == 3
    assert stored["send_reminders"].last_holder == "host:3"
    assert stored["audit_head"].run_count == 1


def test_unfinished_run_is_repeated(app: Steward) -> None:
    _ran(_scheduler(app, "host:1"), T0)
    # A holder died in the middle of a run that it started half an hour
    # later, out of schedule (say by an older version).
    crashed_at = T0 + timedelta(minutes=30)
    with app.session() as session:
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.job_id == "send_reminders")
            .values(
                last_status=JobStatus.RUNNING,
                last_started_at=crashed_at,
                last_finished_at=None,
                last_holder="host:dead",
                run_count=2,
            )
        )
    assert _stored(app)["send_reminders"].last_status is JobStatus.RUNNING

    restarted = _scheduler(app, "host:2")
    assert _ran(restarted, crashed_at + MINUTE) == ["send_reminders", "drain_outbox"]
    job = _stored(app)["send_reminders"]
    assert job.last_status is JobStatus.SUCCEEDED
    assert job.last_holder == "host:2"
    assert job.run_count == 3


def test_failed_job_retried_sooner(
    app: Steward, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def flaky() -> int:
        calls.append("flaky")
        if len(calls) == 1:
            raise JobFailedError("source unreachable")
        return 7

    scheduler = StewardScheduler(
        app,
        holder_id="host:1",
        jobs=[JobSpec("flaky", HOUR, flaky), JobSpec("steady", HOUR, lambda: 3)],
        lease_ttl=MINUTE,
    )
    with at(T0), caplog.at_level(logging.ERROR):
        flaky_result, steady_result = scheduler.run_pending()
    assert "job flaky failed: source unreachable" in caplog.text
    # One job's failure does not stop the next.
    assert flaky_result.status is JobStatus.FAILED
    assert flaky_result.error == "JobFailedError: source unreachable"
    assert (steady_result.status, steady_result.count) == (JobStatus.SUCCEEDED, 3)
    stored = _stored(app)["flaky"]
    assert stored.last_status is JobStatus.FAILED
    assert stored.last_error == "JobFailedError: source unreachable"

    assert _ran(scheduler, T0 + FAILURE_RETRY - MINUTE) == []
    assert _ran(scheduler, T0 + FAILURE_RETRY) == ["flaky"]
    assert _stored(app)["flaky"].last_count == 7
    assert _ran(scheduler, T0 + 2 * FAILURE_RETRY) == []
    assert _ran(scheduler, T0 + HOUR) == ["steady"]


def test_only_lease_holder_runs_jobs(app: Steward) -> None:
    first = _scheduler(app, "host:1")
    second = _scheduler(app, "host:2")
    assert _ran(first, T0) == EVERY_JOB
    assert _ran(second, T0) == []
    assert not second.holding
    assert _ran(second, T0 + timedelta(seconds=59)) == []

    # The first holder stops renewing; the second takes over after the lease
    # period and runs only what is due, repeating nothing.
    assert _ran(second, T0 + timedelta(seconds=61)) == ["drain_outbox"]
    assert second.holding
    assert _ran(first, T0 + timedelta(seconds=62)) == []
    assert not first.holding
    with at(T0 + timedelta(seconds=62)), app.session() as session:
        assert current_holder(session, SCHEDULER_LEASE) == "host:2"
    stored = _stored(app)
    for job_id in HOURLY:
        assert stored[job_id].run_count == 1
        assert stored[job_id].last_holder == "host:1"
    assert _ran(second, T0 + HOUR) == [*HOURLY, "drain_outbox"]


def test_shutdown_hands_lease_over(app: Steward) -> None:
    first = _scheduler(app, "host:1")
    second = _scheduler(app, "host:2")
    _ran(first, T0)
    assert _ran(second, T0 + timedelta(seconds=5)) == []
    with at(T0 + timedelta(seconds=5)):
        first.shutdown()
    assert _ran(second, T0 + timedelta(seconds=6)) == ["drain_outbox"]


def test_expire_claims_job(app: Steward, session: Session) -> None:
    with at(T0):
        orphan = make_identity(session, state=IdentityState.ORPHANED)
        start_claim_window(orphan, app.settings.ownership.claim_deadline_days)
        session.commit()
        assert expire_claims(app, actor=SCHEDULER_ACTOR) == 0
    with at(T0 + timedelta(days=15)):
        assert expire_claims(app, actor=SCHEDULER_ACTOR) == 1
        assert expire_claims(app, actor=SCHEDULER_ACTOR) == 0
    with app.session() as check:
        state = check.get_one(Identity, orphan.id).state
        revocations = check.scalars(
            sa.select(Remediation).where(Remediation.kind == RemediationKind.REVOKE)
        ).all()
    assert state is IdentityState.REVOCATION_APPROVAL
    assert len(revocations) == 1


@pytest.fixture
def file_connector(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Steward, Path]]:
    """An app with one file connector synced every 15 minutes and one disabled."""
    monkeypatch.setitem(CONNECTOR_TYPES, TYPE_NAME, FILE_REVOKER_FACTORY)
    store = tmp_path / "credentials.db"
    create_store(store, [])
    settings = Settings(
        database_url=database_url,
        connectors={  # type: ignore[arg-type]
            "filestore": {
                "type": TYPE_NAME,
                "path": str(store),
                "discovery_interval_minutes": 15,
            },
            "spare": {"type": TYPE_NAME, "path": str(store), "enabled": False},
        },
    )
    steward = create_app(settings)
    yield steward, store
    steward.close()


def test_inventory_sync_per_connector(file_connector: tuple[Steward, Path]) -> None:
    app, store = file_connector
    scheduler = build_scheduler(app, holder_id="host:1", drainers=[])
    assert list(scheduler.jobs) == ["sync_inventory:filestore", *HOURLY, "audit_head"]
    assert scheduler.jobs["sync_inventory:filestore"].interval == timedelta(minutes=15)

    assert _ran(scheduler, T0)[0] == "sync_inventory:filestore"
    with app.session() as session:
        [run] = session.scalars(sa.select(DiscoveryRun)).all()
    assert (run.source, run.status) == ("filestore", RunStatus.SUCCEEDED)
    assert _ran(scheduler, T0 + timedelta(minutes=14)) == []

    # A connector that cannot start fails its job, which is retried later.
    store.unlink()
    with at(T0 + timedelta(minutes=15)):
        [result] = scheduler.run_pending()
    assert result.job_id == "sync_inventory:filestore"
    assert result.status is JobStatus.FAILED
    assert "file not found" in (result.error or "")

    without = build_scheduler(app, holder_id="host:1", drainers=[], discovery=None)
    assert "sync_inventory:filestore" not in without.jobs


def test_disabled_jobs_left_out(app: Steward) -> None:
    settings = app.settings.model_copy(
        update={
            "scheduler": app.settings.scheduler.model_copy(
                update={
                    "send_reminders_enabled": False,
                    "drain_outbox_enabled": False,
                    "audit_head_interval_minutes": 60,
                }
            )
        }
    )
    configured = Steward(settings=settings, engine=app.engine, sessions=app.sessions)
    scheduler = _scheduler(configured, "host:1")
    assert "send_reminders" not in scheduler.jobs
    assert "drain_outbox" not in scheduler.jobs
    assert scheduler.jobs["audit_head"].interval == HOUR
    assert scheduler.lease_ttl == MINUTE


def test_scheduler_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STEWARD_SCHEDULER__SEND_REMINDERS_INTERVAL_MINUTES", "30")
    monkeypatch.setenv("STEWARD_SCHEDULER__AUDIT_HEAD_ENABLED", "false")
    settings = load_settings()
    assert settings.scheduler.send_reminders_interval_minutes == 30
    assert settings.scheduler.audit_head_enabled is False
    assert settings.scheduler.plan_certifications_interval_minutes == 60

    monkeypatch.setenv("STEWARD_SCHEDULER__SEND_REMINDERS_INTERVAL_MINUTES", "0")
    with pytest.raises(ConfigurationError, match=r"scheduler\.send_reminders_interval"):
        load_settings()


def test_worker_once_runs_due_jobs(database_url: str, app: Steward) -> None:
    def once() -> list[str]:
        result = CliRunner().invoke(
            cli, ["worker", "--once"], env={"STEWARD_DATABASE_URL": database_url}
        )
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    with at(T0):
        lines = once()
    assert lines == [f"{job_id}: succeeded (count 0)" for job_id in HOURLY] + [
        "audit_head: succeeded (count 1)",
        "drain_outbox: succeeded (count 0)",
    ]
    with at(T0 + timedelta(seconds=1)):
        assert once() == []
    with app.session() as session:
        lease = session.get_one(Lease, SCHEDULER_LEASE)
    # The worker gave its lease up on exit.
    assert lease.expires_at <= T0 + timedelta(seconds=1)


class _SignallingDrainer:
    """A drainer that reports each pass through an event."""

    def __init__(self) -> None:
        self.passed = threading.Event()

    def run_once(self) -> WorkerStats:
        self.passed.set()
        return WorkerStats()


def test_in_process_scheduler_runs_and_stops(app: Steward) -> None:
    drainer = _SignallingDrainer()
    running = start_in_process(app, holder_id="serve:1", drainers=[drainer])
    try:
        assert drainer.passed.wait(timeout=30)
        assert running.scheduler.holding
    finally:
        running.stop()
    with app.session() as session:
        assert current_holder(session, SCHEDULER_LEASE) is None
        lease = session.get_one(Lease, SCHEDULER_LEASE)
    assert lease.holder == "serve:1"
    assert lease.expires_at <= utcnow()
    stored = _stored(app)
    assert stored["drain_outbox"].last_holder == "serve:1"
    assert stored["drain_outbox"].last_status is JobStatus.SUCCEEDED
