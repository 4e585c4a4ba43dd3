"""The interface between the governance core and a ticketing system.

The core opens one ticket per remediation, finds it again by a label unique
to that remediation, and later comments on it and moves it to a done status.
Implementations raise the errors of `connectors.errors`; a create whose
response was lost raises ConnectorOutcomeUnknownError, so the caller knows to
search by label before creating again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class TicketDraft:
    """A ticket to open: its text and the label unique to its remediation."""

    summary: str
    description: str
    label: str


@runtime_checkable
class TicketSystem(Protocol):
    """A ticketing system that records remediations."""

    name: str

    def create(self, draft: TicketDraft) -> str:
        """Open a ticket and return its key."""
        ...

    def find(self, label: str) -> list[str]:
        """Return the keys of the tickets carrying `label`, oldest first."""
        ...

    def status(self, key: str) -> str:
        """Return the name of the ticket's current status."""
        ...

    def has_comment(self, key: str, marker: str) -> bool:
        """Return whether a comment on the ticket contains `marker`."""
        ...

    def add_comment(self, key: str, body: str) -> None:
        """Add a comment to the ticket."""
        ...

    def transition(self, key: str, name: str) -> None:
        """Apply the workflow transition called `name` to the ticket."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
