"""The `vault` connector type: one configured Vault or OpenBao server."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from connectors.base import (
    DiscoveredIdentity,
    HealthState,
    HealthStatus,
    IdentityRef,
    RevocationResult,
)
from connectors.errors import ConnectorError
from connectors.vault.client import VaultSession
from connectors.vault.config import VaultOptions, parse_options
from connectors.vault.discovery import discover
from connectors.vault.revoke import VaultRevoker

logger = logging.getLogger(__name__)


class VaultConnector:
    """Discovers and revokes the identities of one Vault/OpenBao server.

    Creating the connector only validates its options; it logs in on first
    use, so a server that is down fails the run that needs it, not start-up.
    """

    def __init__(self, name: str, options: VaultOptions) -> None:
        self.name = name
        self.options = options
        self.session = VaultSession(name, options)
        self._revoker = VaultRevoker(self.session)

    def discover(self) -> Iterator[DiscoveredIdentity]:
        """Yield every token, AppRole role, secret-id and KV entry's metadata."""
        return discover(self.session, self.options)

    def check_health(self) -> HealthStatus:
        """Log in (or renew) and look up Steward's own token."""
        try:
            data = self.session.check()
        except ConnectorError as error:
            return HealthStatus(HealthState.FAILING, str(error))
        ttl = int(data.get("ttl") or 0)
        expiry = f"token ttl {ttl}s" if ttl else "token never expires"
        return HealthStatus(
            HealthState.OK, f"authenticated to {self.options.url}; {expiry}"
        )

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        """Revoke a token or secret-id by accessor and verify it no longer resolves."""
        return self._revoker.revoke(identity)

    def describe(self) -> dict[str, Any]:
        """Return the effective options with credentials masked."""
        return {"type": "vault", "name": self.name, **self.options.masked()}

    def close(self) -> None:
        """Revoke Steward's login token, if any, and close connections."""
        self.session.close()


def create(name: str, options: Mapping[str, Any]) -> VaultConnector:
    """Build a connector named `name`; raise ConnectorConfigError on bad options."""
    connector = VaultConnector(name, parse_options(name, dict(options)))
    logger.debug("vault connector %s configured for %s", name, connector.options.url)
    return connector
