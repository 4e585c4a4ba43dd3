"""The text of the ticket that records a remediation, and of its comments.

A ticket names the identity (name, source, kind, its external id, which is
an accessor or key id, tier, owners and linked business entities) and the
decision behind the remediation. It never includes the identity's
attributes or description, which come from sources and are not reviewed
for secrets. Descriptions are Jira wiki markup (REST API version 2), so
characters that would start a link, an image, a table or a macro are
escaped in every value taken from the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from connectors.tickets import TicketDraft
from governance.campaign.models import Review
from governance.identity.models import Identity
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.textsafety import CONTROL_CHARACTERS

LABEL_PREFIX = "steward-remediation-"
SUMMARY_LIMIT = 250
# Jira rejects text fields longer than 32767 characters.
DESCRIPTION_LIMIT = 30000
_WIKI_SPECIAL = str.maketrans({character: f"\\{character}" for character in "\\{}[]|!"})

_SUMMARY_BY_KIND = {
    RemediationKind.REVOKE: "Revoke NHI {name} ({source})",
    RemediationKind.MANUAL_REVOKE: "Revoke NHI {name} ({source}) at its issuing system",
    RemediationKind.SCOPE_REDUCTION: "Reduce the scope of NHI {name} ({source})",
}

_MANUAL_REVOKE_CLOSING = (
    "Revoke the credential at the system that issued it, then move this "
    "ticket to a done status: Steward then records the revocation."
)
_CLOSING_BY_KIND = {
    RemediationKind.REVOKE: (
        "Steward revokes the credential and verifies that it is gone. It "
        "comments here and closes this ticket once the revocation is verified. "
        "When no connector can revoke it, revoke it at the system that issued "
        "it and move this ticket to a done status."
    ),
    RemediationKind.MANUAL_REVOKE: _MANUAL_REVOKE_CLOSING,
    RemediationKind.SCOPE_REDUCTION: (
        "Reduce the identity's permissions to what it needs, then move this "
        "ticket to a done status: Steward then certifies the identity again."
    ),
}


def ticket_label(remediation_id: int) -> str:
    """Return the label that finds the ticket of a remediation again."""
    return f"{LABEL_PREFIX}{remediation_id}"


def _one_line(value: str) -> str:
    return " ".join(CONTROL_CHARACTERS.sub(" ", value).split())


def _wiki(value: str) -> str:
    return _one_line(value).translate(_WIKI_SPECIAL)


def _person(person: Person | None) -> str:
    if person is None:
        return "none"
    if person.display_name:
        return f"{person.display_name} ({person.email})"
    return person.email


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "none"


def summary(remediation: Remediation, identity: Identity | None) -> str:
    """Return the one-line ticket summary."""
    template = _SUMMARY_BY_KIND.get(remediation.kind, "Remediation of NHI {name}")
    if identity is None:
        text = f"Remediation {remediation.id} ({remediation.kind.value})"
    else:
        text = template.format(name=identity.name, source=identity.source)
    line = _one_line(text)
    return line if len(line) <= SUMMARY_LIMIT else line[: SUMMARY_LIMIT - 3] + "..."


def _identity_lines(identity: Identity) -> list[str]:
    backups = ", ".join(_person(person) for person in identity.backup_owners)
    entities = ", ".join(
        f"{entity.type.value} {entity.key}"
        + (f" ({entity.name})" if entity.name else "")
        for entity in identity.entities
    )
    tier = identity.tier.value
    if identity.tier_reason:
        tier += f" ({identity.tier_reason})"
    lines = [
        f"* Name: {_wiki(identity.name)}",
        f"* Source: {_wiki(identity.source)}",
        f"* Kind: {_wiki(identity.kind)}",
        f"* External id (accessor or key id): {_wiki(identity.external_id)}",
        f"* Tier: {_wiki(tier)}",
        f"* Owner: {_wiki(_person(identity.owner))}",
        f"* Backup owners: {_wiki(backups or 'none')}",
        f"* Linked entities: {_wiki(entities or 'none')}",
        f"* Steward identity id: {identity.id}",
    ]
    if identity.scope_summary:
        lines.append(f"* Scope: {_wiki(identity.scope_summary)}")
    return lines


def _decision_lines(session: Session, remediation: Remediation) -> list[str]:
    lines = [
        f"* Remediation: {remediation.id} ({remediation.kind.value})",
        f"* Requested by: {_wiki(remediation.requested_by)}",
        f"* Reason: {_wiki(remediation.reason or 'none given')}",
    ]
    if remediation.approved_by:
        lines.append(f"* Approved by: {_wiki(remediation.approved_by)}")
    if remediation.deadline is not None:
        lines.append(f"* Deadline: {_date(remediation.deadline)}")
    review = (
        session.get(Review, remediation.review_id)
        if remediation.review_id is not None
        else None
    )
    if review is not None:
        decision = review.decision.value if review.decision else "none"
        lines.append(
            f"* Review {review.id} in campaign {_wiki(review.campaign.name)}: "
            f"{decision}, decided by {_wiki(review.decided_by or 'nobody')} "
            f"on {_date(review.decided_at)}"
        )
        if review.comment:
            lines.append(f"* Reviewer's comment: {_wiki(review.comment)}")
    return lines


def _closing(remediation: Remediation) -> str:
    # A revocation that no connector could carry out is open for people.
    if (
        remediation.kind is RemediationKind.REVOKE
        and remediation.status is RemediationStatus.OPEN
    ):
        return _MANUAL_REVOKE_CLOSING
    return _CLOSING_BY_KIND.get(remediation.kind, "")


def draft(session: Session, remediation: Remediation) -> TicketDraft:
    """Return the ticket recording `remediation`, from the rows as they are now."""
    identity = (
        session.get(Identity, remediation.identity_id)
        if remediation.identity_id is not None
        else None
    )
    parts = [
        f"Steward queued remediation {remediation.id} for a non-human identity.",
        "",
        "*Identity*",
        *(_identity_lines(identity) if identity is not None else ["* none recorded"]),
        "",
        "*Decision*",
        *_decision_lines(session, remediation),
        "",
        _closing(remediation),
    ]
    description = "\n".join(parts)
    if len(description) > DESCRIPTION_LIMIT:
        description = description[: DESCRIPTION_LIMIT - 3] + "..."
    return TicketDraft(
        summary=summary(remediation, identity),
        description=description,
        label=ticket_label(remediation.id),
    )


def verified_marker(remediation_id: int) -> str:
    """Return the text that marks the verification comment on a ticket."""
    return f"{ticket_label(remediation_id)} verified"


def ended_marker(remediation_id: int, status: RemediationStatus) -> str:
    """Return the text that marks the comment on a cancelled or rejected one."""
    return f"{ticket_label(remediation_id)} {status.value}"


def verified_comment(remediation: Remediation) -> str:
    """Return the comment added once the remediation is verified or confirmed."""
    if remediation.status is RemediationStatus.ALREADY_GONE:
        what = "the credential was already gone when Steward checked"
    elif remediation.kind is RemediationKind.SCOPE_REDUCTION:
        what = "the scope reduction was confirmed and the identity certified"
    elif remediation.stage == "revoked":
        what = "the revocation is verified"
    else:
        what = "the revocation was confirmed"
    lines = [f"Steward closed remediation {remediation.id}: {what}."]
    if remediation.outcome:
        lines.append(f"Outcome: {_wiki(remediation.outcome)}")
    lines.extend(
        [
            f"Completed: {_date(remediation.completed_at)}",
            "",
            verified_marker(remediation.id),
        ]
    )
    return "\n".join(lines)


def ended_comment(remediation: Remediation) -> str:
    """Return the comment added when the remediation was cancelled or rejected."""
    lines = [
        f"Remediation {remediation.id} was {remediation.status.value} in Steward; "
        "it changed nothing. Close this ticket if no work remains.",
        "",
        ended_marker(remediation.id, remediation.status),
    ]
    return "\n".join(lines)
