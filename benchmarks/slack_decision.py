"""Benchmark: time from a signed decision click to Slack's acknowledgement.

Seeds a database with N identities (bulk inserts straight into the tables,
not timed), an open campaign whose first reviews are pending for one owner,
and as many audit events as identities. The owner's review request is
rendered and posted to the loopback Web API stand-in and recorded as
`sent_message` rows, as the delivery worker would. Then the production bot
(`build_bot`, `StewardWsgi`, waitress) serves on 127.0.0.1. The script sends
signed `block_actions` requests over one keep-alive HTTP connection: one
Certify click per distinct pending review, each followed by a click on a
no-op button that the same Bolt app acknowledges at once. The time measured
is from sending a request to reading the complete HTTP response, which Bolt
writes when the listener calls `ack()`. A decision's listener commits the
decision before it acknowledges, and edits the message after.

    .venv/bin/python benchmarks/slack_decision.py --identities 1000000 --clicks 500
    .venv/bin/python benchmarks/slack_decision.py --postgres  # scratch database
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from slack_bolt import Ack
from sqlalchemy.engine import URL, make_url

import bot.messages.catalog  # noqa: F401 - registers the renderers
from bot.actions import Action
from bot.app import build_bot
from bot.context import Bot
from bot.local_api import SlackApi, running_slack_api
from bot.messages import RenderRequest, spec_for
from bot.payloads import FORM, block_action_body, signed
from bot.server import StewardWsgi, create_server
from governance.app import Steward, create_app
from governance.audit.models import AuditEvent
from governance.campaign.models import Campaign, CampaignStatus, Review, ReviewStatus
from governance.clock import utcnow
from governance.database import migrate
from governance.database.engine import create_database_engine
from governance.delivery.models import SentMessage
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.settings import Settings

# Signs requests to the loopback server that this script starts and stops.
SIGNING_SECRET = "bench-signing-secret"  # noqa: S105
OWNER_ID = "U0OWNER"
OWNER_EMAIL = "owner@example.com"
NOOP_ACTION = "bench_noop"
SEED_CHUNK = 10_000
WARM_UP = 20
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


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


# Seeding, not measured


def insert_chunks(
    app: Steward, table: Any, count: int, row: Callable[[int], dict[str, Any]]
) -> None:
    for start in range(0, count, SEED_CHUNK):
        rows = [row(number) for number in range(start, min(start + SEED_CHUNK, count))]
        with app.session() as session:
            session.execute(sa.insert(cast(sa.Table, table)), rows)


def seed(app: Steward, identities: int, pending: int) -> int:
    """Seed identities, audit events and a campaign; return the campaign id.

    The first `pending` identities are under review by the owner. The audit
    events have unique placeholder hashes, so the chain does not verify, but
    the table is as large as a real one would be.
    """
    now = utcnow()
    due = now - timedelta(days=1)
    with app.session() as session:
        owner = Person(
            email=OWNER_EMAIL,
            display_name="Olive Owner",
            slack_user_id=OWNER_ID,
            time_zone="Europe/Paris",
        )
        session.add(owner)
        session.flush()
        owner_id = owner.id

    def identity(number: int) -> dict[str, Any]:
        return {
            "source": "bench",
            "kind": "api_key",
            "external_id": f"key-{number:08d}",
            "name": f"integration {number}",
            "description": "",
            "tier": RiskTier.STANDARD,
            "tier_reason": "",
            "detected_tier": RiskTier.STANDARD,
            "detected_tier_reason": "",
            "scope_summary": "read:reports",
            "managed": False,
            "never_used": False,
            "state": IdentityState.UNDER_REVIEW
            if number < pending
            else IdentityState.OWNED,
            "state_changed_at": now,
            "owner_id": owner_id,
            "first_seen_at": now,
            "last_seen_at": now,
            "review_due_at": due if number < pending else now + timedelta(days=300),
            "created_at": due,
            "last_used_at": due,
            "attributes": {},
            "fingerprint": "",
            "updated_at": now,
        }

    insert_chunks(app, Identity.__table__, identities, identity)

    def event(number: int) -> dict[str, Any]:
        digest = hashlib.sha256(str(number).encode()).hexdigest()
        return {
            "seq": number + 1,
            "occurred_at": now,
            "actor": "system:seed",
            "actor_type": "system",
            "action": "identity.discovered",
            "object_type": "identity",
            "object_id": str(number + 1),
            "before_state": None,
            "after_state": "owned",
            "reason": "",
            "details": {},
            "prev_hash": "0" * 64,
            "hash": digest,
        }

    insert_chunks(app, AuditEvent.__table__, identities, event)

    with app.session() as session:
        campaign = Campaign(
            name="benchmark",
            status=CampaignStatus.OPEN,
            opened_by="bench@example.com",
            opened_at=now,
            due_at=now + timedelta(days=14),
        )
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
        identity_ids = session.scalars(
            sa.select(Identity.id).order_by(Identity.id).limit(pending)
        ).all()
    reviews = [
        {
            "campaign_id": campaign_id,
            "identity_id": identity_id,
            "open_identity_id": identity_id,
            "reviewer_id": owner_id,
            "status": ReviewStatus.PENDING,
            "due_at": now + timedelta(days=14),
            "evidence": {},
            "reminder_count": 0,
            "escalation_level": 0,
            "created_at": now,
        }
        for identity_id in identity_ids
    ]
    with app.session() as session:
        session.execute(sa.insert(cast(sa.Table, Review.__table__)), reviews)
    return campaign_id


def post_review_request(bot: Bot, campaign_id: int) -> list[tuple[str, str, int]]:
    """Post the owner's review pages; return (channel, ts, review id) per review."""
    spec = spec_for("review_request")
    if spec is None:
        raise SystemExit("no renderer registered for review_request")
    clickable: list[tuple[str, str, int]] = []
    with bot.steward.session() as session:
        owner = session.scalars(
            sa.select(Person).where(Person.email == OWNER_EMAIL)
        ).one()
        request = RenderRequest(
            remediation_id=0,
            template="review_request",
            context={"campaign_id": campaign_id, "reviewer_id": owner.id},
            recipient=owner,
            time_zone=owner.time_zone,
        )
        for page in spec.render(session, request):
            answer = bot.client.chat_postMessage(
                channel=OWNER_ID, text=page.text, blocks=page.blocks
            )
            channel, ts = str(answer["channel"]), str(answer["ts"])
            session.add(
                SentMessage(
                    key=str(page.key),
                    template="review_request",
                    channel=channel,
                    message_ref=ts,
                    items=page.items,
                )
            )
            clickable.extend(
                (channel, ts, review_id) for review_id in page.items["reviews"]
            )
    return clickable


# Measuring


def register_noop(bot: Bot) -> None:
    @bot.bolt.action(NOOP_ACTION)
    def noop(ack: Ack) -> None:
        ack()


def click_body(action: str, value: str, channel: str, ts: str, api: SlackApi) -> str:
    return block_action_body(
        user_id=OWNER_ID,
        action_id=action,
        value=value,
        channel_id=channel,
        message_ts=ts,
        response_url=api.response_url,
    )


def timed_post(connection: http.client.HTTPConnection, body: str) -> float:
    request = signed(SIGNING_SECRET, body, FORM)
    started = time.perf_counter()
    connection.request(
        "POST", "/slack/events", body=request.body.encode(), headers=request.headers
    )
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"request failed with HTTP {response.status}")
    return elapsed


def wait_for_edits(api: SlackApi, expected: int, timeout: float = 60) -> None:
    """Wait until the listeners have edited a message once per decision."""
    deadline = time.monotonic() + timeout
    while len(api.calls_to("chat.update")) < expected:
        if time.monotonic() > deadline:
            raise SystemExit("the listeners did not edit every clicked message")
        time.sleep(0.1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def summary(name: str, seconds: list[float]) -> str:
    millis = [value * 1000 for value in seconds]
    return (
        f"| {name:<18} | {len(millis):>6} | {statistics.median(millis):>7.1f} | "
        f"{percentile(millis, 0.90):>7.1f} | {percentile(millis, 0.99):>7.1f} | "
        f"{max(millis):>7.1f} |"
    )


def run(url: str, identities: int, clicks: int, threads: int) -> None:
    with running_slack_api() as api:
        api.add_user(OWNER_ID, OWNER_EMAIL, name="Olive Owner", tz="Europe/Paris")
        settings = Settings(
            database_url=url,
            slack={  # type: ignore[arg-type]
                "bot_token": "xoxb-bench",
                "signing_secret": SIGNING_SECRET,
                "api_url": api.url,
                "timeout_seconds": 5,
            },
        )
        app = create_app(settings)
        started = time.perf_counter()
        campaign_id = seed(app, identities, clicks + WARM_UP)
        print(
            f"seeded {identities:,} identities in {time.perf_counter() - started:.1f} s"
        )
        bot = build_bot(app, extra=[register_noop])
        targets = post_review_request(bot, campaign_id)
        server = create_server(
            StewardWsgi(app, bot=bot),
            host="127.0.0.1",
            port=0,
            threads=threads,
            max_body_bytes=1_048_576,
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        connection = http.client.HTTPConnection(
            "127.0.0.1", server.effective_port, timeout=30
        )
        decisions: list[float] = []
        noops: list[float] = []
        load_before = os.getloadavg()
        try:
            for number, (channel, ts, review_id) in enumerate(targets):
                decision = timed_post(
                    connection,
                    click_body(Action.REVIEW_CERTIFY, str(review_id), channel, ts, api),
                )
                noop = timed_post(
                    connection, click_body(NOOP_ACTION, "0", channel, ts, api)
                )
                if number >= WARM_UP:
                    decisions.append(decision)
                    noops.append(noop)
            wait_for_edits(api, len(targets))
        finally:
            load_after = os.getloadavg()
            connection.close()
            # Closing from the server's loop thread avoids racing its select().
            server.trigger.pull_trigger(server.close)
            thread.join(timeout=5)
        with app.session() as session:
            decided = session.scalar(
                sa.select(sa.func.count())
                .select_from(Review)
                .where(Review.status == ReviewStatus.DECIDED)
            )
        app.close()
    if decided != len(targets):
        raise SystemExit(f"{decided} of {len(targets)} reviews were decided")
    edits = len(api.calls_to("chat.update"))
    print(f"{decided} reviews decided, {edits} messages edited")
    print(f"load average before: {load_before}, after: {load_after}")
    print("| request            | clicks | p50 ms  | p90 ms  | p99 ms  | max ms  |")
    print("|--------------------|--------|---------|---------|---------|---------|")
    print(summary("decision (Certify)", decisions))
    print(summary("no-op listener", noops))


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs (nproc), {model}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--clicks", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument(
        "--postgres", action="store_true", help="use a scratch PostgreSQL database"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("STEWARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create the scratch database on",
    )
    args = parser.parse_args()
    print(machine())
    database = (
        postgres_database(make_url(args.postgres_url))
        if args.postgres
        else sqlite_database()
    )
    with database as url:
        print(f"backend: {make_url(url).get_backend_name()}")
        run(url, args.identities, args.clicks, args.threads)


if __name__ == "__main__":
    main()
