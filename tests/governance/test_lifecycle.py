"""The lifecycle state machine: allowed moves, rejected moves, audit events."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.errors import InvalidTransitionError
from governance.identity.models import Identity
from governance.lifecycle import (
    ALLOWED_TRANSITIONS,
    LIVE_STATES,
    IdentityState,
    can_transition,
    transition,
    transition_many,
)
from tests.factories import make_identity

S = IdentityState
ACTOR = Actor.person("alice@example.com")


def _events(session: Session) -> list[AuditEvent]:
    return list(
        session.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    )


def test_every_state_has_transitions() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(IdentityState)
    for state, targets in ALLOWED_TRANSITIONS.items():
        assert state not in targets, f"{state} may not move to itself"


def test_every_live_state_can_go() -> None:
    for state in LIVE_STATES:
        assert can_transition(state, S.GONE)


def test_revoked_is_nearly_terminal() -> None:
    assert ALLOWED_TRANSITIONS[S.REVOKED] == {S.GONE, S.REVOCATION_FAILED}
    assert not can_transition(S.REVOKED, S.OWNED)
    assert not can_transition(S.GONE, S.GONE)


def test_transition_writes_one_audit_event(session: Session) -> None:
    identity = make_identity(session, state=S.OWNED)
    transition(
        session,
        identity,
        S.UNDER_REVIEW,
        actor=ACTOR,
        action="review.opened",
        reason="quarterly campaign",
    )
    session.commit()

    assert identity.state is S.UNDER_REVIEW
    events = _events(session)
    assert len(events) == 1
    event = events[0]
    assert event.object_type == "identity"
    assert event.object_id == str(identity.id)
    assert event.before_state == "owned"
    assert event.after_state == "under_review"
    assert event.actor == "alice@example.com"
    assert event.actor_type == "person"
    assert event.action == "review.opened"
    assert event.reason == "quarterly campaign"


def test_invalid_transition_changes_nothing(app: Steward, session: Session) -> None:
    identity = make_identity(session, state=S.REVOKED)
    session.commit()
    identity_id = identity.id

    with pytest.raises(InvalidTransitionError) as raised:
        transition(
            session, identity, S.OWNED, actor=ACTOR, action="owner.assigned", reason=""
        )
    session.rollback()
    session.close()

    error = raised.value
    assert error.identity_id == identity_id
    assert error.state == "revoked"
    assert error.requested == "owned"
    assert f"identity {identity_id} " in str(error)
    assert "'revoked'" in str(error)
    with app.sessions() as fresh:
        stored = fresh.get(Identity, identity_id)
        assert stored is not None
        assert stored.state is S.REVOKED
        assert _events(fresh) == []


def test_rollback_discards_state_and_event(app: Steward, session: Session) -> None:
    identity = make_identity(session, state=S.ORPHANED)
    session.commit()
    identity_id = identity.id

    transition(
        session, identity, S.OWNED, actor=ACTOR, action="claim.approved", reason=""
    )
    session.rollback()
    session.close()

    with app.sessions() as fresh:
        stored = fresh.get(Identity, identity_id)
        assert stored is not None
        assert stored.state is S.ORPHANED
        assert _events(fresh) == []


def test_gone_and_reappearing(session: Session) -> None:
    identity = make_identity(session, state=S.OWNED)
    transition(
        session,
        identity,
        S.GONE,
        actor=Actor.system("discovery"),
        action="x",
        reason="",
    )
    assert identity.gone_at is not None

    transition(
        session,
        identity,
        S.OWNED,
        actor=Actor.system("discovery"),
        action="identity.reappeared",
        reason="reported again by vault-main",
    )
    session.commit()
    assert identity.gone_at is None
    assert [(e.before_state, e.after_state) for e in _events(session)] == [
        ("owned", "gone"),
        ("gone", "owned"),
    ]
    assert _events(session)[0].actor == "system:discovery"
    assert _events(session)[0].actor_type == "system"


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.ORPHANED, S.UNDER_REVIEW),
        (S.REVOKED, S.REVOCATION_PENDING),
        (S.GONE, S.REVOKED),
        (S.DISABLED, S.UNDER_REVIEW),
        (S.DISCOVERED, S.REVOCATION_PENDING),
    ],
)
def test_rejected_moves(start: IdentityState, target: IdentityState) -> None:
    assert not can_transition(start, target)


def test_bulk_transition_skips_moved_identities(session: Session) -> None:
    owned = [make_identity(session, state=S.OWNED) for _ in range(4)]
    owned[1].state = S.ORPHANED
    session.flush()
    ids = [identity.id for identity in owned]

    moved = transition_many(
        session,
        [*ids, 999_999],
        S.OWNED,
        S.UNDER_REVIEW,
        actor=ACTOR,
        action="review.opened",
        reason="campaign 1",
    )
    session.commit()

    assert moved == [ids[0], ids[2], ids[3]]
    session.expire_all()
    states = [session.get_one(Identity, identity_id).state for identity_id in ids]
    assert states == [S.UNDER_REVIEW, S.ORPHANED, S.UNDER_REVIEW, S.UNDER_REVIEW]
    events = _events(session)
    assert [event.object_id for event in events] == [str(i) for i in moved]
    assert {(e.before_state, e.after_state) for e in events} == {
        ("owned", "under_review")
    }
    assert verify_database(session).ok


def test_bulk_transition_rejects_disallowed_move(session: Session) -> None:
    identity = make_identity(session, state=S.REVOKED)
    with pytest.raises(InvalidTransitionError):
        transition_many(
            session,
            [identity.id],
            S.REVOKED,
            S.OWNED,
            actor=ACTOR,
            action="test",
            reason="not allowed",
        )
    assert _events(session) == []
