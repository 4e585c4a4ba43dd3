"""`steward discover` and `steward health`."""

from __future__ import annotations

import click

from governance.audit.service import Actor
from governance.cli.context import CliContext, echo_json, echo_table, pass_context
from governance.discovery.models import RunStatus
from governance.discovery.runner import SourceOutcome, discover_sources
from governance.health import run_checks

# Exit status when a source failed or was blocked, or a health check failed.
EXIT_UNHEALTHY = 1


def _outcome_document(outcome: SourceOutcome) -> dict[str, object]:
    result = outcome.result
    return {
        "source": outcome.source,
        "status": outcome.status.value,
        "run_id": outcome.run_id,
        "seen": result.seen if result else None,
        "new": result.new if result else None,
        "changed": result.changed if result else None,
        "unchanged": result.unchanged if result else None,
        "gone": result.gone if result else None,
        "error": outcome.error,
    }


@click.command()
@click.argument("sources", nargs=-1)
@click.option(
    "--confirm",
    is_flag=True,
    help="Mark identities gone even above the guards.max_gone_share limit.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
@click.pass_context
def discover(
    ctx: click.Context,
    state: CliContext,
    sources: tuple[str, ...],
    confirm: bool,
    as_json: bool,
) -> None:
    """Reconcile the inventory with each enabled connector, or with SOURCES."""
    outcomes = discover_sources(
        state.app, sources, actor=Actor.system("discover"), confirm=confirm
    )
    documents = [_outcome_document(outcome) for outcome in outcomes]
    if as_json:
        echo_json(documents)
    else:
        headers = ["SOURCE", "STATUS", "RUN", "SEEN", "NEW", "CHANGED", "UNCHANGED"]
        headers.append("GONE")
        rows = []
        for document in documents:
            rows.append(
                [
                    "-" if document[key] is None else str(document[key])
                    for key in (
                        "source",
                        "status",
                        "run_id",
                        "seen",
                        "new",
                        "changed",
                        "unchanged",
                        "gone",
                    )
                ]
            )
        echo_table(headers, rows)
        for outcome in outcomes:
            if outcome.error:
                click.echo(f"{outcome.source} {outcome.status.value}: {outcome.error}")
    if not outcomes:
        click.echo("no connector enabled; add one under [connectors.NAME]", err=True)
    if any(outcome.status is not RunStatus.SUCCEEDED for outcome in outcomes):
        ctx.exit(EXIT_UNHEALTHY)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
@click.pass_context
def health(ctx: click.Context, state: CliContext, as_json: bool) -> None:
    """Check the database, its schema, each connector and its last discovery run.

    Exits with status 1 when any check fails.
    """
    checks = run_checks(state.raw_app)
    healthy = all(check.ok for check in checks)
    if as_json:
        echo_json({"ok": healthy, "checks": [check.as_dict() for check in checks]})
    else:
        echo_table(
            ["CHECK", "STATUS", "DETAIL"],
            [
                [check.name, "ok" if check.ok else "failing", check.detail]
                for check in checks
            ],
        )
    if not healthy:
        ctx.exit(EXIT_UNHEALTHY)
