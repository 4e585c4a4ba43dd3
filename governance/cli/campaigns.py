"""`steward campaign` and `steward review`: certification from the command line."""

from __future__ import annotations

import csv
import sys

import click

from governance.authz import require_security_admin
from governance.campaign.decision import decide_review
from governance.campaign.service import (
    campaign_counts,
    campaign_report,
    close_campaign,
    find_campaign,
    list_campaigns,
    start_campaign,
)
from governance.cli.context import CliContext, echo_json, echo_table, pass_context
from governance.identity.models import RiskTier
from governance.textsafety import neutralise_cell

actor_option = click.option(
    "--actor", help="Email of the person acting; default STEWARD_ACTOR."
)
yes_no = click.Choice(["yes", "no"])


@click.group()
def campaign() -> None:
    """Open, follow and close certification campaigns."""


@campaign.command("start")
@click.option(
    "--tier", type=click.Choice([t.value for t in RiskTier]), help="Only this tier."
)
@click.option("--source", help="Only identities of this source.")
@click.option(
    "--due",
    "due_days",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Include identities falling due within this many days.",
)
@click.option("--name", help="Campaign name; default the date and tier.")
@actor_option
@pass_context
def start(
    state: CliContext,
    tier: str | None,
    source: str | None,
    due_days: int,
    name: str | None,
    actor: str | None,
) -> None:
    """Open a campaign for the identities whose certification is due."""
    acting = state.actor(actor)
    require_security_admin(state.settings, acting, "start campaigns")
    with state.app.session() as session:
        opened = start_campaign(
            session,
            actor=acting,
            settings=state.settings,
            tier=RiskTier(tier) if tier else None,
            source=source,
            due_within_days=due_days,
            name=name,
        )
        counts = campaign_counts(session, opened)
        click.echo(
            f"campaign {opened.id} ({opened.name}) opened: {counts.total} reviews, "
            f"{counts.orphans} orphans sent to the claim flow, "
            f"due {opened.due_at:%Y-%m-%d}"
        )


@campaign.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def status(state: CliContext, campaign_id: int, as_json: bool) -> None:
    """Show a campaign's progress."""
    with state.app.session() as session:
        found = find_campaign(session, campaign_id)
        counts = campaign_counts(session, found)
        document = {
            "id": found.id,
            "name": found.name,
            "status": found.status.value,
            "due_at": found.due_at.isoformat(),
            **counts.__dict__,
        }
    if as_json:
        echo_json(document)
        return
    for key, value in document.items():
        click.echo(f"{key:14} {value}")


@campaign.command("close")
@click.argument("campaign_id", type=int)
@actor_option
@pass_context
def close(state: CliContext, campaign_id: int, actor: str | None) -> None:
    """Close a campaign; unanswered reviews expire and are escalated."""
    acting = state.actor(actor)
    require_security_admin(state.settings, acting, "close campaigns")
    with state.app.session() as session:
        expired = close_campaign(
            session,
            find_campaign(session, campaign_id),
            actor=acting,
            settings=state.settings,
        )
    click.echo(f"campaign {campaign_id} closed: {expired} unanswered reviews expired")


@campaign.command("list")
@pass_context
def list_command(state: CliContext) -> None:
    """List campaigns, newest first."""
    with state.app.session() as session:
        rows = []
        for item in list_campaigns(session):
            counts = campaign_counts(session, item)
            rows.append(
                [
                    str(item.id),
                    item.name,
                    item.status.value,
                    f"{counts.decided}/{counts.total}",
                    f"{item.due_at:%Y-%m-%d}",
                ]
            )
    echo_table(["ID", "NAME", "STATUS", "DECIDED", "DUE"], rows)


@campaign.command("report")
@click.argument("campaign_id", type=int)
@click.option(
    "--format", "report_format", type=click.Choice(["csv", "json"]), default="csv"
)
@pass_context
def report(state: CliContext, campaign_id: int, report_format: str) -> None:
    """Print every review with reviewer, evidence, decision and outcome."""
    with state.app.session() as session:
        rows = campaign_report(session, find_campaign(session, campaign_id))
    if report_format == "json":
        echo_json(rows)
        return
    columns = list(rows[0]) if rows else ["review_id"]
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {**row, "evidence": _flat(row["evidence"])}
        writer.writerow(
            {
                key: neutralise_cell("" if value is None else str(value))
                for key, value in cells.items()
            }
        )


def _flat(evidence: dict[str, object]) -> str:
    return "; ".join(f"{key}={value}" for key, value in evidence.items())


@click.group()
def review() -> None:
    """Decide certification reviews."""


@review.command("decide")
@click.argument("review_id", type=int)
@click.option(
    "--active",
    required=True,
    type=yes_no,
    help="Is the consuming application still active?",
)
@click.option(
    "--minimal",
    required=True,
    type=yes_no,
    help="Is the scope still the minimum required?",
)
@click.option("--comment", help="Why; kept in the audit trail.")
@actor_option
@pass_context
def decide(
    state: CliContext,
    review_id: int,
    active: str,
    minimal: str,
    comment: str | None,
    actor: str | None,
) -> None:
    """Answer a review's two questions."""
    acting = state.actor(actor)
    with state.app.session() as session:
        outcome = decide_review(
            session,
            review_id,
            active=active == "yes",
            minimal=minimal == "yes",
            actor=acting,
            settings=state.settings,
            comment=comment,
        )
        decided = outcome.review
        decision = decided.decision.value if decided.decision else "none"
        if outcome.created:
            click.echo(f"review {review_id}: {decision}")
        else:
            when = (
                f"{decided.decided_at:%Y-%m-%d %H:%M} UTC" if decided.decided_at else ""
            )
            click.echo(
                f"review {review_id} was already decided by {decided.decided_by} at "
                f"{when}: {decision}"
            )
