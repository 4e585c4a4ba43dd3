"""Settings of the lifecycle webhook: defaults, environment, invalid secrets."""

from __future__ import annotations

import os

import pytest

from governance.errors import ConfigurationError
from governance.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)


def test_defaults_disable_webhook() -> None:
    webhook = load_settings().webhook
    assert webhook.secret is None
    assert webhook.mode == "timestamp"
    assert webhook.max_clock_skew_seconds == 300
    assert webhook.max_body_bytes == 65_536


def test_environment_sets_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s" * 40
    monkeypatch.setenv("STEWARD_WEBHOOK__SECRET", secret)
    monkeypatch.setenv("STEWARD_WEBHOOK__MODE", "static")
    monkeypatch.setenv("STEWARD_WEBHOOK__MAX_CLOCK_SKEW_SECONDS", "60")
    webhook = load_settings().webhook
    assert webhook.secret is not None
    assert webhook.secret.get_secret_value() == secret
    assert webhook.mode == "static"
    assert webhook.max_clock_skew_seconds == 60
    assert secret not in repr(webhook)


def test_blank_secret_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_WEBHOOK__SECRET", "  ")
    assert load_settings().webhook.secret is None


def test_short_secret_rejected_unshown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_WEBHOOK__SECRET", "hunter2-but-longer")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "invalid setting webhook.secret (STEWARD_WEBHOOK__SECRET)" in message
    assert "at least 32 characters" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("STEWARD_WEBHOOK__MODE", "header", "invalid setting webhook.mode"),
        ("STEWARD_WEBHOOK__MAX_BODY_BYTES", "0", "greater than 0"),
        ("STEWARD_WEBHOOK__MAX_CLOCK_SKEW_SECONDS", "-5", "greater than 0"),
    ],
)
def test_invalid_webhook_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=expected):
        load_settings()
