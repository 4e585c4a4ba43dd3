"""`steward db`: schema migrations."""

from __future__ import annotations

import click

from governance.cli.context import CliContext, pass_context
from governance.database import migrate


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_context
def upgrade(state: CliContext, revision: str) -> None:
    """Migrate the database to the newest schema (or to --revision)."""
    engine = state.raw_app.engine
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    click.echo(f"database at revision {after} (was {before or 'empty'})")


@db.command()
@click.argument("revision")
@click.option(
    "--yes", is_flag=True, help="Confirm that data in dropped tables is lost."
)
@pass_context
def downgrade(state: CliContext, revision: str, yes: bool) -> None:
    """Migrate the database down to REVISION ("base" drops every table)."""
    if not yes:
        raise click.UsageError("downgrading can drop data: pass --yes to confirm")
    migrate.downgrade(state.raw_app.engine, revision)
    click.echo(f"database at revision {migrate.current_revision(state.raw_app.engine)}")


@db.command()
@pass_context
def current(state: CliContext) -> None:
    """Print the database's revision and whether it is the newest."""
    revision = migrate.current_revision(state.raw_app.engine)
    head = migrate.head_revision()
    status = "current" if revision == head else f"behind, newest is {head}"
    click.echo(f"{revision or 'empty'} ({status})")
