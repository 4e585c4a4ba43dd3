"""`steward serve`: the bot's process, with health, readiness and metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from bot.app import build_bot
from bot.drainers import slack_drainers
from bot.service import (
    Background,
    Service,
    check_slack_credentials,
    run_until_signalled,
)
from governance.app import Steward
from governance.cli.context import CliContext, pass_context
from governance.remediation.runner import default_worker_id, ticket_drainers
from governance.remediation.tickets import SharedTicketClient
from governance.scheduler.process import RunningScheduler, start_in_process

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

# Exit status when the server stopped without being asked to.
EXIT_STOPPED = 1

# Extension points of `steward serve`. Each route factory returns a path and
# the WSGI application mounted there, beside Slack's and the health routes.
# Each background factory returns work run in this process, started after the
# HTTP server and stopped before it.
ROUTE_FACTORIES: list[Callable[[Steward], tuple[str, WSGIApplication]]] = []


def in_process_scheduler(steward: Steward) -> Background | None:
    """Return the scheduled jobs and the outbox as work beside the server.

    Only on SQLite, the single-process default: there `steward serve` is the
    whole deployment. On PostgreSQL the jobs belong to `steward worker`, so
    that several serve replicas do not each compete for the lease.
    """
    if steward.engine.dialect.name != "sqlite":
        return None
    worker_id = default_worker_id()
    ticket_clients = SharedTicketClient(steward.settings.jira)
    running: list[RunningScheduler] = []

    def start() -> None:
        drainers = [
            *ticket_drainers(steward, ticket_clients, worker_id=worker_id),
            *slack_drainers(steward, worker_id=worker_id),
        ]
        running.append(
            start_in_process(steward, holder_id=worker_id, drainers=drainers)
        )

    def stop() -> None:
        while running:
            running.pop().stop()
        ticket_clients.close()

    return Background("scheduler", start, stop)


BACKGROUND_FACTORIES: list[Callable[[Steward], Background | None]] = [
    in_process_scheduler
]


def build_service(steward: Steward) -> Service:
    """Build the bot and the service, with every registered route and task."""
    bot = build_bot(steward)
    routes = dict(factory(steward) for factory in ROUTE_FACTORIES)
    background = [
        task
        for task in (factory(steward) for factory in BACKGROUND_FACTORIES)
        if task is not None
    ]
    return Service(steward, bot, routes=routes, background=background)


@click.command()
@pass_context
@click.pass_context
def serve(ctx: click.Context, state: CliContext) -> None:
    """Serve Slack, /healthz, /readyz and /metrics until SIGTERM or SIGINT.

    Slack's requests arrive over HTTP at /slack/events (server.host and
    server.port), or over Socket Mode when slack.app_token is set.
    """
    check_slack_credentials(state.settings.slack)
    service = build_service(state.app)
    if not run_until_signalled(service):
        ctx.exit(EXIT_STOPPED)
