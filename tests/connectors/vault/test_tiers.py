"""Risk tiers from Vault ACL policies."""

from __future__ import annotations

import pytest

from connectors.vault.config import TierRules
from connectors.vault.tiers import (
    PolicyParseError,
    decide_tier,
    parse_policy,
    pattern_reaches,
    privileged_grant,
)
from tests.openbao import POLICY_FILE

RULES = TierRules()

HCL_POLICY = """
# comment
path "secret/data/app/*" {
  capabilities = ["read", "list"]
  allowed_parameters = {
    "key" = ["a", "b"]
  }
}
// another comment
path "sys/mounts/*" { capabilities = ["create", "update"] }
/* block
   comment */
path "auth/token/create" {
  capabilities = ["update"]
  policy = "write"
}
"""


def test_hcl_policy_parsed() -> None:
    rules = dict(parse_policy(HCL_POLICY))
    assert rules == {
        "auth/token/create": frozenset({"update"}),
        "secret/data/app/*": frozenset({"read", "list"}),
        "sys/mounts/*": frozenset({"create", "update"}),
    }


def test_json_policy_parsed() -> None:
    text = '{"path": {"sys/*": {"capabilities": ["sudo", "read"]}}}'
    assert parse_policy(text) == [("sys/*", frozenset({"sudo", "read"}))]


def test_broken_policy_rejected() -> None:
    with pytest.raises(PolicyParseError):
        parse_policy('path "x" { capabilities = ["read"]')


@pytest.mark.parametrize(
    ("pattern", "prefix", "expected"),
    [
        ("sys/*", "sys/", True),
        ("sys/mounts", "sys/", True),
        ("*", "auth/", True),
        ("s*", "sys/", True),
        ("+/mounts", "sys/", True),
        ("auth/+/login", "auth/", True),
        ("secret/data/*", "sys/", False),
        ("sy", "sys/", False),
        ("identity/entity", "sys/", False),
    ],
)
def test_pattern_reaches(pattern: str, prefix: str, expected: bool) -> None:
    assert pattern_reaches(pattern, prefix) is expected


def test_sudo_is_privileged() -> None:
    grant = privileged_grant(
        parse_policy('path "x/*" { capabilities = ["sudo"] }'), RULES
    )
    assert grant == "grants sudo on 'x/*'"


def test_write_on_auth_is_privileged() -> None:
    grant = privileged_grant(parse_policy(HCL_POLICY), RULES)
    assert grant == "grants update on 'auth/token/create' (under auth/)"


def test_read_only_is_standard() -> None:
    text = 'path "sys/*" { capabilities = ["read", "list"] }'
    assert privileged_grant(parse_policy(text), RULES) is None


def test_deny_grants_nothing() -> None:
    text = 'path "sys/*" { capabilities = ["deny", "sudo"] }'
    assert privileged_grant(parse_policy(text), RULES) is None


def test_rules_are_configurable() -> None:
    rules = TierRules(privileged_paths=["secret/"], privileged_capabilities=[])
    text = 'path "secret/data/*" { capabilities = ["update"] }'
    assert privileged_grant(parse_policy(text), rules) == (
        "grants update on 'secret/data/*' (under secret/)"
    )


def test_root_policy_is_privileged_by_name() -> None:
    decision = decide_tier(["default", "root"], {}, RULES)
    assert decision.tier == "privileged"
    assert decision.reason == "policy 'root' is privileged by name"


def test_standard_reason_names_policies() -> None:
    decision = decide_tier(["reader", "default"], {"reader": None}, RULES)
    assert decision.tier == "standard"
    assert decision.reason == (
        "policies (default, reader) grant no sudo and no writes under "
        "sys/, auth/, identity/"
    )


def test_ignored_policy_not_counted() -> None:
    decision = decide_tier(["default"], {"default": "grants update on 'sys/x'"}, RULES)
    assert decision.tier == "standard"


def test_steward_policy_is_privileged() -> None:
    # Steward can revoke every credential, so its own policy must rank high.
    grant = privileged_grant(parse_policy(POLICY_FILE.read_text()), RULES)
    assert grant == "grants sudo on 'auth/token/accessors'"


def test_steward_policy_never_reads_kv_data() -> None:
    rules = dict(parse_policy(POLICY_FILE.read_text()))
    assert not any("/data" in pattern for pattern in rules)
    assert rules["kv/*"] == frozenset({"list"})
    assert rules["secret/metadata/*"] == frozenset({"list", "read"})
