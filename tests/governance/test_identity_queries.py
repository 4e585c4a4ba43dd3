"""Look-ups of identities by name, identifier and person, and pending-work counts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from governance.audit.service import Actor
from governance.identity.models import RiskTier
from governance.identity.queries import (
    find_by_identifier,
    find_by_name,
    identities_of_person,
    list_orphans,
)
from governance.lifecycle import IdentityState
from governance.overview import remediation_counts
from governance.remediation.models import RemediationStatus
from governance.remediation.service import queue_revocation
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")


def test_identifier_prefix_is_literal(session: Session) -> None:
    wildcard = make_identity(session, external_id="a_b%c-1", name="w")
    make_identity(session, external_id="axbyc-2", name="x")
    make_identity(session, external_id="A_B%C-3", name="y")
    session.commit()

    matches = find_by_identifier(session, "a_b%", limit=10)
    assert matches.exact is False
    assert sorted(item.external_id for item in matches.listing.items) == [
        "A_B%C-3",
        "a_b%c-1",
    ]
    exact = find_by_identifier(session, "a_b%c-1", limit=10)
    assert exact.exact is True
    assert [item.id for item in exact.listing.items] == [wildcard.id]


def test_identifier_matches_arn_attribute(session: Session) -> None:
    arn = "arn:aws:iam::111111111111:user/ci"
    key = make_identity(session, external_id="AKIA1", attributes={"user_arn": arn})
    make_identity(session, external_id="AKIA2", attributes={"user_arn": arn + "2"})
    session.commit()

    exact = find_by_identifier(session, arn, limit=10)
    assert exact.exact is True
    assert [item.id for item in exact.listing.items] == [key.id]
    assert exact.listing.total == 1
    prefix = find_by_identifier(session, "ARN:AWS:IAM::111111111111:USER/", limit=1)
    assert prefix.listing.total == 2
    assert len(prefix.listing.items) == 1
    assert prefix.listing.has_more is True


def test_short_text_never_prefix_searched(session: Session) -> None:
    make_identity(session, external_id="abcdef")
    session.commit()
    assert find_by_identifier(session, "ab", limit=10).listing.total == 0
    assert find_by_identifier(session, "abc", limit=10).listing.total == 1


def test_name_exact_before_case_folded(session: Session) -> None:
    upper = make_identity(session, name="Deployer")
    lower = make_identity(session, name="deployer")
    other = make_identity(session, name="DEPLOYER-2")
    session.commit()
    assert [item.id for item in find_by_name(session, "deployer", limit=5).items] == [
        lower.id
    ]
    folded = find_by_name(session, "DEPLOYER", limit=5)
    assert sorted(item.id for item in folded.items) == sorted([upper.id, lower.id])
    assert other.id not in [item.id for item in folded.items]


def test_person_identities_live_owned_or_backed(session: Session) -> None:
    olive = make_person(session, "olive@example.com")
    bob = make_person(session, "bob@example.com")
    owned = make_identity(session, owner=olive, name="b-owned")
    backed = make_identity(session, owner=bob, name="a-backed")
    backed.backup_owners.append(olive)
    make_identity(session, owner=olive, state=IdentityState.GONE, name="c-gone")
    make_identity(session, owner=bob, name="d-bobs")
    session.commit()

    listing = identities_of_person(session, olive.id, limit=10)
    assert [item.id for item in listing.items] == [backed.id, owned.id]
    assert listing.total == 2
    second = identities_of_person(session, olive.id, limit=1, offset=1)
    assert [item.id for item in second.items] == [owned.id]
    assert second.has_more is False


def test_orphans_nearest_deadline_first(session: Session) -> None:
    undated = make_identity(session, state=IdentityState.ORPHANED)
    later = make_identity(
        session,
        state=IdentityState.ORPHANED,
        claim_deadline=datetime(2030, 2, 1, tzinfo=UTC),
    )
    sooner = make_identity(
        session,
        state=IdentityState.ORPHANED,
        claim_deadline=datetime(2030, 1, 1, tzinfo=UTC),
    )
    make_identity(session)
    session.commit()
    listing = list_orphans(session, limit=10)
    assert [item.id for item in listing.items] == [sooner.id, later.id, undated.id]


def test_remediation_counts_leave_out_tickets(session: Session) -> None:
    owner = make_person(session, "olive@example.com")
    standard = make_identity(session, owner=owner)
    privileged = make_identity(session, owner=owner, tier=RiskTier.PRIVILEGED)
    failed = make_identity(session, owner=owner)
    for identity in (standard, privileged, failed):
        queue_revocation(
            session,
            identity,
            actor=ADMIN,
            action="revocation.requested",
            reason="test",
            dedupe_key=f"revoke-{identity.id}",
        )
    stuck = queue_revocation(
        session,
        failed,
        actor=ADMIN,
        action="revocation.requested",
        reason="test",
        dedupe_key=f"revoke-{failed.id}",
    )
    stuck.status = RemediationStatus.NEEDS_HUMAN
    session.commit()

    counts = remediation_counts(session)
    assert counts.awaiting_approval == 1
    assert counts.pending == 1
    assert counts.needs_human == 1
    assert counts.open == 0
