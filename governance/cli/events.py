"""`steward event`: business events from the ITSM, and their approval."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from governance.business_event.models import EventStatus, EventType
from governance.business_event.service import (
    decide_event,
    find_event,
    parse_event_type,
    receive_event,
)
from governance.cli.context import CliContext, pass_context
from governance.cli.defaults import DefaultCommandGroup
from governance.clock import utcnow
from governance.imports.values import parse_timestamp

# Clocks of the sender and of Steward may differ by this much.
CLOCK_SKEW = timedelta(minutes=5)


def _parse_time(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_timestamp(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if moment is not None and moment > utcnow() + CLOCK_SKEW:
        raise click.BadParameter(f"{value} is in the future")
    return moment


actor_option = click.option(
    "--actor", help="Email of the person acting; default STEWARD_ACTOR."
)


@click.group(cls=DefaultCommandGroup, default_command="receive")
def event() -> None:
    """Apply business events: project.closed, vendor.offboarded,
    application.decommissioned."""


@event.command("receive")
@click.argument(
    "event_type", metavar="TYPE", type=click.Choice([t.value for t in EventType])
)
@click.argument("key")
@click.option("--id", "event_id", required=True, help="The sender's unique event id.")
@click.option(
    "--at",
    "occurred_at",
    callback=_parse_time,
    help="When it happened: ISO 8601, UTC when no zone is given; not in the future.",
)
@actor_option
@pass_context
def receive(
    state: CliContext,
    event_type: str,
    key: str,
    event_id: str,
    occurred_at: datetime | None,
    actor: str | None,
) -> None:
    """Close the entity KEY and deprovision its identities, once per event id."""
    acting = state.actor(actor)
    with state.app.session() as session:
        outcome = receive_event(
            session,
            event_id=event_id,
            event_type=parse_event_type(event_type),
            key=key,
            actor=acting,
            settings=state.settings,
            occurred_at=occurred_at,
        )
        result = outcome.event
        if outcome.duplicate:
            click.echo(f"event {event_id} was already received: nothing more to do")
        if outcome.already_closed:
            click.echo(
                f"event {event_id}: {result.entity.type.value} {key} was already "
                "closed, so nothing was queued"
            )
            return
        click.echo(
            f"event {event_id}: {result.revoke_count} identities to revoke, "
            f"{result.kept_count} kept (still linked elsewhere), {result.status.value}"
        )
        if result.status is EventStatus.AWAITING_APPROVAL:
            click.echo(
                f"a security admin approves with: steward event approve {event_id}"
            )


@event.command("approve")
@click.argument("event_id")
@actor_option
@pass_context
def approve(state: CliContext, event_id: str, actor: str | None) -> None:
    """Approve the revocations of an event waiting for a security admin."""
    _decide(state, event_id, approve=True, actor=actor)


@event.command("reject")
@click.argument("event_id")
@actor_option
@pass_context
def reject(state: CliContext, event_id: str, actor: str | None) -> None:
    """Reject the revocations of an event waiting for a security admin."""
    _decide(state, event_id, approve=False, actor=actor)


def _decide(
    state: CliContext, event_id: str, *, approve: bool, actor: str | None
) -> None:
    acting = state.actor(actor)
    with state.app.session() as session:
        count = decide_event(
            session,
            find_event(session, event_id),
            approve=approve,
            actor=acting,
            settings=state.settings,
        )
    verb = "approved" if approve else "rejected"
    click.echo(f"event {event_id} {verb}: {count} revocations")
