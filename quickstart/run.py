"""The quickstart: Steward governing a real OpenBao, from scratch, in one command.

It starts a dev server on loopback, seeds a demo fleet, runs Steward's
pipeline on it (imports, discovery, owner linking, the departure of a
person, a certification campaign) and then runs the bot and the worker:
against the real workspace when Slack credentials are configured, otherwise
in console mode. Each run starts clean; quitting stops everything started.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import hvac
import hvac.exceptions

from bot.app import build_bot
from bot.console.chat import Console, ConsoleCommand
from bot.context import Bot
from bot.local_api import SlackApi
from bot.notifier import SlackNotifier
from bot.server import StewardWsgi, create_server
from connectors.registry import build_connectors
from governance.app import Steward, create_app
from governance.audit.service import Actor
from governance.campaign.service import start_campaign
from governance.database import migrate
from governance.discovery.runner import discover_sources, selected_instances
from governance.identity.service import find_identity
from governance.imports.entities import import_entities
from governance.imports.identities import import_identities
from governance.imports.people import import_people
from governance.ownership.service import assign_owner
from governance.remediation.worker import RemediationWorker
from governance.report.service import build_report
from governance.settings import load_settings
from quickstart.fleet import (
    GUEST,
    PEOPLE,
    SECURITY_EMAIL,
    DemoCredential,
    Fleet,
    build_fleet,
    email,
    role_owners,
)
from quickstart.openbao import DevServer, start_dev_server

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parent.parent
POLICY_FILE = REPOSITORY / "deploy" / "vault" / "steward-policy.hcl"
SOURCE = "openbao"
SAAS_SOURCE = "saas-keys"
SECURITY_CHANNEL = "C0SECURITY"
ORPHAN_CHANNEL = "C0ORPHANS"


@dataclass
class Demo:
    """Everything the quickstart started, to use and then to stop."""

    directory: Path
    openbao: DevServer
    steward: Steward
    fleet: Fleet
    actor: Actor
    slack_api: SlackApi | None = None
    bot: Bot | None = None
    signing_secret: str = ""

    def stop(self) -> None:
        self.steward.close()
        if self.slack_api is not None:
            self.slack_api.stop()
        self.openbao.stop()


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def _log_to_file(path: Path, *, console: bool) -> None:
    """Send the logs to a file, so that the console shows only the chat."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler] if console else [handler, logging.StreamHandler()]
    root.setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _steward_login(root: hvac.Client) -> dict[str, Any]:
    """Create Steward's own AppRole, bound to the repository's policy."""
    root.sys.create_or_update_acl_policy("steward", POLICY_FILE.read_text("utf-8"))
    root.auth.approle.create_or_update_approle(
        "steward",
        token_policies=["steward"],
        token_ttl="1h",  # noqa: S106
    )
    role_id = root.auth.approle.read_role_id("steward")["data"]["role_id"]
    secret = root.auth.approle.generate_secret_id("steward")["data"]["secret_id"]
    return {"role_id": role_id, "secret_id": secret}


def prepare(directory: Path, out: TextIO, *, console: bool) -> Demo:
    """Start OpenBao, seed the fleet and run Steward's pipeline once."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    _log_to_file(directory / "steward.log", console=console)
    _say(out, f"Starting an OpenBao dev server (files in {directory}) ...")
    openbao = start_dev_server(directory / "openbao")
    # The root token is printed on purpose: this dev server keeps only demo
    # data, in memory, and stops with the quickstart.
    _say(
        out,
        f"OpenBao is listening on {openbao.url}. To look at it with the bao CLI:\n"
        f"  export BAO_ADDR={openbao.url} BAO_TOKEN={openbao.root_token}",
    )
    try:
        root = hvac.Client(url=openbao.url, token=openbao.root_token)
        fleet = build_fleet(directory / "exports", root)
        _say(
            out,
            f"Seeded OpenBao with {fleet.vault_identities} NHIs (AppRoles, "
            f"secret-ids, tokens, KV entries); wrote {fleet.saas_identities} SaaS "
            "keys and OAuth grants to a CSV export.",
        )
        login = _steward_login(root)
        signing_secret = secrets.token_hex(16)
        slack_overrides: dict[str, Any] = {}
        slack_api: SlackApi | None = None
        if console:
            slack_api = _start_local_slack()
            slack_overrides = {
                "bot_token": "xoxb-console",
                "signing_secret": signing_secret,
                "api_url": slack_api.url,
                "security_channel": SECURITY_CHANNEL,
                "orphan_channel": ORPHAN_CHANNEL,
            }
        settings = load_settings(
            database_url=f"sqlite:///{directory / 'steward.db'}",
            security={"admins": [SECURITY_EMAIL]},
            connectors={
                SOURCE: {
                    "type": "vault",
                    "url": openbao.url,
                    "auth_method": "approle",
                    **login,
                }
            },
            **({"slack": slack_overrides} if slack_overrides else {}),  # type: ignore[arg-type]
        )
        steward = create_app(settings)
    except BaseException:
        openbao.stop()
        raise
    demo = Demo(
        directory=directory,
        openbao=openbao,
        steward=steward,
        fleet=fleet,
        actor=Actor.person(SECURITY_EMAIL),
        slack_api=slack_api,
        signing_secret=signing_secret,
    )
    try:
        _pipeline(demo, out)
    except BaseException:
        demo.stop()
        raise
    return demo


def _start_local_slack() -> SlackApi:
    api = SlackApi()
    for local, name, slack_id, _, zone in PEOPLE:
        api.add_user(slack_id, email(local), name=name, tz=zone)
    local, name, slack_id = GUEST
    api.add_user(slack_id, email(local), name=name, restricted=True)
    api.add_channel(SECURITY_CHANNEL)
    api.add_channel(ORPHAN_CHANNEL)
    api.start()
    return api


def _pipeline(demo: Demo, out: TextIO) -> None:
    steward, actor, fleet = demo.steward, demo.actor, demo.fleet
    migrate.upgrade(steward.engine)
    people = import_people(steward, fleet.people_csv, actor=actor)
    entities = import_entities(steward, fleet.entities_csv, actor=actor)
    _say(
        out,
        f"Imported {people.created} people and {entities.created} applications, "
        "projects and vendors.",
    )
    for outcome in discover_sources(steward, actor=actor):
        if outcome.result is None:
            raise RuntimeError(f"discovery of {outcome.source} failed: {outcome.error}")
        _say(out, f"Discovered {outcome.result.seen} NHIs in {outcome.source}.")
    roles = _assign_role_owners(steward, actor)
    _say(
        out,
        f"Assigned {roles} AppRole roles to their applications' owners, because "
        "roles carry no owner metadata.",
    )
    saas = import_identities(steward, fleet.saas_csv, source=SAAS_SOURCE, actor=actor)
    _say(
        out,
        f"Imported {saas.reconcile.seen} SaaS keys and grants that no vault manages.",
    )
    departed = import_people(steward, fleet.departures_csv, actor=actor)
    _say(
        out,
        f"The HR export now lists {departed.deactivated} departure: their NHIs "
        "went to a backup owner or became orphans.",
    )
    with steward.session() as session:
        campaign = start_campaign(
            session,
            actor=actor,
            settings=steward.settings,
            due_within_days=steward.settings.review.standard_interval_days,
            name="Quickstart certification",
        )
        campaign_id = campaign.id
    with steward.session() as session:
        report = build_report(session, steward.settings)
    ownership = report.ownership
    _say(
        out,
        f"Inventory: {report.inventory.live} live NHIs, "
        f"{ownership.with_active_owner} owned, {ownership.orphans} orphans. "
        f"Campaign {campaign_id} opened: every owner gets a direct message and "
        "orphans go to #nhi-orphans.",
    )


def _assign_role_owners(steward: Steward, actor: Actor) -> int:
    """Assign each seeded AppRole role to its application's owner; return how many."""
    owners = role_owners()
    with steward.session() as session:
        for role, owner in owners.items():
            identity = find_identity(session, f"{SOURCE}:auth/approle/role/{role}")
            assign_owner(
                session,
                identity,
                owner,
                actor=actor,
                reason="owner of the application the role serves",
            )
    return len(owners)


def pump(demo: Demo) -> Callable[[], None]:
    """Return a function that lets the worker and the notifier run until idle."""
    if demo.bot is None:
        raise RuntimeError("the bot must be built before the outbox is drained")
    connectors = build_connectors(selected_instances(demo.steward.settings))
    worker = RemediationWorker(demo.steward, connectors.get, worker_id="quickstart")
    notifier = SlackNotifier(
        demo.steward, demo.bot.client, demo.bot.directory, worker_id="quickstart"
    )

    def run() -> None:
        for _ in range(10):
            taken = notifier.run_once().taken + worker.run_once().taken
            if taken == 0:
                return

    return run


def login_command(demo: Demo, out: TextIO) -> ConsoleCommand:
    """Return the console's `login` command: try a seeded AppRole login."""

    def login(words: list[str]) -> None:
        if len(words) != 1:
            _say(out, "  usage: login ACCESSOR (a secret-id accessor from /nhi status)")
            return
        credential: DemoCredential | None = demo.fleet.credentials.get(words[0])
        if credential is None:
            _say(out, f"  no seeded secret-id has the accessor {words[0]}")
            return
        client = hvac.Client(url=demo.openbao.url)
        try:
            client.auth.approle.login(
                credential.role_id, credential.secret_id, use_token=False
            )
        except hvac.exceptions.VaultError as error:
            _say(out, f"  login with {credential.role} failed: {error}")
            return
        _say(out, f"  login with {credential.role} succeeded")

    return ConsoleCommand(
        usage="login ACCESSOR",
        description="log in to OpenBao with the seeded secret-id of this accessor",
        run=login,
    )


def run_console(demo: Demo, read_line: Callable[[], str | None], out: TextIO) -> None:
    """Run the console chat as the security admin until the user quits."""
    if demo.slack_api is None:
        raise RuntimeError("console mode needs the local Slack stand-in")
    demo.bot = build_bot(demo.steward)
    console = Console(
        demo.bot,
        demo.slack_api,
        signing_secret=demo.signing_secret,
        user_id="U0ADMIN",
        out=out,
        pump=pump(demo),
        commands={"login": login_command(demo, out)},
    )
    _say(
        out,
        "\nConsole mode: no Slack credentials are configured, so this terminal "
        "stands in for Slack.\nYou are security@example.com; `as "
        "olive.owner@example.com` acts as an owner.",
    )
    console.run(read_line)


def run_slack(demo: Demo, out: TextIO, stop: threading.Event) -> None:
    """Serve the real workspace and drain the outbox until `stop` is set."""
    demo.bot = build_bot(demo.steward)
    server_settings = demo.steward.settings.server
    http = create_server(
        StewardWsgi(demo.steward, bot=demo.bot),
        host=server_settings.host,
        port=server_settings.port,
        threads=server_settings.threads,
        max_body_bytes=server_settings.max_body_bytes,
    )
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    _say(
        out,
        f"Serving Slack requests on http://{server_settings.host}:"
        f"{http.effective_port}/slack/events. Press Ctrl-C to stop.",
    )
    drain = pump(demo)
    try:
        while not stop.wait(5):
            drain()
    finally:
        http.close()
        thread.join(timeout=10)
