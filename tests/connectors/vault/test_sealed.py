"""A sealed server: failures are retryable and nothing is reported revoked.

This test seals its own OpenBao dev server, so the shared one stays usable.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.base import HealthState, IdentityRef, RevocationOutcome
from connectors.errors import ConnectorUnavailableError
from connectors.vault.connector import VaultConnector, create
from tests.openbao import OpenBao, start_openbao, token_of


@pytest.fixture(scope="module")
def sealed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    with start_openbao(tmp_path_factory.mktemp("sealed-openbao")) as server:
        server.enable_approle("approle")
        server.enable_kv("kv", 1)
        yield server


def test_sealed_server_fails_safely(sealed_server: OpenBao) -> None:
    connector: VaultConnector = create("vault-main", sealed_server.steward_login())
    _, accessor = token_of(sealed_server.root.auth.token.create(policies=["default"]))
    assert connector.check_health().state is HealthState.OK

    sealed_server.cli("operator", "seal")
    assert sealed_server.is_sealed()

    try:
        result = connector.revoke(IdentityRef("vault-main", "vault_token", accessor))
        assert result.outcome is RevocationOutcome.RETRYABLE
        assert "sealed" in result.detail.lower()
        with pytest.raises(ConnectorUnavailableError):
            list(connector.discover())
        health = connector.check_health()
        assert health.state is HealthState.FAILING
        assert "sealed" in health.detail.lower()
    finally:
        connector.close()
