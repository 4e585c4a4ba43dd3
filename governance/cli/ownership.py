"""`steward owner` and `steward claim`: who is accountable for each identity."""

from __future__ import annotations

import click

from governance.audit.service import Actor
from governance.authz import may_act_for, require_security_admin
from governance.claim.service import (
    claim_identity,
    decide_claim,
    expire_claim_deadlines,
    find_claim,
)
from governance.cli.context import CliContext, pass_context
from governance.cli.defaults import DefaultCommandGroup
from governance.errors import PermissionDeniedError
from governance.identity.models import Identity
from governance.identity.service import find_identity
from governance.ownership.service import (
    add_backup_owner,
    assign_owner,
    remove_backup_owner,
)
from governance.settings import Settings

actor_option = click.option(
    "--actor", help="Email of the person acting; default STEWARD_ACTOR."
)


def _require_steward(settings: Settings, actor: Actor, identity: Identity) -> None:
    if not may_act_for(settings, actor, identity):
        raise PermissionDeniedError(
            f"{actor.name} may not change the owners of identity {identity.id}: only "
            "its owner, a backup owner or a security admin may"
        )


@click.group()
def owner() -> None:
    """Assign owners and backup owners."""


@owner.command("assign")
@click.argument("reference")
@click.argument("email")
@click.option("--reason", default="", help="Why this person is the owner.")
@actor_option
@pass_context
def owner_assign(
    state: CliContext, reference: str, email: str, reason: str, actor: str | None
) -> None:
    """Make EMAIL the owner of an identity (id or SOURCE:EXTERNAL_ID)."""
    acting = state.actor(actor)
    with state.app.session() as session:
        identity = find_identity(session, reference)
        _require_steward(state.settings, acting, identity)
        assign_owner(session, identity, email, actor=acting, reason=reason)
        click.echo(f"identity {identity.id} is now owned by {email.lower()}")


@owner.command("backup")
@click.argument("operation", type=click.Choice(["add", "remove"]))
@click.argument("reference")
@click.argument("email")
@actor_option
@pass_context
def owner_backup(
    state: CliContext, operation: str, reference: str, email: str, actor: str | None
) -> None:
    """Add or remove a backup owner, who may act when the owner cannot."""
    acting = state.actor(actor)
    with state.app.session() as session:
        identity = find_identity(session, reference)
        _require_steward(state.settings, acting, identity)
        if operation == "add":
            changed = add_backup_owner(session, identity, email, actor=acting)
        else:
            changed = remove_backup_owner(session, identity, email, actor=acting)
        verb = "added" if operation == "add" else "removed"
        status = verb if changed else f"already {verb}"
        click.echo(f"backup owner {email.lower()} {status} on identity {identity.id}")


@click.group(cls=DefaultCommandGroup, default_command="request")
def claim() -> None:
    """Claim orphans, and approve or reject claims of privileged ones."""


@claim.command("request")
@click.argument("reference")
@actor_option
@pass_context
def claim_request(state: CliContext, reference: str, actor: str | None) -> None:
    """Claim an orphaned identity for the acting person."""
    acting = state.actor(actor)
    with state.app.session() as session:
        identity = find_identity(session, reference)
        result = claim_identity(session, identity, actor=acting)
        if result.status.value == "approved":
            click.echo(f"identity {identity.id} is now owned by {acting.name}")
        else:
            click.echo(
                f"claim {result.id} on privileged identity {identity.id} is waiting "
                "for a security admin's approval"
            )


def _decide(
    state: CliContext, claim_id: int, approve: bool, reason: str, actor: str | None
) -> None:
    acting = state.actor(actor)
    with state.app.session() as session:
        result = decide_claim(
            session,
            find_claim(session, claim_id),
            approve=approve,
            actor=acting,
            settings=state.settings,
            reason=reason,
        )
        click.echo(f"claim {result.id} {result.status.value}")


@claim.command("approve")
@click.argument("claim_id", type=int)
@actor_option
@pass_context
def claim_approve(state: CliContext, claim_id: int, actor: str | None) -> None:
    """Approve a claim waiting for a security admin."""
    _decide(state, claim_id, True, "", actor)


@claim.command("reject")
@click.argument("claim_id", type=int)
@click.option("--reason", default="", help="Why the claim is rejected.")
@actor_option
@pass_context
def claim_reject(
    state: CliContext, claim_id: int, reason: str, actor: str | None
) -> None:
    """Reject a claim waiting for a security admin."""
    _decide(state, claim_id, False, reason, actor)


@claim.command("expire")
@actor_option
@pass_context
def claim_expire(state: CliContext, actor: str | None) -> None:
    """Turn orphans past their claim deadline into revocation candidates."""
    acting = state.actor(actor)
    require_security_admin(state.settings, acting, "expire claim deadlines")
    with state.app.session() as session:
        result = expire_claim_deadlines(session, actor=acting, settings=state.settings)
    queued, waiting = result.queued, result.awaiting_approval
    click.echo(f"{queued} revocations queued, {waiting} awaiting approval")
