"""`steward remediation` and `steward worker`: the outbox and its worker."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

import click
from sqlalchemy.orm import Session

from bot.drainers import slack_drainers
from governance.audit.service import Actor
from governance.cli.context import CliContext, echo_table, pass_context
from governance.remediation.models import Remediation, RemediationStatus
from governance.remediation.operations import (
    cancel,
    confirm,
    decide_approval,
    find_remediation,
    list_remediations,
    request_undo,
    retry,
    set_paused,
)
from governance.remediation.runner import (
    default_worker_id,
    load_revokers,
    ticket_drainers,
)
from governance.remediation.tickets import SharedTicketClient
from governance.scheduler.process import run_worker
from governance.settings import Settings

actor_option = click.option(
    "--actor", help="Email of the person acting; default STEWARD_ACTOR."
)
reason_option = click.option(
    "--reason", default="", help="Why; kept in the audit trail."
)


@click.group()
def remediation() -> None:
    """Inspect and operate the remediation outbox."""


@remediation.command("list")
@click.option("--status", type=click.Choice([s.value for s in RemediationStatus]))
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@pass_context
def list_command(state: CliContext, status: str | None, limit: int) -> None:
    """List outbox rows, newest first."""
    with state.app.session() as session:
        rows = [
            [
                str(item.id),
                item.kind.value,
                item.status.value,
                str(item.identity_id or "-"),
                str(item.attempts),
                (item.last_error or item.outcome or "")[:60],
            ]
            for item in list_remediations(
                session,
                status=RemediationStatus(status) if status else None,
                limit=limit,
            )
        ]
    echo_table(["ID", "KIND", "STATUS", "IDENTITY", "ATTEMPTS", "DETAIL"], rows)


Operation = Callable[[Session, Remediation, Actor, Settings, str], Remediation]


def _operate(
    state: CliContext,
    remediation_id: int,
    actor: str | None,
    reason: str,
    operation: Operation,
) -> None:
    acting = state.actor(actor)
    with state.app.session() as session:
        result = operation(
            session,
            find_remediation(session, remediation_id),
            acting,
            state.settings,
            reason,
        )
        click.echo(f"remediation {result.id}: {result.status.value}")


def _command(name: str, help_text: str, operation: Operation) -> None:
    @remediation.command(name, help=help_text)
    @click.argument("remediation_id", type=int)
    @reason_option
    @actor_option
    @pass_context
    def command(
        state: CliContext, remediation_id: int, reason: str, actor: str | None
    ) -> None:
        _operate(state, remediation_id, actor, reason, operation)


_command(
    "approve",
    "Approve a revocation waiting for a security admin.",
    lambda s, r, a, c, why: decide_approval(
        s, r, approve=True, actor=a, settings=c, reason=why
    ),
)
_command(
    "reject",
    "Reject a revocation waiting for a security admin.",
    lambda s, r, a, c, why: decide_approval(
        s, r, approve=False, actor=a, settings=c, reason=why
    ),
)
_command(
    "retry",
    "Queue a remediation that needs a human again.",
    lambda s, r, a, c, why: retry(s, r, actor=a, settings=c),
)
_command(
    "cancel",
    "Cancel a remediation that has not run.",
    lambda s, r, a, c, why: cancel(s, r, actor=a, settings=c, reason=why),
)
_command(
    "confirm",
    "Confirm a manual revocation or a scope reduction done outside Steward.",
    lambda s, r, a, c, why: confirm(s, r, actor=a, settings=c, reason=why),
)
_command(
    "undo",
    "Re-enable a credential that a staged revocation disabled.",
    lambda s, r, a, c, why: request_undo(s, r, actor=a, settings=c),
)


def _set_pause(state: CliContext, paused: bool, reason: str, actor: str | None) -> bool:
    with state.app.session() as session:
        return set_paused(
            session,
            paused,
            actor=state.actor(actor),
            settings=state.settings,
            reason=reason,
        )


@remediation.command("pause")
@reason_option
@actor_option
@pass_context
def pause(state: CliContext, reason: str, actor: str | None) -> None:
    """Emergency stop: hold every remediation until resumed."""
    changed = _set_pause(state, True, reason, actor)
    click.echo("remediation paused" if changed else "remediation was already paused")


@remediation.command("resume")
@reason_option
@actor_option
@pass_context
def resume(state: CliContext, reason: str, actor: str | None) -> None:
    """Release the emergency stop."""
    changed = _set_pause(state, False, reason, actor)
    click.echo("remediation resumed" if changed else "remediation was not paused")


@click.command()
@click.option("--once", is_flag=True, help="Run every due job once and exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    help="Seconds between outbox passes; default "
    "scheduler.drain_outbox_interval_seconds (5).",
)
@click.option(
    "--lease-seconds",
    type=click.IntRange(min=5),
    help="Lease period in seconds; another worker takes over this long after a "
    "holder dies. Default scheduler.lease_seconds (60).",
)
@click.option(
    "--lock-seconds",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Lock period in seconds: a remediation left in progress by a worker "
    "that died is taken again this long after it was taken.",
)
@pass_context
def worker(
    state: CliContext,
    once: bool,
    interval: float | None,
    lease_seconds: int | None,
    lock_seconds: int,
) -> None:
    """Run the scheduled jobs and the outbox until stopped (SIGTERM or Ctrl-C).

    Only the holder of the database lease works; other workers wait and take
    over when the holder stops. Each outbox pass carries out due
    revocations, opens Jira tickets, keeps them in step with their
    remediations and sends Slack messages.
    """
    connectors, lookup = load_revokers(state.app)
    ticket_clients = SharedTicketClient(state.settings.jira)
    worker_id = default_worker_id()
    drainers = [
        *ticket_drainers(
            state.app,
            ticket_clients,
            worker_id=worker_id,
            lock_period=timedelta(seconds=lock_seconds),
        ),
        *slack_drainers(state.app, worker_id=worker_id),
    ]
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        results = run_worker(
            state.app,
            lookup,
            worker_id=worker_id,
            stop=stop,
            interval=interval,
            lease_ttl=timedelta(seconds=lease_seconds) if lease_seconds else None,
            lock_period=timedelta(seconds=lock_seconds),
            once=once,
            drainers=drainers,
        )
    finally:
        ticket_clients.close()
        for connector in connectors.values():
            connector.close()
    for result in results:
        detail = result.error or f"count {result.count}"
        click.echo(f"{result.job_id}: {result.status.value} ({detail})")
