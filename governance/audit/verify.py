"""Verification of the audit chain, in the database or in an export.

Inside the trail, verification finds the first edited, deleted, inserted or
reordered event. Two kinds of tampering leave a trail that is consistent
with itself: cutting events off the end, and rewriting an event and then
recomputing every later hash. Only a head recorded outside the database
catches those, so `expected_head` compares the trail with one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from governance.audit.chain import GENESIS_HASH, event_hash
from governance.audit.service import Head


class TamperKind(StrEnum):
    """Kind of inconsistency found in the trail."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"


@dataclass(frozen=True)
class Finding:
    """The first inconsistency: its kind, the event it concerns and why."""

    kind: TamperKind
    seq: int
    message: str


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of a verification run; `head` is the last event read."""

    events_checked: int
    head: Head
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None


def _hash_with_seq(event: Mapping[str, Any], seq: int) -> str:
    return event_hash({**event, "seq": seq})


def _classify(
    event: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    expected_seq: int,
    find_seq_by_hash: Callable[[str], int | None],
) -> Finding | None:
    seq = int(event["seq"])
    expected_prev = GENESIS_HASH if previous is None else previous["hash"]
    content_ok = event_hash(event) == event["hash"]
    linked = event["prev_hash"] == expected_prev

    if seq == expected_seq and content_ok and linked:
        return None

    # An event that links to an event stored later has been moved.
    target_seq = find_seq_by_hash(event["prev_hash"])
    if target_seq is not None and target_seq > seq:
        return Finding(
            TamperKind.REORDERED,
            seq,
            f"event {seq} is out of order: it was written after event {target_seq}",
        )

    if seq > expected_seq:
        missing = (
            f"event {expected_seq}"
            if seq == expected_seq + 1
            else f"events {expected_seq} to {seq - 1}"
        )
        return Finding(TamperKind.DELETED, expected_seq, f"{missing} deleted")

    if not content_ok:
        # Shifting later events to make room changes their sequence numbers.
        if _hash_with_seq(event, seq - 1) == event["hash"] and previous is not None:
            previous_seq = int(previous["seq"])
            return Finding(
                TamperKind.INSERTED,
                previous_seq,
                f"event {previous_seq} was inserted: event {seq} was written as "
                f"event {seq - 1}",
            )
        if _hash_with_seq(event, seq + 1) == event["hash"]:
            return Finding(
                TamperKind.DELETED,
                seq,
                f"an event before event {seq} was deleted and the later events "
                "renumbered",
            )
        return Finding(
            TamperKind.EDITED,
            seq,
            f"event {seq} was edited: its content no longer matches its hash",
        )

    # The content matches its own hash but the link to the previous event broke.
    if target_seq is not None and previous is not None:
        previous_seq = int(previous["seq"])
        if target_seq < previous_seq:
            return Finding(
                TamperKind.INSERTED,
                previous_seq,
                f"event {previous_seq} was inserted: event {seq} links to event "
                f"{target_seq}",
            )
    if previous is not None:
        previous_seq = int(previous["seq"])
        return Finding(
            TamperKind.EDITED,
            previous_seq,
            f"event {previous_seq} was edited and its hash recomputed: event {seq} "
            "no longer links to it",
        )
    return Finding(
        TamperKind.EDITED,
        seq,
        f"event {seq} was edited: the first event must link to the genesis hash",
    )


def verify_events(
    events: Iterable[Mapping[str, Any]],
    find_seq_by_hash: Callable[[str], int | None],
    expected_head: Head | None = None,
    anchor: Head | None = None,
) -> VerificationResult:
    """Verify events given in ascending `seq` order, stopping at the first finding.

    Each event is a mapping with the canonical fields plus `hash`.
    `find_seq_by_hash` looks an event up by its stored hash anywhere in the
    trail; it lets the verifier tell a moved event from a deleted one.
    `anchor` is the event just before the first one given, for a partial trail.
    """
    previous: Mapping[str, Any] | None = None
    expected_seq = 1
    if anchor is not None and anchor.seq > 0:
        previous = {"seq": anchor.seq, "hash": anchor.hash}
        expected_seq = anchor.seq + 1
    checked = 0
    for event in events:
        finding = _classify(event, previous, expected_seq, find_seq_by_hash)
        if finding is not None:
            return VerificationResult(checked, _head_of(previous), finding)
        checked += 1
        previous = event
        expected_seq = int(event["seq"]) + 1

    head = _head_of(previous)
    if expected_head is not None:
        finding = _compare_head(head, expected_head, find_seq_by_hash)
        return VerificationResult(checked, head, finding)
    return VerificationResult(checked, head, None)


def _head_of(event: Mapping[str, Any] | None) -> Head:
    if event is None:
        return Head(0, GENESIS_HASH)
    return Head(int(event["seq"]), str(event["hash"]))


def _compare_head(
    head: Head, expected: Head, find_seq_by_hash: Callable[[str], int | None]
) -> Finding | None:
    if expected.seq > head.seq:
        return Finding(
            TamperKind.TRUNCATED,
            head.seq + 1,
            f"the trail ends at event {head.seq} but the recorded head is event "
            f"{expected.seq}: events {head.seq + 1} to {expected.seq} are missing",
        )
    if find_seq_by_hash(expected.hash) != expected.seq:
        return Finding(
            TamperKind.REWRITTEN,
            expected.seq,
            f"event {expected.seq} does not have the recorded hash {expected.hash}: "
            "the chain was recomputed after an earlier change",
        )
    return None


def parse_head(text: str) -> Head:
    """Parse a head written as SEQ:HASH; raise ValueError when malformed."""
    seq_text, separator, hash_text = text.strip().partition(":")
    hash_text = hash_text.lower()
    if (
        not separator
        or not seq_text.isdigit()
        or len(hash_text) != 64
        or any(char not in "0123456789abcdef" for char in hash_text)
    ):
        raise ValueError(
            f"expected a head as SEQ:HASH with a 64-digit hex hash, got {text!r}"
        )
    return Head(int(seq_text), hash_text)
