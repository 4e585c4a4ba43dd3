"""The whole governance loop with real components, mocked only at the wire.

A real OpenBao dev server stores AppRole secret-ids, and a CSV export lists
SaaS keys. Steward discovers both, imports people and entities, and opens a
campaign. The bot handles signed Slack requests over HTTP and calls the Web
API stand-in, and the notifier posts the outbox's messages. An owner claims
an orphan, then certifies, revokes and reduces scope by clicking the
buttons the stand-in recorded. The worker revokes in OpenBao through the
connector, the ticket worker opens and closes issues in the Jira stand-in,
a signed `project.closed` event deprovisions a project's secret-ids, and
`steward audit verify` accepts the trail.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from bot.actions import Action
from bot.app import build_bot
from bot.context import Bot
from bot.local_api import Message, SlackApi
from bot.notifier import SlackNotifier
from bot.payloads import FORM, block_action_body, signed
from bot.server import BackgroundServer, StewardWsgi, create_server
from governance.app import Steward, create_app
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.campaign.models import Review, ReviewStatus
from governance.campaign.service import start_campaign
from governance.cli.main import cli
from governance.discovery.runner import discover_sources
from governance.identity.models import Identity
from governance.imports.entities import import_entities
from governance.imports.identities import import_identities
from governance.imports.people import import_people
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.runner import load_revokers, ticket_drainers
from governance.remediation.tickets import SharedTicketClient
from governance.remediation.worker import RemediationWorker
from governance.settings import Settings
from tests.bot.conftest import (
    ADMIN_ID,
    OWNER_ID,
    SIGNING_SECRET,
    RunningServer,
    post,
    slack_api,
)
from tests.bot.flows.support import TrackingExecutor, button, message_text
from tests.openbao import OpenBao, openbao, unique
from tests.support.jira_api import API_TOKEN, USER, JiraStandIn

__all__ = ["openbao", "slack_api"]

SOURCE = "bao"
SAAS_SOURCE = "saas-keys"
ADMIN_EMAIL = "security@example.com"
OWNER_EMAIL = "owner@example.com"
ADMIN = Actor.person(ADMIN_EMAIL)
WEBHOOK_SECRET = "9d4e1f7a2b6c8d0e3f5a7b9c1d2e4f6a"


@dataclass(frozen=True)
class Login:
    """A secret-id the test created, kept in memory to try logging in with it."""

    role_id: str
    secret_id: str
    accessor: str


@dataclass
class Fleet:
    """The seeded secret-ids by their part in the story."""

    mount: str
    role: str
    logins: dict[str, Login]


def _seed(openbao: OpenBao, mount: str) -> Fleet:
    """Create one standard AppRole with a secret-id per part of the story."""
    root = openbao.root
    policy = unique("payments-read")
    root.sys.create_or_update_acl_policy(
        policy, 'path "secret/data/payments/*" { capabilities = ["read"] }'
    )
    role = "payments"
    root.auth.approle.create_or_update_approle(
        role, token_policies=[policy], token_ttl="10m", mount_point=mount
    )
    role_id = root.auth.approle.read_role_id(role, mount_point=mount)["data"]["role_id"]
    parts: dict[str, dict[str, str]] = {
        "certify": {"owner": OWNER_EMAIL, "application": "payments"},
        "revoke": {"owner": OWNER_EMAIL, "application": "payments"},
        "reduce": {"owner": OWNER_EMAIL, "application": "payments"},
        "orphan": {"application": "payments"},
        "apollo-1": {"owner": ADMIN_EMAIL, "project": "apollo"},
        "apollo-2": {"owner": ADMIN_EMAIL, "project": "apollo"},
    }
    logins: dict[str, Login] = {}
    for part, metadata in parts.items():
        data = root.auth.approle.generate_secret_id(
            role, metadata={**metadata, "purpose": part}, mount_point=mount
        )["data"]
        logins[part] = Login(role_id, data["secret_id"], data["secret_id_accessor"])
    return Fleet(mount=mount, role=role, logins=logins)


def _can_log_in(openbao: OpenBao, mount: str, login: Login) -> bool:
    client = hvac.Client(url=openbao.url)
    try:
        client.auth.approle.login(
            login.role_id, login.secret_id, use_token=False, mount_point=mount
        )
    except hvac.exceptions.VaultError:
        return False
    return True


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _exports(directory: Path) -> tuple[Path, Path, Path]:
    people = _write_csv(
        directory / "people.csv",
        ["email", "display_name", "slack_user_id", "manager_email", "active"],
        [
            [ADMIN_EMAIL, "Sam Security", ADMIN_ID, "", "yes"],
            [OWNER_EMAIL, "Olive Owner", OWNER_ID, "", "yes"],
        ],
    )
    entities = _write_csv(
        directory / "entities.csv",
        ["type", "key", "name", "status", "owner_email"],
        [
            ["application", "payments", "Payments", "active", OWNER_EMAIL],
            ["project", "apollo", "Apollo", "active", ADMIN_EMAIL],
        ],
    )
    saas = _write_csv(
        directory / "saas.csv",
        ["kind", "external_id", "name", "owner_email", "application", "last_used"],
        [
            [
                "api_key",
                "stripe-0001",
                "payments Stripe key",
                OWNER_EMAIL,
                "payments",
                "never",
            ],
            ["api_key", "datadog-0002", "Datadog key", "", "", "2026-01-05"],
        ],
    )
    return people, entities, saas


@pytest.fixture
def loop_settings(
    database_url: str, slack_api: SlackApi, openbao: OpenBao
) -> Iterator[tuple[Settings, Fleet, JiraStandIn]]:
    mount = unique("loop")
    with openbao.scratch_mounts(approle=mount), JiraStandIn() as jira:
        fleet = _seed(openbao, mount)
        login = openbao.steward_login(approle_mount=mount)
        settings = Settings(
            database_url=database_url,
            security={"admins": [ADMIN_EMAIL]},  # type: ignore[arg-type]
            slack={  # type: ignore[arg-type]
                "bot_token": "xoxb-test-token",
                "signing_secret": SIGNING_SECRET,
                "api_url": slack_api.url,
                "security_channel": "C0SECURITY",
                "orphan_channel": "C0ORPHANS",
                "timeout_seconds": 5,
            },
            jira={
                "url": jira.url,
                "user": USER,
                "api_token": API_TOKEN,
                "project": "SEC",
                "timeout_seconds": 5.0,
            },
            webhook={"secret": WEBHOOK_SECRET, "mode": "timestamp"},
            connectors={
                SOURCE: {
                    "type": "vault",
                    **login,
                    "discover_tokens": False,
                    "discover_kv": False,
                    "approle_mounts": [mount],
                }
            },
        )
        yield settings, fleet, jira


class Loop:
    """The running parts: Steward, the bot behind HTTP and the outbox workers."""

    def __init__(self, steward: Steward, bot: Bot, server: RunningServer) -> None:
        self.steward = steward
        self.bot = bot
        self.server = server
        self.listeners: TrackingExecutor | None = None
        self.connectors, revokers = load_revokers(steward)
        self.tickets = SharedTicketClient(steward.settings.jira)
        self.drainers: list[Any] = [
            RemediationWorker(steward, revokers, worker_id="loop"),
            *ticket_drainers(steward, self.tickets, worker_id="loop"),
            SlackNotifier(steward, bot.client, bot.directory, worker_id="loop"),
        ]

    def drain(self) -> None:
        """Run each outbox worker until none finds anything due."""
        for _ in range(20):
            if sum(drainer.run_once().taken for drainer in self.drainers) == 0:
                return
        raise AssertionError("the outbox did not settle")

    def click(
        self,
        slack_api: SlackApi,
        message: Message,
        *,
        user: str,
        action: str,
        value: str,
    ) -> None:
        body = block_action_body(
            user_id=user,
            action_id=action,
            value=value,
            channel_id=message.channel,
            message_ts=message.ts,
            message={"type": "message", "ts": message.ts, "blocks": message.blocks},
            response_url=slack_api.response_url,
        )
        answer = self.server.send(signed(SIGNING_SECRET, body, FORM))
        assert answer.status == 200, answer.body
        assert self.listeners is not None
        self.listeners.settle()

    def close(self) -> None:
        self.tickets.close()
        for connector in self.connectors.values():
            connector.close()


@pytest.fixture
def loop(
    loop_settings: tuple[Settings, Fleet, JiraStandIn],
) -> Iterator[Loop]:
    settings = loop_settings[0]
    steward = create_app(settings)
    listeners = TrackingExecutor()
    bot = build_bot(steward, listener_executor=listeners)
    http = BackgroundServer(
        create_server(
            StewardWsgi(steward, bot=bot),
            host="127.0.0.1",
            port=0,
            threads=4,
            max_body_bytes=1_048_576,
        )
    )
    http.start()
    running = Loop(steward, bot, RunningServer(f"http://127.0.0.1:{http.port}"))
    running.listeners = listeners
    try:
        yield running
    finally:
        running.close()
        http.stop(grace_seconds=5)
        listeners.shutdown(wait=True)
        steward.close()


def _identity(session: Session, external_id: str) -> Identity:
    return session.scalars(
        sa.select(Identity).where(Identity.external_id == external_id)
    ).one()


def _posts_with(slack_api: SlackApi, channel: str, action: str, value: str) -> Message:
    found = [
        message
        for message in slack_api.messages
        if message.channel == channel
        and any(
            element.get("action_id") == action and element.get("value") == value
            for block in message.blocks
            for element in [
                *(block.get("elements") or []),
                block.get("accessory") or {},
            ]
        )
    ]
    assert len(found) == 1, [message.text for message in found]
    return found[0]


def _project_closed(loop: Loop, event_id: str) -> Any:
    body = json.dumps(
        {
            "event_id": event_id,
            "type": "project.closed",
            "entity_key": "apollo",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "actor": "change.manager@example.com",
        }
    ).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(
        WEBHOOK_SECRET.encode(), b"v1:" + stamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    return post(
        loop.server.url + "/events/lifecycle",
        body,
        {
            "Content-Type": "application/json",
            "X-Steward-Timestamp": stamp,
            "X-Steward-Signature": "v1=" + digest,
        },
    )


def test_full_loop(
    loop: Loop,
    loop_settings: tuple[Settings, Fleet, JiraStandIn],
    slack_api: SlackApi,
    openbao: OpenBao,
    tmp_path: Path,
) -> None:
    _, fleet, jira = loop_settings
    steward = loop.steward
    logins = fleet.logins
    people_csv, entities_csv, saas_csv = _exports(tmp_path)

    # Inventory: people and entities, the vault connector, the CSV export.
    assert import_people(steward, people_csv, actor=ADMIN).created == 2
    assert import_entities(steward, entities_csv, actor=ADMIN).created == 2
    outcomes = discover_sources(steward, actor=ADMIN)
    assert [(o.source, o.error) for o in outcomes] == [(SOURCE, None)]
    saas = import_identities(steward, saas_csv, source=SAAS_SOURCE, actor=ADMIN)
    assert saas.reconcile.seen == 2
    with steward.session() as session:
        certify = _identity(session, logins["certify"].accessor)
        orphan = _identity(session, logins["orphan"].accessor)
        stripe = _identity(session, "stripe-0001")
        assert certify.owner is not None
        assert certify.owner.email == OWNER_EMAIL
        assert stripe.owner is not None
        assert stripe.owner.email == OWNER_EMAIL
        assert orphan.owner is None
        assert orphan.state is IdentityState.ORPHANED
        assert _identity(session, "datadog-0002").owner is None
        orphan_id = orphan.id

    # A campaign: review requests to the owner, claim requests to the channel.
    with steward.session() as session:
        campaign = start_campaign(
            session, actor=ADMIN, settings=steward.settings, due_within_days=365
        )
        campaign_id = campaign.id
    loop.drain()
    orphan_post = _posts_with(
        slack_api, "C0ORPHANS", Action.ORPHAN_CLAIM, str(orphan_id)
    )
    assert logins["orphan"].accessor[:8] in message_text(orphan_post)

    # The owner claims the orphan from its post.
    loop.click(
        slack_api,
        orphan_post,
        user=OWNER_ID,
        action=Action.ORPHAN_CLAIM,
        value=str(orphan_id),
    )
    with steward.session() as session:
        claimed = session.get(Identity, orphan_id)
        assert claimed is not None
        assert claimed.owner is not None
        assert claimed.owner.email == OWNER_EMAIL
        assert claimed.state is not IdentityState.ORPHANED

    # Each review of the owner is in a direct message with its evidence.
    reviews: dict[str, int] = {}
    with steward.session() as session:
        for part in ("certify", "revoke", "reduce"):
            identity = _identity(session, logins[part].accessor)
            reviews[part] = session.scalars(
                sa.select(Review.id).where(
                    Review.campaign_id == campaign_id,
                    Review.identity_id == identity.id,
                )
            ).one()
    dm = slack_api.dm_channel(OWNER_ID)
    for part, review_id in reviews.items():
        message = _posts_with(slack_api, dm, Action.REVIEW_REVOKE, str(review_id))
        text = message_text(message)
        assert logins[part].accessor[:8] in text
        assert "payments" in text

    decisions = {
        "certify": Action.REVIEW_CERTIFY,
        "revoke": Action.REVIEW_REVOKE,
        "reduce": Action.REVIEW_REDUCE_SCOPE,
    }
    for part, action in decisions.items():
        message = _posts_with(slack_api, dm, action, str(reviews[part]))
        pressed = button(message, action, str(reviews[part]))
        loop.click(
            slack_api,
            message,
            user=OWNER_ID,
            action=pressed["action_id"],
            value=pressed["value"],
        )
    with steward.session() as session:
        decided = {
            part: session.get(Review, review_id) for part, review_id in reviews.items()
        }
        assert {p: r.status for p, r in decided.items() if r} == {
            "certify": ReviewStatus.DECIDED,
            "revoke": ReviewStatus.DECIDED,
            "reduce": ReviewStatus.DECIDED,
        }
        assert all(
            r is not None and r.decided_by == OWNER_EMAIL for r in decided.values()
        )

    # The worker revokes in OpenBao, and the certified secret-id still logs in.
    assert _can_log_in(openbao, fleet.mount, logins["revoke"])
    loop.drain()
    assert not _can_log_in(openbao, fleet.mount, logins["revoke"])
    assert _can_log_in(openbao, fleet.mount, logins["certify"])
    assert _can_log_in(openbao, fleet.mount, logins["reduce"])
    with steward.session() as session:
        assert _identity(session, logins["revoke"].accessor).state is (
            IdentityState.REVOKED
        )
        revocation = session.scalars(
            sa.select(Remediation).where(
                Remediation.kind == RemediationKind.REVOKE,
                Remediation.identity_id
                == _identity(session, logins["revoke"].accessor).id,
            )
        ).one()
        assert revocation.status is RemediationStatus.SUCCEEDED
        revocation_ticket = revocation.ticket_key

    # Each revocation and scope reduction has a Jira issue. The revocation's is done.
    issues = {issue.key: issue for issue in jira.issues.values()}
    assert len(issues) == 2
    assert revocation_ticket in issues
    assert issues[revocation_ticket].status == "Done"
    assert any(
        issue.status != "Done" and issue.key != revocation_ticket
        for issue in issues.values()
    )
    assert all(logins["revoke"].secret_id not in body for body in jira.bodies())

    # The ITSM closes the project: its secret-ids are revoked at the source.
    answer = _project_closed(loop, "CHG-LOOP-1")
    assert answer.status in {200, 202}, answer.body
    loop.drain()
    for part in ("apollo-1", "apollo-2"):
        assert not _can_log_in(openbao, fleet.mount, logins[part])
    assert _can_log_in(openbao, fleet.mount, logins["certify"])
    with steward.session() as session:
        states = {
            _identity(session, logins[part].accessor).state
            for part in ("apollo-1", "apollo-2")
        }
        assert states == {IdentityState.REVOKED}
        assert len(jira.issues) == 4

    # The trail verifies with the CLI against the same database.
    result = CliRunner().invoke(
        cli,
        ["audit", "verify"],
        env={"STEWARD_DATABASE_URL": steward.settings.database_url},
    )
    assert result.exit_code == 0, result.output
    with steward.session() as session:
        actions = set(session.scalars(sa.select(AuditEvent.action)))
    assert {
        "claim.approved",
        "review.decided",
        "identity.certified",
        "identity.revoked",
        "event.received",
        "lifecycle.deprovision",
    } <= actions
