"""The /metrics exposition: gauges read from the database, counters in process."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from urllib.error import URLError

import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.client import build_client
from bot.context import Bot
from bot.local_api import SlackApi
from bot.metrics import StewardMetrics, record_job_run
from connectors.vault.connector import create as create_vault
from governance.app import Steward, create_app
from governance.audit.service import Actor
from governance.campaign.service import start_campaign
from governance.clock import utcnow
from governance.discovery.models import RunStatus
from governance.discovery.runner import discover_source
from governance.identity.models import RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.settings import Settings
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(steward: Steward) -> Samples:
    body, content_type = StewardMetrics(steward)()
    assert content_type.startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _remediation(
    session: Session, kind: RemediationKind, status: RemediationStatus
) -> None:
    number = session.query(Remediation).count() + 1
    session.add(
        Remediation(
            kind=kind,
            status=status,
            dedupe_key=f"metrics-test-{number}",
            requested_by="security@example.com",
        )
    )
    session.flush()


def test_gauges_count_rows(app: Steward, session: Session, settings: Settings) -> None:
    owner = make_person(session)
    due = utcnow() - timedelta(days=1)
    for _ in range(2):
        make_identity(session, owner=owner, review_due_at=due)
    make_identity(session, owner=owner, tier=RiskTier.PRIVILEGED)
    make_identity(session, state=IdentityState.ORPHANED)
    make_identity(session, state=IdentityState.REVOKED, tier=RiskTier.PRIVILEGED)
    session.commit()
    start_campaign(session, actor=ADMIN, settings=settings)
    for kind, status in [
        (RemediationKind.REVOKE, RemediationStatus.PENDING),
        (RemediationKind.REVOKE, RemediationStatus.PENDING),
        (RemediationKind.SCOPE_REDUCTION, RemediationStatus.OPEN),
        (RemediationKind.REVOKE, RemediationStatus.NEEDS_HUMAN),
        (RemediationKind.REVOKE, RemediationStatus.SUCCEEDED),
    ]:
        _remediation(session, kind, status)
    session.commit()

    samples = scrape(app)
    assert value(samples, "steward_database_up") == 1
    identities = "steward_identities"
    assert value(samples, identities, state="under_review", tier="standard") == 2
    assert value(samples, identities, state="owned", tier="privileged") == 1
    assert value(samples, identities, state="owned", tier="standard") == 0
    assert value(samples, identities, state="orphaned", tier="standard") == 1
    assert value(samples, identities, state="revoked", tier="privileged") == 1
    # Every state and tier is reported, zeros included.
    assert (identities, (("state", "gone"), ("tier", "standard"))) in samples
    assert value(samples, "steward_reviews_open") == 2
    assert value(samples, "steward_reviews_overdue") == 0

    pending = "steward_remediations_pending"
    assert value(samples, pending, kind="revoke", status="pending") == 2
    assert value(samples, pending, kind="scope_reduction", status="open") == 1
    assert value(samples, pending, kind="manual_revoke", status="pending") == 0
    assert (pending, (("kind", "revoke"), ("status", "succeeded"))) not in samples
    assert value(samples, "steward_remediations_needs_human", kind="revoke") == 1
    assert value(samples, "steward_remediations_needs_human", kind="ticket") == 0

    later = utcnow() + timedelta(days=settings.review.response_days + 1)
    with time_machine.travel(later, tick=False):
        overdue = scrape(app)
    assert value(overdue, "steward_reviews_open") == 2
    assert value(overdue, "steward_reviews_overdue") == 2


def test_unreadable_database_keeps_counters(tmp_path: Path) -> None:
    steward = create_app(Settings(database_url=f"sqlite:///{tmp_path}/no/such.db"))
    record_job_run("metrics_test_job", "failed")
    try:
        samples = scrape(steward)
    finally:
        steward.close()
    assert value(samples, "steward_database_up") == 0
    job = {"job": "metrics_test_job", "outcome": "failed"}
    assert value(samples, "steward_job_runs_total", **job) >= 1
    assert not any(name == "steward_identities" for name, _ in samples)


def test_slack_errors_counted(bot: Bot, slack_api: SlackApi, steward: Steward) -> None:
    name = "steward_slack_api_errors_total"
    labels = {"method": "users.info", "error": "user_not_found"}
    before = value(scrape(steward), name, **labels)
    with pytest.raises(SlackApiError):
        bot.directory.user_info("U0MISSING")
    assert value(scrape(steward), name, **labels) == before + 1


def test_unreachable_slack_counted(bot_settings: Settings, steward: Steward) -> None:
    name = "steward_slack_api_errors_total"
    labels = {"method": "auth.test", "error": "connection_error"}
    before = value(scrape(steward), name, **labels)
    slack = bot_settings.slack.model_copy(
        update={"api_url": f"http://127.0.0.1:{_closed_port()}/api/"}
    )
    with pytest.raises(URLError):
        build_client(slack).auth_test()
    assert value(scrape(steward), name, **labels) == before + 1


def test_connector_errors_counted(app: Steward) -> None:
    name = "steward_connector_errors_total"
    before = value(scrape(app), name, connector="vault_down")
    connector = create_vault(
        "vault_down",
        {"url": f"http://127.0.0.1:{_closed_port()}", "token": "unused"},
    )
    try:
        outcome = discover_source(
            app, "vault_down", connector, actor=Actor.system("discover")
        )
    finally:
        connector.close()
    assert outcome.status is RunStatus.FAILED
    assert value(scrape(app), name, connector="vault_down") == before + 1


def test_job_runs_counted(app: Steward) -> None:
    name = "steward_job_runs_total"
    labels = {"job": "metrics_test_reminders", "outcome": "succeeded"}
    before = value(scrape(app), name, **labels)
    record_job_run("metrics_test_reminders", "succeeded")
    record_job_run("metrics_test_reminders", "succeeded")
    assert value(scrape(app), name, **labels) == before + 2
