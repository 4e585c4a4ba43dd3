"""Options of the vault connector: validation, masking and settings overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.errors import ConnectorConfigError
from connectors.registry import build_connectors
from connectors.vault.config import VaultOptions, parse_options
from connectors.vault.connector import VaultConnector, create
from governance.settings import load_settings


def options(**overrides: Any) -> dict[str, Any]:
    return {"url": "https://vault.example.com:8200", "token": "s.abc", **overrides}


def test_token_options_accepted() -> None:
    parsed = parse_options("vault-main", options())
    assert parsed.auth_method == "token"
    assert parsed.verify_tls is True
    assert parsed.tls_verify() is True
    assert parsed.tiers.privileged_policies == ["root"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": None}, "url"),
        ({"url": "vault.example.com"}, "url: expected an http:// or https://"),
        ({"token": None}, "auth_method 'token' needs the option token"),
        ({"auth_method": "approle"}, "needs role_id and secret_id"),
        ({"auth_method": "kubernetes"}, "needs kubernetes_role"),
        ({"auth_method": "ldap"}, "auth_method"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "CA bundle not found"),
        ({"kv_mounts": ["bad path!"]}, "invalid mount path"),
        ({"lookup_workers": 0}, "lookup_workers"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_options_name_instance(overrides: dict[str, Any], message: str) -> None:
    given = {
        key: value for key, value in options(**overrides).items() if value is not None
    }
    with pytest.raises(ConnectorConfigError) as caught:
        create("vault-main", given)
    assert "vault connector 'vault-main'" in str(caught.value)
    assert message in str(caught.value)
    assert caught.value.connector == "vault-main"


def test_invalid_options_hide_secret() -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        create("vault-main", options(secret_id="very-secret", timeout_seconds=-1))
    assert "very-secret" not in str(caught.value)
    assert "s.abc" not in str(caught.value)


def test_ca_bundle_used_for_verification(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    parsed = parse_options("v", options(ca_bundle=str(bundle)))
    assert parsed.tls_verify() == str(bundle)


def test_describe_masks_credentials() -> None:
    connector = create("vault-main", options(secret_id="hidden"))
    described = connector.describe()
    assert described["token"] == "**********"
    assert described["secret_id"] == "**********"
    assert described["name"] == "vault-main"
    assert "s.abc" not in repr(described)
    connector.close()


def test_registry_builds_two_instances() -> None:
    started = build_connectors(
        {
            "vault-a": ("vault", options()),
            "vault-b": ("vault", options(url="https://other.example.com")),
        }
    )
    assert sorted(started) == ["vault-a", "vault-b"]
    assert all(isinstance(item, VaultConnector) for item in started.values())
    assert started["vault-b"].describe()["url"] == "https://other.example.com"
    for connector in started.values():
        connector.close()


def test_registry_names_bad_instance() -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        build_connectors(
            {"vault-a": ("vault", options()), "vault-b": ("vault", {"url": "x"})}
        )
    assert caught.value.connector == "vault-b"
    assert "'vault-b'" in str(caught.value)


def test_settings_env_overrides_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "steward.toml"
    config.write_text(
        '[connectors.vault_main]\ntype = "vault"\n'
        'url = "https://vault.example.com"\ntoken = "from-file"\n'
    )
    monkeypatch.setenv("STEWARD_CONNECTORS__VAULT_MAIN__TOKEN", "from-env")
    settings = load_settings(config)
    parsed = VaultOptions.model_validate(settings.connectors["vault_main"].options())
    assert parsed.token is not None
    assert parsed.token.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings.connectors["vault_main"])
