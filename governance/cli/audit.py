"""`steward audit`: verify and export the tamper-evident trail."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from governance.audit.export import (
    iter_events,
    verify_database,
    verify_export,
    write_export,
)
from governance.audit.service import Head
from governance.audit.verify import VerificationResult, parse_head
from governance.cli.context import CliContext, pass_context

# Exit status when verification finds tampering.
EXIT_TAMPERED = 1


def _parse_head_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> Head | None:
    if value is None:
        return None
    try:
        return parse_head(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@click.group()
def audit() -> None:
    """Verify and export the audit trail."""


@audit.command()
@click.option(
    "--expect-head",
    callback=_parse_head_option,
    metavar="SEQ:HASH",
    help="Head recorded outside the database; detects truncation and rewriting.",
)
@click.option(
    "--file",
    "export_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify an export (.csv or .jsonl) instead of the database.",
)
@pass_context
def verify(
    state: CliContext, expect_head: Head | None, export_file: Path | None
) -> None:
    """Check the hash chain and name the first tampered event."""
    result: VerificationResult
    if export_file is not None:
        result = verify_export(export_file, expect_head)
    else:
        with state.app.session() as session:
            result = verify_database(session, expect_head)
    click.echo(f"checked {result.events_checked} events")
    click.echo(f"head {result.head}")
    if result.finding is not None:
        finding = result.finding
        click.echo(
            f"TAMPERED ({finding.kind}) at event {finding.seq}: {finding.message}"
        )
        sys.exit(EXIT_TAMPERED)
    click.echo("chain intact")


@audit.command()
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["csv", "jsonl"]),
    required=True,
    help="Output format.",
)
@click.option("--since", type=click.DateTime(), help="Earliest event time, UTC.")
@click.option("--until", type=click.DateTime(), help="Events before this time, UTC.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write; standard output when omitted.",
)
@pass_context
def export(
    state: CliContext,
    export_format: str,
    since: datetime | None,
    until: datetime | None,
    output: Path | None,
) -> None:
    """Write the trail as evidence an auditor can re-verify offline."""
    with state.app.session() as session:
        events = iter_events(session, since=_as_utc(since), until=_as_utc(until))
        if output is None:
            head = write_export(events, sys.stdout, export_format)  # type: ignore[arg-type]
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                head = write_export(events, handle, export_format)  # type: ignore[arg-type]
    # The head goes to standard error so that it never mixes with the export.
    click.echo(f"head {head if head is not None else 'none (no events)'}", err=True)
