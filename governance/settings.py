"""Steward's settings: one pydantic-settings object, loaded by the app factory.

Sources, highest priority first: keyword arguments (tests), environment
variables prefixed `STEWARD_` (nested fields joined with `__`, for example
`STEWARD_REVIEW__PRIVILEGED_INTERVAL_DAYS`), then an optional TOML file named
by `--config` or `STEWARD_CONFIG_FILE`. Nothing here reads the environment at
import time.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from governance.errors import ConfigurationError

ENV_PREFIX = "STEWARD_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "STEWARD_CONFIG_FILE"

# Quotes, brackets and commas are left out so that a list written in the
# wrong syntax is rejected instead of read as one odd address.
_EMAIL_PATTERN = re.compile(
    r"^[^@\s\"'\[\](),;<>]+@[^@\s\"'\[\](),;<>]+\.[^@\s\"'\[\](),;<>]+$"
)
# Slack user ids: U or W, then upper-case letters and digits.
_SLACK_USER_ID_PATTERN = re.compile(r"^[UW][A-Z0-9]{2,}$")


def normalize_email(value: str) -> str:
    """Return `value` stripped and lower-cased, or raise ValueError if invalid."""
    email = value.strip().lower()
    if not _EMAIL_PATTERN.match(email):
        raise ValueError(
            f"expected an email address like name@example.com, got {value!r}"
        )
    return email


def _split_list(value: Any) -> Any:
    """Return a list from an environment variable's text, or `value` unchanged.

    The text is either comma-separated values or a JSON list of strings.
    Raises ValueError for text that starts like JSON but is not such a list.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            raise ValueError(
                f"expected a JSON list or comma-separated values, got {value!r}"
            ) from None
        if not isinstance(items, list) or not all(
            isinstance(item, str) for item in items
        ):
            raise ValueError(f"expected a JSON list of strings, got {value!r}")
        return [item.strip() for item in items if item.strip()]
    return [item.strip() for item in text.split(",") if item.strip()]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewSettings(_Section):
    """Certification cycle lengths and the pace of reminders and escalations."""

    privileged_interval_days: PositiveInt = 90
    standard_interval_days: PositiveInt = 365
    response_days: PositiveInt = 14
    reminder_after_days: PositiveInt = 3
    reminder_interval_days: PositiveInt = 3
    escalate_after_days: PositiveInt = 7
    scope_reduction_deadline_days: PositiveInt = 30


class OwnershipSettings(_Section):
    """How long an orphan may wait for a claim, and what happens after."""

    claim_deadline_days: PositiveInt = 14
    revoke_unclaimed_automatically: bool = False


class SecuritySettings(_Section):
    """The security admins, who approve, override and see everything."""

    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("admins")
    @classmethod
    def _normalize_admins(cls, value: list[str]) -> list[str]:
        return [normalize_email(item) for item in value]


class GuardSettings(_Section):
    """Limits that stop a run or an event before it does mass damage."""

    max_gone_share: float = Field(default=0.2, gt=0.0, le=1.0)
    lifecycle_approval_threshold: PositiveInt = 25
    max_deactivation_share: float = Field(default=0.2, gt=0.0, le=1.0)
    # Below this many deactivations a people import needs no confirmation,
    # because small teams lose a large share with one departure.
    deactivation_guard_minimum: PositiveInt = 5


class MaturitySettings(_Section):
    """Shares of live identities that `steward report` needs for each stage.

    Each is a fraction in (0, 1]: 0.95 means 95 percent of live identities.
    """

    ownership_threshold: float = Field(default=0.95, gt=0.0, le=1.0)
    certification_threshold: float = Field(default=0.90, gt=0.0, le=1.0)
    lifecycle_threshold: float = Field(default=0.80, gt=0.0, le=1.0)


class SlackSettings(_Section):
    """The Slack app: credentials, the channels it posts to and its admins.

    Without a bot token and a signing secret the bot does not start (the
    console replaces Slack). With an app-level token (`xapp-`) the bot
    connects over Socket Mode instead of receiving HTTP requests.
    """

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    # Base URL of the Web API; tests point it at a loopback stand-in.
    api_url: str = "https://slack.com/api/"
    security_channel: str | None = None
    orphan_channel: str | None = None
    admin_user_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_usergroup_id: str | None = None
    # Seconds to wait for one Web API call before its outcome counts as unknown.
    timeout_seconds: PositiveInt = 10
    # How long a Slack user's look-up (by email, or of a user group) is reused.
    directory_cache_minutes: PositiveInt = 60

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_admin_user_ids(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("admin_user_ids")
    @classmethod
    def _check_admin_user_ids(cls, value: list[str]) -> list[str]:
        for user_id in value:
            if not _SLACK_USER_ID_PATTERN.match(user_id):
                raise ValueError(
                    f"expected a Slack user id like U012AB3CD, got {user_id!r}"
                )
        return value

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value if value.endswith("/") else value + "/"

    @property
    def configured(self) -> bool:
        """Whether the credentials needed to talk to Slack are present."""
        return self.bot_token is not None and (
            self.signing_secret is not None or self.app_token is not None
        )


class ServerSettings(_Section):
    """The HTTP server of `steward serve`: Slack requests, webhooks, health."""

    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    threads: PositiveInt = 8
    # Requests with a larger body are rejected before they are read.
    max_body_bytes: PositiveInt = 1_048_576
    # Seconds a stopping server lets requests in progress finish.
    shutdown_grace_seconds: PositiveInt = 10


# Below this length a shared secret is within reach of an offline guess
# against one captured signature.
MIN_WEBHOOK_SECRET_LENGTH = 32


class WebhookSettings(_Section):
    """Settings of the lifecycle webhook: its secret and how requests prove it.

    `mode` selects what a sender sends: `timestamp` signs the timestamp and
    the body, `body` signs the body alone, and `static` sends the secret
    itself as a token. Without a secret the webhook is disabled.
    """

    secret: SecretStr | None = None
    mode: Literal["timestamp", "body", "static"] = "timestamp"
    max_clock_skew_seconds: PositiveInt = 300
    max_body_bytes: PositiveInt = 65_536

    @field_validator("secret", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        # An empty variable, as a compose file writes for an unset one,
        # leaves the webhook disabled instead of failing the length check.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("secret")
    @classmethod
    def _check_secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < (
            MIN_WEBHOOK_SECRET_LENGTH
        ):
            raise ValueError(
                f"expected at least {MIN_WEBHOOK_SECRET_LENGTH} characters. "
                "Generate one with `openssl rand -hex 32`"
            )
        return value


class SchedulerSettings(_Section):
    """Intervals and switches of the scheduled jobs that `steward worker` runs.

    A job is due one interval after the stored start of its last run (see
    `governance.scheduler.store` for failed and unfinished runs). Inventory
    syncs take their interval from each connector's
    `discovery_interval_minutes`.
    """

    lease_seconds: int = Field(default=60, ge=5)
    plan_certifications_enabled: bool = True
    plan_certifications_interval_minutes: PositiveInt = 60
    # None: the review response period (`review.response_days`).
    certification_lookahead_days: PositiveInt | None = None
    send_reminders_enabled: bool = True
    send_reminders_interval_minutes: PositiveInt = 60
    escalate_reviews_enabled: bool = True
    escalate_reviews_interval_minutes: PositiveInt = 60
    expire_claims_enabled: bool = True
    expire_claims_interval_minutes: PositiveInt = 60
    check_scope_reductions_enabled: bool = True
    check_scope_reductions_interval_minutes: PositiveInt = 60
    scope_reduction_notice_days: PositiveInt = 3
    sync_inventory_enabled: bool = True
    drain_outbox_enabled: bool = True
    drain_outbox_interval_seconds: float = Field(default=5.0, ge=0.1)
    audit_head_enabled: bool = True
    audit_head_interval_minutes: PositiveInt = 1440


_JIRA_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Fields Steward fills on every ticket, which jira.extra_fields may not set.
JIRA_RESERVED_FIELDS = frozenset(
    {"project", "issuetype", "summary", "description", "labels"}
)


class JiraSettings(_Section):
    """The Jira project where every remediation is recorded as a ticket.

    Jira is optional: without `url`, or with `enabled` false, tickets wait in
    the outbox. Authentication is basic (`user`, an Atlassian account's email
    on Jira Cloud, with `api_token`) or a Data Center personal access token,
    sent as a bearer token.
    """

    enabled: bool = True
    url: str | None = None
    user: str | None = None
    api_token: SecretStr | None = None
    personal_access_token: SecretStr | None = None
    project: str | None = None
    issue_type: str = Field(default="Task", min_length=1)
    labels: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["steward"])
    extra_fields: dict[str, Any] = Field(default_factory=dict)
    done_transition: str = Field(default="Done", min_length=1)
    done_statuses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["Done", "Closed", "Resolved"], min_length=1
    )
    timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    poll_interval_minutes: PositiveInt = 15
    verify_tls: bool = True
    ca_bundle: Path | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"expected an http:// or https:// address, got {value!r}")
        return value.rstrip("/")

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str | None) -> str | None:
        if value is not None and not _JIRA_PROJECT_KEY.match(value):
            raise ValueError(
                f"expected a project key like SEC (capital letters, digits, _), "
                f"got {value!r}"
            )
        return value

    @field_validator("labels", "done_statuses", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label or any(character.isspace() for character in label):
                raise ValueError(f"a Jira label cannot contain spaces: {label!r}")
        return value

    @field_validator("extra_fields")
    @classmethod
    def _check_extra_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(JIRA_RESERVED_FIELDS & set(value))
        if reserved:
            raise ValueError(
                f"Steward sets {', '.join(reserved)} itself; remove them from "
                "jira.extra_fields"
            )
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"CA bundle not found: {value}")
        return value

    @model_validator(mode="after")
    def _check_complete(self) -> JiraSettings:
        if self.url is None:
            return self
        if self.project is None:
            raise ValueError("jira.url is set but jira.project is not")
        basic = self.user is not None or self.api_token is not None
        if basic and self.personal_access_token is not None:
            raise ValueError(
                "set either jira.user and jira.api_token, or "
                "jira.personal_access_token, not both"
            )
        if basic and (self.user is None or self.api_token is None):
            raise ValueError(
                "basic authentication needs both jira.user and jira.api_token"
            )
        if not basic and self.personal_access_token is None:
            raise ValueError(
                "jira.url is set without credentials: set jira.user and "
                "jira.api_token, or jira.personal_access_token"
            )
        if self.ca_bundle is not None and not self.verify_tls:
            raise ValueError("jira.ca_bundle is set but jira.verify_tls is false")
        return self

    def unavailable_reason(self) -> str | None:
        """Return why tickets cannot be sent now, or None when Jira is usable."""
        if self.url is None:
            return "Jira is not configured"
        if not self.enabled:
            return "Jira is disabled (jira.enabled is false)"
        return None


class ConnectorSettings(BaseModel):
    """One connector instance; its name (the table key) is its identities' source.

    `type` selects the implementation. Every other key is an option of that
    connector and is validated by the connector itself when it starts.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    enabled: bool = True
    discovery_interval_minutes: PositiveInt = 60

    def options(self) -> dict[str, Any]:
        """Return the connector-specific options, without the common keys."""
        return dict(self.model_extra or {})

    def __repr_args__(self) -> Any:
        # Options may hold credentials until the connector parses them into
        # SecretStr, so a repr shows their names only.
        yield "type", self.type
        yield "enabled", self.enabled
        yield "options", sorted(self.model_extra or {})


class Settings(BaseSettings):
    """The effective configuration of one Steward process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    database_url: str = "sqlite:///steward.db"
    database_password: SecretStr | None = None
    actor: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    review: ReviewSettings = ReviewSettings()
    ownership: OwnershipSettings = OwnershipSettings()
    security: SecuritySettings = SecuritySettings()
    guards: GuardSettings = GuardSettings()
    maturity: MaturitySettings = MaturitySettings()
    slack: SlackSettings = SlackSettings()
    server: ServerSettings = ServerSettings()
    webhook: WebhookSettings = WebhookSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    jira: JiraSettings = JiraSettings()
    connectors: dict[str, ConnectorSettings] = Field(default_factory=dict)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "expected an SQLAlchemy URL starting with sqlite:// or "
                f"postgresql+psycopg://, got {value.split(':', 1)[0]!r}"
            )
        return value

    @field_validator("actor")
    @classmethod
    def _check_actor(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


# A setting whose dotted name contains one of these never has its value shown.
_SECRET_WORDS = ("secret", "password", "token")


def _describe_error(error: Any) -> str:
    location = tuple(str(part) for part in error["loc"])
    dotted = ".".join(location)
    env_name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(location).upper()
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    given = error.get("input")
    secret = any(word in dotted for word in _SECRET_WORDS)
    shown = (
        ""
        if secret or isinstance(given, dict | list) or given is None
        else f" (got {given!r})"
    )
    return f"invalid setting {dotted} ({env_name}): {message}{shown}"


# STEWARD_ variables that are not settings: read by the CLI and the tests.
NON_SETTING_VARIABLES = frozenset(
    {"STEWARD_CONFIG_FILE", "STEWARD_TEST_POSTGRES_URL", "STEWARD_FAILPOINT"}
)


def _unknown_variables() -> list[str]:
    """Return STEWARD_ variables whose first name part is no setting."""
    known = {name.upper() for name in Settings.model_fields}
    unknown = []
    for variable in os.environ:
        if (
            not variable.upper().startswith(ENV_PREFIX)
            or variable in NON_SETTING_VARIABLES
        ):
            continue
        head = variable[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER, 1)[0].upper()
        if head not in known:
            unknown.append(variable)
    return sorted(unknown)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load the settings from the environment and an optional TOML file.

    Raises ConfigurationError naming every invalid setting and the expected
    form, and every STEWARD_ variable that names no setting (a misspelt
    variable would otherwise leave its setting at the default unnoticed).
    """
    unknown = _unknown_variables()
    if unknown:
        raise ConfigurationError(
            f"unknown setting {', '.join(unknown)}: check the spelling against "
            "`steward config show`"
        )
    path = config_file
    if path is None and os.environ.get(CONFIG_FILE_ENV):
        path = Path(os.environ[CONFIG_FILE_ENV])
    if path is not None and not path.is_file():
        raise ConfigurationError(f"config file not found: {path}")

    class _LoadedSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    try:
        return _LoadedSettings(**overrides)
    except ValidationError as error:
        lines = [_describe_error(item) for item in error.errors()]
        raise ConfigurationError("\n".join(lines)) from None
    except ValueError as error:
        # The TOML reader raises tomllib.TOMLDecodeError, a ValueError.
        raise ConfigurationError(f"invalid config file {path}: {error}") from None
