"""Entry point of the `steward` command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from bot.cli import serve
from connectors.errors import ConnectorError
from governance.cli.audit import audit
from governance.cli.campaigns import campaign, review
from governance.cli.context import CliContext
from governance.cli.db import db
from governance.cli.discover import discover, health
from governance.cli.events import event
from governance.cli.imports import import_group
from governance.cli.inspect import config, nhi
from governance.cli.jira import jira
from governance.cli.ownership import claim, owner
from governance.cli.remediations import remediation, worker
from governance.cli.report import report
from governance.errors import ConfigurationError, StewardError
from quickstart.cli import quickstart

logger = logging.getLogger(__name__)

# Exit status for an error the user can fix (bad input, unknown object).
EXIT_USAGE = 2
# Exit status when an external system failed.
EXIT_FAILURE = 3


class StewardGroup(click.Group):
    """Turns Steward's own errors into one line on standard error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as error:
            click.echo(f"configuration error:\n{error}", err=True)
            ctx.exit(EXIT_USAGE)
        except StewardError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(EXIT_USAGE)
        except sa.exc.OperationalError as error:
            # The driver's message names the host and database, never the password.
            detail = str(error.orig).strip().splitlines()[0] if error.orig else "failed"
            click.echo(f"database error: {detail}", err=True)
            ctx.exit(EXIT_FAILURE)
        except ConnectorError as error:
            source = f" ({error.connector})" if error.connector else ""
            click.echo(f"connector error{source}: {error}", err=True)
            ctx.exit(EXIT_FAILURE)


@click.group(cls=StewardGroup)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="STEWARD_CONFIG_FILE",
    help="TOML config file; environment variables override its values.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Steward: governance for non-human identities."""
    state = CliContext(config_file=config_file)
    ctx.obj = state
    ctx.call_on_close(state.close)


cli.add_command(db)
cli.add_command(config)
cli.add_command(nhi)
cli.add_command(audit)
cli.add_command(discover)
cli.add_command(health)
cli.add_command(import_group)
cli.add_command(owner)
cli.add_command(claim)
cli.add_command(event)
cli.add_command(report)
cli.add_command(campaign)
cli.add_command(review)
cli.add_command(remediation)
cli.add_command(worker)
cli.add_command(quickstart)
cli.add_command(jira)
cli.add_command(serve)


def main() -> None:
    cli(prog_name="steward")
