"""Options of one AWS connector instance, validated at start-up."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.errors import ConnectorConfigError

MASK = "**********"
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")


class AccountOptions(BaseModel):
    """One AWS account, reached with the default credential chain or a role.

    With `role_arn` unset, Steward uses the credentials the default chain
    finds (environment, shared files, container or instance role). With it
    set, Steward assumes the role with those credentials, passing
    `external_id` when the role's trust policy requires one. botocore
    refreshes the role's credentials 15 minutes before they expire, so a
    `role_duration_seconds` near the minimum of 900 means a refresh before
    almost every call.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str | None = None
    role_arn: str | None = None
    external_id: SecretStr | None = None
    role_session_name: str = "steward"
    role_duration_seconds: int = Field(default=3600, ge=900, le=43200)

    @field_validator("account_id")
    @classmethod
    def _check_account_id(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT_ID.match(value):
            raise ValueError(f"expected a 12-digit AWS account id, got {value!r}")
        return value

    @field_validator("role_arn")
    @classmethod
    def _check_role_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError(
                "expected a role ARN like arn:aws:iam::123456789012:role/steward, "
                f"got {value!r}"
            )
        return value

    @field_validator("role_session_name")
    @classmethod
    def _check_session_name(cls, value: str) -> str:
        if not _SESSION_NAME.match(value):
            raise ValueError(
                f"expected 2 to 64 letters, digits or any of _+=,.@- , got {value!r}"
            )
        return value

    @field_validator("external_id")
    @classmethod
    def _check_external_id(cls, value: SecretStr | None) -> SecretStr | None:
        # STS accepts 2 to 1224 characters; the value is not echoed back.
        if value is not None and not 2 <= len(value.get_secret_value()) <= 1224:
            raise ValueError("expected an external id of 2 to 1224 characters")
        return value

    @model_validator(mode="after")
    def _check_role(self) -> AccountOptions:
        if self.external_id is not None and self.role_arn is None:
            raise ValueError("external_id is set but role_arn is not")
        role_account = self.role_account_id
        if role_account and self.account_id and self.account_id != role_account:
            raise ValueError(
                f"account_id {self.account_id} differs from the account of "
                f"role_arn {self.role_arn}"
            )
        return self

    @property
    def role_account_id(self) -> str | None:
        """The account id in `role_arn`, or None without a role."""
        if self.role_arn is None:
            return None
        return self.role_arn.split(":")[4]

    @property
    def expected_account_id(self) -> str | None:
        """The configured account id, else the role's; None for the default chain."""
        return self.account_id or self.role_account_id


class TierRules(BaseModel):
    """When the policies of an IAM user make its access keys privileged.

    A key is privileged when its user, directly or through a group, has a
    managed policy named in `privileged_policies`. It is also privileged when
    a policy statement allows a wildcard action ("*" or "service:*", when
    `wildcard_actions` is true) or a write action of a service in
    `write_sensitive_services`. An
    action counts as a write unless its name starts with one of
    `read_only_prefixes`. An Allow statement with NotAction grants every
    action but the listed ones, so it counts as a wildcard.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    privileged_policies: list[str] = Field(
        default_factory=lambda: ["AdministratorAccess", "IAMFullAccess"]
    )
    wildcard_actions: bool = True
    write_sensitive_services: list[str] = Field(default_factory=lambda: ["iam"])
    read_only_prefixes: list[str] = Field(
        default_factory=lambda: ["Get", "List", "Generate", "Simulate"]
    )

    @field_validator("write_sensitive_services")
    @classmethod
    def _lower_services(cls, value: list[str]) -> list[str]:
        return sorted({item.strip().lower() for item in value if item.strip()})


class TagNames(BaseModel):
    """Tag keys read for the owner and the business entities, first match wins.

    Keys match case-insensitively because AWS accounts often mix `Owner`
    and `owner`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: list[str] = Field(default_factory=lambda: ["Owner"], min_length=1)
    application: list[str] = Field(default_factory=lambda: ["Application"])
    project: list[str] = Field(default_factory=lambda: ["Project"])
    vendor: list[str] = Field(default_factory=lambda: ["Vendor"])


class AwsOptions(BaseModel):
    """The options of a `type = "aws"` connector instance.

    `regions` lists the regions whose Secrets Manager secrets are discovered;
    the first one also hosts the IAM and STS clients. `accounts` defaults to
    one account reached with the default credential chain.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: list[str] = Field(min_length=1)
    accounts: list[AccountOptions] = Field(
        default_factory=lambda: [AccountOptions()], min_length=1
    )
    profile: str | None = None
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(default=8, ge=1, le=20)
    connect_timeout_seconds: PositiveFloat = 10.0
    read_timeout_seconds: PositiveFloat = 30.0
    lookup_workers: int = Field(default=4, ge=1, le=32)
    discover_access_keys: bool = True
    discover_secrets: bool = True
    delete_after_days: int = Field(default=7, ge=0, le=365)
    recovery_window_days: int = Field(default=30, ge=7, le=30)
    tags: TagNames = TagNames()
    tiers: TierRules = TierRules()

    @field_validator("regions")
    @classmethod
    def _check_regions(cls, value: list[str]) -> list[str]:
        regions: list[str] = []
        for item in value:
            if not _REGION.match(item):
                raise ValueError(f"expected a region name like eu-west-1, got {item!r}")
            if item not in regions:
                regions.append(item)
        return regions

    @model_validator(mode="after")
    def _check_accounts(self) -> AwsOptions:
        seen: set[str] = set()
        default_chain = 0
        for account in self.accounts:
            if account.role_arn is None:
                default_chain += 1
            account_id = account.expected_account_id
            if account_id is not None:
                if account_id in seen:
                    raise ValueError(f"account {account_id} is listed twice")
                seen.add(account_id)
        if default_chain > 1:
            raise ValueError(
                "only one account may use the default credential chain; give the "
                "others a role_arn"
            )
        return self

    def masked(self) -> dict[str, Any]:
        """Return the options as plain JSON with credentials masked."""
        document = self.model_dump(mode="json")
        for account in document["accounts"]:
            if account.get("external_id") is not None:
                account["external_id"] = MASK
        return document


def parse_options(name: str, options: dict[str, Any]) -> AwsOptions:
    """Validate the options of instance `name` or raise ConnectorConfigError."""
    try:
        return AwsOptions.model_validate(options)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = ".".join(str(part) for part in item["loc"]) or "options"
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{location}: {message}")
        raise ConnectorConfigError(
            f"invalid options for aws connector {name!r}: " + "; ".join(problems),
            connector=name,
        ) from None
