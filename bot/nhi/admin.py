"""`/nhi campaign ...` and `/nhi report`: the security admins' subcommands.

Each calls the same core service as the matching `steward` command, with the
admin as the actor, so a campaign opened here is the one the CLI would open.
"""

from __future__ import annotations

from bot.blocks import Block, context, header, section
from bot.errors import UsageError
from bot.inventory_blocks import text_of
from bot.nhi.replies import CommandContext, Reply, plain_reply
from bot.timefmt import show_time
from governance.authz import require_security_admin
from governance.campaign.service import (
    campaign_counts,
    close_campaign,
    find_campaign,
    start_campaign,
)
from governance.report.maturity import HIGHEST_STAGE, format_share
from governance.report.service import GovernanceReport, build_report


def _campaign_id(request: CommandContext) -> int:
    campaign_id = request.invocation.campaign_id
    if campaign_id is None:
        raise UsageError("A campaign id is missing.")
    return campaign_id


def campaign_start(request: CommandContext) -> Reply:
    """Open a campaign for the identities due, as `steward campaign start` does."""
    viewer = request.viewer
    require_security_admin(request.settings, viewer.actor, "start campaigns")
    options = request.invocation.options
    opened = start_campaign(
        request.session,
        actor=viewer.actor,
        settings=request.settings,
        tier=options.tier,
        source=options.source,
        due_within_days=options.due_days,
    )
    counts = campaign_counts(request.session, opened)
    return plain_reply(
        f"Campaign {opened.id} ({text_of(opened.name)}) opened: "
        f"{counts.total:,} reviews, {counts.orphans:,} orphans sent to the claim "
        f"flow, due {show_time(opened.due_at, viewer.time_zone)}."
    )


def campaign_status(request: CommandContext) -> Reply:
    """Show a campaign's progress by review status and decision."""
    campaign = find_campaign(request.session, _campaign_id(request))
    counts = campaign_counts(request.session, campaign)
    time_zone = request.viewer.time_zone
    fields = [
        f"*Status*\n{campaign.status.value}",
        f"*Due*\n{show_time(campaign.due_at, time_zone)}",
        f"*Decided*\n{counts.decided:,} of {counts.total:,}",
        f"*Pending*\n{counts.pending:,} ({counts.overdue:,} overdue)",
        f"*Expired*\n{counts.expired:,}",
        f"*Orphans*\n{counts.orphans:,}",
        f"*Certified*\n{counts.certified:,}",
        f"*Scope reductions*\n{counts.reduce_scope:,}",
        f"*Revocations*\n{counts.revoke:,}",
        f"*Cancelled*\n{counts.cancelled:,}",
    ]
    blocks: list[Block] = [
        header(f"Campaign {campaign.id}: {campaign.name}"),
        section(
            f"Opened by {text_of(campaign.opened_by)} at "
            f"{show_time(campaign.opened_at, time_zone)}",
            fields=fields,
        ),
        context(f"Times are in {text_of(time_zone or 'UTC')}."),
    ]
    return Reply(text=f"Campaign {campaign.id}: {campaign.status.value}", blocks=blocks)


def campaign_close(request: CommandContext) -> Reply:
    """Close a campaign, as `steward campaign close` does."""
    viewer = request.viewer
    require_security_admin(request.settings, viewer.actor, "close campaigns")
    campaign = find_campaign(request.session, _campaign_id(request))
    expired = close_campaign(
        request.session, campaign, actor=viewer.actor, settings=request.settings
    )
    return plain_reply(
        f"Campaign {campaign.id} closed: {expired:,} unanswered reviews expired "
        "and were escalated."
    )


def report(request: CommandContext) -> Reply:
    """Build the reply to `report`: the governance report's headline figures.

    On PostgreSQL the unit of work must be opened with REPEATABLE READ, as
    `steward report` does, so that every query reads the same snapshot.
    """
    summary = build_report(request.session, request.settings)
    return _report_reply(summary, request)


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({format_share(part, whole)})"


def _report_reply(summary: GovernanceReport, request: CommandContext) -> Reply:
    maturity = summary.maturity
    stage = f"*Maturity stage {maturity.stage} of {HIGHEST_STAGE}*"
    if maturity.stage_name:
        stage += f" ({maturity.stage_name})"
    if maturity.missing:
        stage += f"\nNext: {text_of(maturity.missing, 1000)}"

    gap = summary.coverage_gap
    ownership = summary.ownership
    certification = summary.certification
    lifecycle = summary.lifecycle
    fields = [
        f"*Inventory*\n{summary.inventory.identities:,} identities, "
        f"{summary.inventory.live:,} live",
        f"*Managed by no secrets manager*\n{_share(gap.unmanaged, gap.live)}",
        "*With an active owner*\n"
        f"{_share(ownership.with_active_owner, ownership.live)}",
        f"*Orphans*\n{ownership.orphans:,}",
        f"*Certified within their cycle*\n"
        f"{_share(certification.certified, certification.live)}",
        f"*Overdue*\n{certification.overdue:,} "
        f"({certification.overdue_never_certified:,} never certified)",
        f"*Pending reviews*\n{certification.pending_reviews:,} "
        f"({certification.pending_reviews_past_due:,} past due)",
        f"*Linked to a business entity*\n{_share(lifecycle.linked, lifecycle.live)}",
        f"*Owner disagreements*\n{ownership.disagreement_count:,}",
    ]

    generated = show_time(summary.generated_at, request.viewer.time_zone)
    blocks: list[Block] = [
        header("Governance report"),
        section(stage),
        section("*Coverage*", fields=fields),
        context(f"Computed {generated}. `steward report` prints every table."),
    ]
    return Reply(
        text=f"Governance report: maturity stage {maturity.stage}", blocks=blocks
    )
