"""Settings: defaults, TOML file, environment overrides and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from governance.errors import ConfigurationError
from governance.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///steward.db"
    assert settings.review.privileged_interval_days == 90
    assert settings.review.standard_interval_days == 365
    assert settings.ownership.claim_deadline_days == 14
    assert settings.guards.max_gone_share == 0.2
    assert settings.security.admins == []


def test_environment_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "steward.toml"
    config.write_text(
        'database_url = "sqlite:///from-file.db"\n'
        "[review]\n"
        "privileged_interval_days = 60\n"
        "standard_interval_days = 180\n"
        "[security]\n"
        'admins = ["Sec@Example.com"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("STEWARD_REVIEW__PRIVILEGED_INTERVAL_DAYS", "30")
    monkeypatch.setenv("STEWARD_CONFIG_FILE", str(config))

    settings = load_settings()
    assert settings.database_url == "sqlite:///from-file.db"
    assert settings.review.privileged_interval_days == 30
    assert settings.review.standard_interval_days == 180
    assert settings.security.admins == ["sec@example.com"]


def test_admins_from_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_SECURITY__ADMINS", "a@example.com, B@example.org")
    assert load_settings().security.admins == ["a@example.com", "b@example.org"]


def test_admins_from_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_SECURITY__ADMINS", '["a@example.com", "B@example.org"]')
    assert load_settings().security.admins == ["a@example.com", "b@example.org"]


def test_list_settings_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_SLACK__ADMIN_USER_IDS", '["U0ADMIN", "W0OTHER"]')
    monkeypatch.setenv("STEWARD_JIRA__LABELS", '["steward", "nhi"]')
    settings = load_settings()
    assert settings.slack.admin_user_ids == ["U0ADMIN", "W0OTHER"]
    assert settings.jira.labels == ["steward", "nhi"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("STEWARD_SECURITY__ADMINS", '["a@x.com"', "expected a JSON list"),
        ("STEWARD_SECURITY__ADMINS", "[1, 2]", "expected a JSON list of strings"),
        ("STEWARD_SECURITY__ADMINS", '"a@x.com"', "expected an email address"),
        ("STEWARD_SECURITY__ADMINS", "<a@x.com>", "expected an email address"),
        ("STEWARD_SLACK__ADMIN_USER_IDS", "admin@example.com", "Slack user id"),
        ("STEWARD_SLACK__ADMIN_USER_IDS", '["U0ADMIN"', "expected a JSON list"),
        ("STEWARD_JIRA__LABELS", '{"a": 1}', "invalid setting jira.labels"),
    ],
)
def test_malformed_list_rejected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="invalid setting") as raised:
        load_settings()
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "STEWARD_REVIEW__PRIVILEGED_INTERVAL_DAYS",
            "soon",
            "invalid setting review.privileged_interval_days "
            "(STEWARD_REVIEW__PRIVILEGED_INTERVAL_DAYS)",
        ),
        ("STEWARD_REVIEW__STANDARD_INTERVAL_DAYS", "0", "greater than 0"),
        ("STEWARD_GUARDS__MAX_GONE_SHARE", "1.5", "less than or equal to 1"),
        ("STEWARD_SECURITY__ADMINS", "not-an-email", "expected an email address"),
        ("STEWARD_DATABASE_URL", "mysql://x", "expected an SQLAlchemy URL"),
        ("STEWARD_LOG_FORMAT", "xml", "invalid setting log_format"),
    ],
)
def test_invalid_setting_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="invalid setting") as raised:
        load_settings()
    assert expected in str(raised.value)


def test_unknown_key_in_file_rejected(tmp_path: Path) -> None:
    config = tmp_path / "steward.toml"
    config.write_text("[review]\nprivileged_intervall_days = 30\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="privileged_intervall_days"):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="config file not found"):
        load_settings(tmp_path / "absent.toml")


def test_malformed_toml(tmp_path: Path) -> None:
    config = tmp_path / "steward.toml"
    config.write_text("[review\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="invalid config file"):
        load_settings(config)


def test_password_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_DATABASE_PASSWORD", "hunter2-marker")
    settings = load_settings()
    assert "hunter2-marker" not in repr(settings)
    assert "hunter2-marker" not in str(settings.model_dump(mode="json"))
    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == "hunter2-marker"


def test_misspelt_variable_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_DATABSE_URL", "sqlite:///elsewhere.db")
    with pytest.raises(ConfigurationError, match="unknown setting STEWARD_DATABSE_URL"):
        load_settings()


def test_non_setting_variables_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_TEST_POSTGRES_URL", "postgresql+psycopg://x@y/z")
    monkeypatch.setenv("STEWARD_FAILPOINT", "none")
    assert load_settings().database_url == "sqlite:///steward.db"


JIRA_BASE = {
    "STEWARD_JIRA__URL": "https://example.atlassian.net/",
    "STEWARD_JIRA__USER": "steward@example.com",
    "STEWARD_JIRA__API_TOKEN": "jira-token-marker",
    "STEWARD_JIRA__PROJECT": "SEC",
}


def test_jira_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in JIRA_BASE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STEWARD_JIRA__LABELS", "steward, nhi")
    monkeypatch.setenv(
        "STEWARD_JIRA__EXTRA_FIELDS", '{"customfield_10010": {"value": "Security"}}'
    )
    jira = load_settings().jira
    assert jira.url == "https://example.atlassian.net"
    assert jira.labels == ["steward", "nhi"]
    assert jira.extra_fields == {"customfield_10010": {"value": "Security"}}
    assert jira.done_statuses == ["Done", "Closed", "Resolved"]
    assert jira.unavailable_reason() is None
    assert "jira-token-marker" not in repr(jira)
    assert "jira-token-marker" not in str(load_settings().model_dump(mode="json"))


def test_jira_optional() -> None:
    jira = load_settings().jira
    assert jira.url is None
    assert jira.unavailable_reason() == "Jira is not configured"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"STEWARD_JIRA__PROJECT": None}, "jira.url is set but jira.project is not"),
        ({"STEWARD_JIRA__API_TOKEN": None}, "needs both jira.user and jira.api_token"),
        (
            {"STEWARD_JIRA__USER": None, "STEWARD_JIRA__API_TOKEN": None},
            "jira.url is set without credentials",
        ),
        ({"STEWARD_JIRA__PERSONAL_ACCESS_TOKEN": "pat"}, "not both"),
        ({"STEWARD_JIRA__PROJECT": "sec-1"}, "expected a project key like SEC"),
        ({"STEWARD_JIRA__URL": "jira.example.com"}, "expected an http:// or https://"),
        ({"STEWARD_JIRA__LABELS": "steward,two words"}, "cannot contain spaces"),
        (
            {"STEWARD_JIRA__EXTRA_FIELDS": '{"summary": "x"}'},
            "Steward sets summary itself",
        ),
        ({"STEWARD_JIRA__TIMEOUT_SECONDS": "0"}, "greater than 0"),
    ],
)
def test_invalid_jira_settings(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, str | None], expected: str
) -> None:
    for name, value in {**JIRA_BASE, **changes}.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="invalid setting jira") as raised:
        load_settings()
    assert expected in str(raised.value)
    assert "jira-token-marker" not in str(raised.value)
