"""`steward config` and `steward nhi`: read-only views."""

from __future__ import annotations

from typing import Any

import click

from governance.cli.context import CliContext, echo_json, echo_table, pass_context
from governance.database.engine import safe_url
from governance.identity.models import RiskTier
from governance.identity.schemas import IdentityDetail, IdentitySummary
from governance.identity.service import IdentityFilter, find_identity, list_identities
from governance.lifecycle import IdentityState
from governance.textsafety import printable


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, item, into)
    else:
        into[prefix] = value


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@pass_context
def config_show(state: CliContext, as_json: bool) -> None:
    """Print the effective settings, with credentials masked."""
    document = state.settings.model_dump(mode="json")
    document["database_url"] = safe_url(state.settings.database_url)
    if as_json:
        echo_json(document)
        return
    flat: dict[str, Any] = {}
    _flatten("", document, flat)
    for key in sorted(flat):
        click.echo(
            f"{key} = {flat[key]!r}"
            if isinstance(flat[key], str)
            else f"{key} = {flat[key]}"
        )


@click.group()
def nhi() -> None:
    """Browse the inventory of non-human identities."""


@nhi.command("list")
@click.option(
    "--state", "state_filter", type=click.Choice([s.value for s in IdentityState])
)
@click.option("--owner", help="Owner's email address.")
@click.option("--source", help="Source name, for example a Vault connector's name.")
@click.option("--tier", type=click.Choice([t.value for t in RiskTier]))
@click.option("--limit", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def nhi_list(
    state: CliContext,
    state_filter: str | None,
    owner: str | None,
    source: str | None,
    tier: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List identities, filtered by state, owner, source and tier."""
    conditions = IdentityFilter(
        state=IdentityState(state_filter) if state_filter else None,
        owner_email=owner,
        source=source,
        tier=RiskTier(tier) if tier else None,
    )
    with state.app.session() as session:
        rows = [
            IdentitySummary.of(identity)
            for identity in list_identities(
                session, conditions, limit=limit, offset=offset
            )
        ]
    if as_json:
        echo_json([row.model_dump(mode="json") for row in rows])
        return
    echo_table(
        ["ID", "SOURCE", "KIND", "NAME", "TIER", "STATE", "OWNER"],
        [
            [
                str(row.id),
                row.source,
                row.kind,
                row.name,
                row.tier,
                row.state,
                row.owner or "-",
            ]
            for row in rows
        ],
    )
    click.echo(f"{len(rows)} identities")


@nhi.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@pass_context
def nhi_show(state: CliContext, reference: str, as_json: bool) -> None:
    """Show one identity by id or SOURCE:EXTERNAL_ID."""
    with state.app.session() as session:
        detail = IdentityDetail.of(find_identity(session, reference))
    document = detail.model_dump(mode="json")
    if as_json:
        echo_json(document)
        return
    for key, value in document.items():
        shown = "-" if value in (None, "", [], {}) else value
        if isinstance(shown, list):
            shown = ", ".join(str(item) for item in shown)
        click.echo(f"{key:20} {printable(str(shown))}")
