"""The Jira client's configuration, as plain values that the core passes in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr


@dataclass(frozen=True)
class JiraConfig:
    """One Jira site and the project where Steward opens tickets.

    Authentication is basic (`user` and `api_token`, an Atlassian account's
    email and API token on Jira Cloud) or, when `personal_access_token` is
    set, a bearer token (Jira Data Center). `labels` and `extra_fields` are
    added to every ticket Steward creates.
    """

    url: str
    project: str
    issue_type: str = "Task"
    user: str | None = None
    api_token: SecretStr | None = None
    personal_access_token: SecretStr | None = None
    labels: tuple[str, ...] = ()
    extra_fields: Mapping[str, Any] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    verify_tls: bool = True
    ca_bundle: Path | None = None

    def tls_verify(self) -> bool | str:
        """Return the `verify` argument for requests: a CA bundle path or a flag."""
        if self.ca_bundle is not None:
            return str(self.ca_bundle)
        return self.verify_tls
