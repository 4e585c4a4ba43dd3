"""`steward serve`: the bot's process, with health, readiness and metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from bot.app import build_bot
from bot.service import (
    Background,
    Service,
    check_slack_credentials,
    run_until_signalled,
)
from governance.app import Steward
from governance.cli.context import CliContext, pass_context

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

# Exit status when the server stopped without being asked to.
EXIT_STOPPED = 1

# Extension points of `steward serve`. Each route factory returns a path and
# the WSGI application mounted there, beside Slack's and the health routes.
# Each background factory returns work run in this process, started after the
# HTTP server and stopped before it.
ROUTE_FACTORIES: list[Callable[[Steward], tuple[str, WSGIApplication]]] = []
BACKGROUND_FACTORIES: list[Callable[[Steward], Background]] = []


def build_service(steward: Steward) -> Service:
    """Build the bot and the service, with every registered route and task."""
    bot = build_bot(steward)
    routes = dict(factory(steward) for factory in ROUTE_FACTORIES)
    background = [factory(steward) for factory in BACKGROUND_FACTORIES]
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
