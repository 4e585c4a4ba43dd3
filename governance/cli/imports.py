"""`steward import`: people, business entities and identity exports."""

from __future__ import annotations

from pathlib import Path

import click

from governance.cli.context import CliContext, pass_context
from governance.imports.entities import import_entities
from governance.imports.identities import import_identities
from governance.imports.people import import_people

file_argument = click.argument(
    "path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
skip_option = click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows and write the rejected ones to --rejects.",
)
rejects_option = click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File for rejected rows and their reasons (default FILE.rejected.csv).",
)
actor_option = click.option(
    "--actor", help="Email of the person importing; default STEWARD_ACTOR."
)


def _progress(phase: str, count: int) -> None:
    click.echo(f"{phase} {count:,} rows", err=True)


@click.group("import")
def import_group() -> None:
    """Import people, business entities and identities from CSV files."""


@import_group.command("people")
@file_argument
@click.option(
    "--confirm",
    is_flag=True,
    help="Allow deactivating more than guards.max_deactivation_share of people.",
)
@skip_option
@rejects_option
@actor_option
@pass_context
def people(
    state: CliContext,
    path: Path,
    confirm: bool,
    skip_invalid: bool,
    rejects: Path | None,
    actor: str | None,
) -> None:
    """Import people: email, display_name, slack_user_id, manager_email, active."""
    result = import_people(
        state.app,
        path,
        actor=state.actor(actor),
        skip_invalid=skip_invalid,
        rejects_path=rejects,
        confirm=confirm,
        progress=_progress,
    )
    click.echo(
        f"people: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.deactivated} deactivated, "
        f"{result.rejected} rejected"
    )
    for departure in result.departures:
        click.echo(
            f"  departure: {departure.inherited} identities to backup owners, "
            f"{departure.orphaned} orphaned, "
            f"{departure.reviews_reassigned + departure.reviews_to_security} reviews "
            "reassigned"
        )


@import_group.command("entities")
@file_argument
@skip_option
@rejects_option
@actor_option
@pass_context
def entities(
    state: CliContext,
    path: Path,
    skip_invalid: bool,
    rejects: Path | None,
    actor: str | None,
) -> None:
    """Import business entities: type, key, name, status, owner_email."""
    result = import_entities(
        state.app,
        path,
        actor=state.actor(actor),
        skip_invalid=skip_invalid,
        rejects_path=rejects,
        progress=_progress,
    )
    click.echo(
        f"entities: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.rejected} rejected"
    )


@import_group.command("csv")
@file_argument
@click.option(
    "--source", required=True, help="Name of the source the file is a snapshot of."
)
@click.option(
    "--confirm",
    is_flag=True,
    help="Allow the import to mark more than guards.max_gone_share of the source gone.",
)
@skip_option
@rejects_option
@actor_option
@pass_context
def csv_identities(
    state: CliContext,
    path: Path,
    source: str,
    confirm: bool,
    skip_invalid: bool,
    rejects: Path | None,
    actor: str | None,
) -> None:
    """Import identities from an export of SaaS keys, OAuth grants or accounts."""
    result = import_identities(
        state.app,
        path,
        source=source,
        actor=state.actor(actor),
        skip_invalid=skip_invalid,
        rejects_path=rejects,
        confirm=confirm,
        progress=_progress,
    )
    counts = result.reconcile
    click.echo(
        f"{source}: {counts.seen} in file, {counts.new} new, {counts.changed} changed, "
        f"{counts.unchanged} unchanged, {counts.gone} gone, {result.rejected} rejected"
    )
    if result.rejects_path is not None:
        click.echo(f"rejected rows written to {result.rejects_path}")
    if counts.unknown_entities:
        click.echo(f"unknown business entities: {len(counts.unknown_entities)}")
