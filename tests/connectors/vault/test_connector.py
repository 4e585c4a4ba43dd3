"""The vault connector against a real OpenBao dev server.

Steward logs in with an AppRole bound to deploy/vault/steward-policy.hcl;
the root token only arranges data and checks results.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hvac
import pytest
from hvac import exceptions as hvac_errors

from connectors.base import (
    DiscoveredIdentity,
    HealthState,
    IdentityRef,
    RevocationOutcome,
)
from connectors.errors import ConnectorPermissionError
from connectors.vault.connector import VaultConnector, create
from tests.openbao import OpenBao, steward_policy, token_of, unique


@pytest.fixture
def connector(openbao: OpenBao) -> Iterator[VaultConnector]:
    started = create("vault-main", openbao.steward_login())
    yield started
    started.close()


def by_id(records: list[DiscoveredIdentity]) -> dict[str, DiscoveredIdentity]:
    return {record.external_id: record for record in records}


def secret_id_ref(accessor: str, role: str, mount: str = "approle") -> IdentityRef:
    return IdentityRef(
        "vault-main",
        "approle_secret_id",
        accessor,
        {"mount": mount, "role": role},
    )


def token_ref(accessor: str) -> IdentityRef:
    return IdentityRef("vault-main", "vault_token", accessor)


def test_discovers_approle_secret_ids(
    openbao: OpenBao, connector: VaultConnector
) -> None:
    role = unique("payments")
    policy = unique("payments-admin")
    openbao.root.sys.create_or_update_acl_policy(
        policy, 'path "sys/mounts/*" { capabilities = ["create", "update"] }'
    )
    openbao.root.auth.approle.create_or_update_approle(
        role, token_policies=[policy], token_ttl="20m"
    )
    owned = openbao.root.auth.approle.generate_secret_id(
        role,
        metadata={"owner": "Alice@Example.com", "application": "payments"},
    )["data"]
    expiring = openbao.root.adapter.post(
        f"/v1/auth/approle/role/{role}/secret-id", json={"ttl": "2h"}
    )["data"]

    records = by_id(list(connector.discover()))

    role_record = records[f"auth/approle/role/{role}"]
    assert role_record.kind == "approle_role"
    assert role_record.tier == "privileged"
    assert role_record.attributes["token_ttl_seconds"] == 1200
    assert role_record.attributes["policies"] == sorted(["default", policy])

    first = records[owned["secret_id_accessor"]]
    assert first.kind == "approle_secret_id"
    assert first.owner_email == "Alice@Example.com"
    assert first.application == "payments"
    assert first.tier == "privileged"
    assert first.tier_reason == (
        f"policy {policy!r} grants create, update on 'sys/mounts/*' (under sys/)"
    )
    assert first.attributes["never_expires"] is True
    assert first.attributes["expires_at"] is None
    assert first.attributes["metadata.owner"] == "Alice@Example.com"
    assert first.attributes["role"] == role
    assert first.created_at is not None

    second = records[expiring["secret_id_accessor"]]
    assert second.owner_email is None
    assert second.attributes["never_expires"] is False
    assert second.attributes["ttl_seconds"] == 7200
    assert second.attributes["expires_at"] is not None


def test_discovers_tokens(openbao: OpenBao, connector: VaultConnector) -> None:
    policy = unique("reader")
    openbao.root.sys.create_or_update_acl_policy(
        policy, 'path "secret/data/*" { capabilities = ["read"] }'
    )
    _, accessor = token_of(
        openbao.root.auth.token.create(
            policies=[policy],
            meta={"owner": "bob@example.com", "project": "ledger"},
            display_name="ledger-sync",
            ttl="1h",
            no_parent=True,
        )
    )
    _, sudo_accessor = token_of(
        openbao.root.auth.token.create(policies=["root"], ttl="10m")
    )

    records = by_id(list(connector.discover()))

    token = records[accessor]
    assert token.kind == "vault_token"
    assert token.name == "token-ledger-sync"
    assert token.owner_email == "bob@example.com"
    assert token.project == "ledger"
    assert token.tier == "standard"
    assert token.attributes["orphan"] is True
    assert token.attributes["policies"] == sorted(["default", policy])
    assert token.attributes["ttl_seconds"] == 3600
    assert token.attributes["never_expires"] is False
    assert "ttl" not in token.attributes
    assert records[sudo_accessor].tier == "privileged"
    # Steward's own login token is revoked at close, so it is not reported.
    assert connector.session.accessor not in records


def test_discovers_kv_entries(openbao: OpenBao, connector: VaultConnector) -> None:
    folder = unique("billing")
    kv2 = openbao.root.secrets.kv.v2
    kv2.create_or_update_secret(f"{folder}/db", secret={"password": "one"})
    kv2.create_or_update_secret(f"{folder}/db", secret={"password": "two"})
    kv2.update_metadata(
        f"{folder}/db",
        custom_metadata={"owner": "carol@example.com", "vendor": "stripe"},
    )
    openbao.root.secrets.kv.v1.create_or_update_secret(
        f"{folder}/nested/key", secret={"value": "x"}, mount_point="kv"
    )

    records = by_id(list(connector.discover()))

    entry = records[f"secret/{folder}/db"]
    assert entry.kind == "kv2_secret"
    assert entry.owner_email == "carol@example.com"
    assert entry.vendor == "stripe"
    assert entry.attributes["current_version"] == 2
    assert entry.attributes["version_count"] == 2
    assert entry.attributes["custom_metadata.owner"] == "carol@example.com"
    legacy = records[f"kv/{folder}/nested/key"]
    assert legacy.kind == "kv1_secret"
    assert legacy.attributes == {
        "mount": "kv",
        "path": f"{folder}/nested/key",
        "kv_version": 1,
    }
    assert legacy.owner_email is None


def test_discovery_is_deterministic(connector: VaultConnector) -> None:
    first = list(connector.discover())
    second = list(connector.discover())
    assert first == second


def test_revoke_token_by_accessor(openbao: OpenBao, connector: VaultConnector) -> None:
    token, accessor = token_of(openbao.root.auth.token.create(policies=["default"]))

    result = connector.revoke(token_ref(accessor))

    assert result.outcome is RevocationOutcome.REVOKED
    assert result.gone_at is not None
    with pytest.raises(hvac_errors.InvalidRequest):
        openbao.root.auth.token.lookup_accessor(accessor)
    with pytest.raises(hvac_errors.Forbidden):
        hvac.Client(url=openbao.url, token=token).auth.token.lookup_self()
    again = connector.revoke(token_ref(accessor))
    assert again.outcome is RevocationOutcome.ALREADY_GONE


def test_revoke_secret_id_by_accessor(
    openbao: OpenBao, connector: VaultConnector
) -> None:
    role = unique("worker")
    openbao.root.auth.approle.create_or_update_approle(role, token_policies=["default"])
    role_id = openbao.root.auth.approle.read_role_id(role)["data"]["role_id"]
    created = openbao.root.auth.approle.generate_secret_id(role)["data"]
    login = hvac.Client(url=openbao.url)
    login.auth.approle.login(role_id, created["secret_id"], use_token=False)

    result = connector.revoke(secret_id_ref(created["secret_id_accessor"], role))

    assert result.outcome is RevocationOutcome.REVOKED
    with pytest.raises(hvac_errors.InvalidPath):
        openbao.root.auth.approle.read_secret_id_accessor(
            role, created["secret_id_accessor"]
        )
    with pytest.raises(hvac_errors.InvalidRequest):
        login.auth.approle.login(role_id, created["secret_id"], use_token=False)
    # OpenBao returns 500 for a second destroy; the look-up still decides.
    again = connector.revoke(secret_id_ref(created["secret_id_accessor"], role))
    assert again.outcome is RevocationOutcome.ALREADY_GONE


def test_revoke_unknown_accessors_already_gone(connector: VaultConnector) -> None:
    token = connector.revoke(token_ref("nosuchaccessor0000000000"))
    secret_id = connector.revoke(
        secret_id_ref("00000000-0000-0000-0000-000000000000", "none")
    )
    assert token.outcome is RevocationOutcome.ALREADY_GONE
    assert secret_id.outcome is RevocationOutcome.ALREADY_GONE


def test_revoke_kv_entry_is_manual(connector: VaultConnector) -> None:
    result = connector.revoke(IdentityRef("vault-main", "kv2_secret", "secret/app/db"))
    assert result.outcome is RevocationOutcome.MANUAL
    assert "revoke it at the issuing system" in result.detail


def test_revoke_own_token_refused(connector: VaultConnector) -> None:
    assert connector.check_health().state is HealthState.OK
    own = connector.session.accessor
    assert own is not None
    result = connector.revoke(token_ref(own))
    assert result.outcome is RevocationOutcome.NEEDS_HUMAN


def test_permission_denied_needs_human(openbao: OpenBao) -> None:
    # A policy rendered for another AppRole mount grants nothing on approle/.
    other_mount = unique("elsewhere")
    role = unique("guarded")
    openbao.root.auth.approle.create_or_update_approle(role, token_policies=["default"])
    created = openbao.root.auth.approle.generate_secret_id(role)["data"]
    with openbao.scratch_mounts(approle=other_mount):
        limited = create("vault-main", openbao.steward_login(approle_mount=other_mount))
        try:
            result = limited.revoke(secret_id_ref(created["secret_id_accessor"], role))
        finally:
            limited.close()
    assert result.outcome is RevocationOutcome.NEEDS_HUMAN
    assert "permission denied" in result.detail
    still_there = openbao.root.auth.approle.read_secret_id_accessor(
        role, created["secret_id_accessor"]
    )
    assert still_there["data"]["secret_id_accessor"] == created["secret_id_accessor"]


def test_listing_denied_fails_discovery(openbao: OpenBao) -> None:
    mount = unique("kvdenied")
    with openbao.scratch_mounts(kv2=mount):
        options = {**openbao.steward_login(), "kv_mounts": [mount]}
        limited = create("vault-main", options)
        try:
            with pytest.raises(ConnectorPermissionError, match=r"steward-policy\.hcl"):
                list(limited.discover())
        finally:
            limited.close()


def test_login_token_revoked_on_close(openbao: OpenBao) -> None:
    started = create("vault-main", openbao.steward_login())
    assert started.check_health().state is HealthState.OK
    accessor = started.session.accessor
    assert accessor is not None
    started.close()
    with pytest.raises(hvac_errors.InvalidRequest):
        openbao.root.auth.token.lookup_accessor(accessor)


def test_token_auth_renews_low_ttl(openbao: OpenBao) -> None:
    policy = unique("steward-token")
    openbao.root.sys.create_or_update_acl_policy(policy, steward_policy())
    token, accessor = token_of(
        openbao.root.auth.token.create(policies=[policy], ttl="2m", renewable=True)
    )
    options: dict[str, Any] = {
        "url": openbao.url,
        "token": token,
        "renew_below_seconds": 3600,
    }
    started = create("vault-main", options)
    try:
        before = openbao.root.auth.token.lookup_accessor(accessor)["data"]
        assert before.get("last_renewal_time") in (None, 0)
        records = list(started.discover())
    finally:
        started.close()
    after = openbao.root.auth.token.lookup_accessor(accessor)["data"]
    assert after["last_renewal_time"]
    # A fixed token is an identity like any other, and close() keeps it alive.
    assert accessor in by_id(records)


def test_bad_credentials_fail_health(openbao: OpenBao) -> None:
    started = create("vault-main", {"url": openbao.url, "token": "not-a-token"})
    try:
        status = started.check_health()
    finally:
        started.close()
    assert status.state is HealthState.FAILING
    assert "permission denied" in status.detail
    assert "not-a-token" not in status.detail


def test_unreachable_server_fails_health() -> None:
    started = create(
        "vault-main",
        {"url": "http://127.0.0.1:9", "token": "x", "timeout_seconds": 2},
    )
    try:
        status = started.check_health()
    finally:
        started.close()
    assert status.state is HealthState.FAILING
    assert "ConnectionError" in status.detail
