"""Options of one Vault/OpenBao connector instance, validated at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.errors import ConnectorConfigError

DEFAULT_KUBERNETES_JWT = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_MOUNT_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def _check_mount(value: str) -> str:
    mount = value.strip("/")
    if not _MOUNT_PATTERN.match(mount):
        raise ValueError(f"invalid mount path {value!r}: expected a path like 'kv'")
    return mount


class TierRules(BaseModel):
    """When the policies attached to a credential make it privileged.

    A credential is privileged when one of its policies is named in
    `privileged_policies`, or grants a capability in `privileged_capabilities`
    on any path, or grants a capability in `write_capabilities` on a path that
    can match a prefix in `privileged_paths`. Policies in `ignored_policies`
    are not inspected: Vault's built-in `default` policy grants writes on
    self-service paths such as auth/token/renew-self, which would otherwise
    make every token privileged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    privileged_policies: list[str] = Field(default_factory=lambda: ["root"])
    privileged_capabilities: list[str] = Field(default_factory=lambda: ["sudo"])
    privileged_paths: list[str] = Field(
        default_factory=lambda: ["sys/", "auth/", "identity/"]
    )
    write_capabilities: list[str] = Field(
        default_factory=lambda: ["create", "update", "patch", "delete"]
    )
    ignored_policies: list[str] = Field(default_factory=lambda: ["default"])


class VaultOptions(BaseModel):
    """The options of a `type = "vault"` connector instance.

    `auth_method` selects how Steward logs in: with a fixed `token`, with an
    AppRole (`role_id`, `secret_id`) or with a Kubernetes service account
    (`kubernetes_role`, and the JWT read from `kubernetes_jwt_path` at each
    login). Mount lists left unset are read from sys/auth and sys/mounts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    namespace: str | None = None
    auth_method: Literal["token", "approle", "kubernetes"] = "token"
    token: SecretStr | None = None
    role_id: str | None = None
    secret_id: SecretStr | None = None
    approle_auth_mount: str = "approle"
    kubernetes_role: str | None = None
    kubernetes_jwt_path: Path = DEFAULT_KUBERNETES_JWT
    kubernetes_auth_mount: str = "kubernetes"
    verify_tls: bool = True
    ca_bundle: Path | None = None
    timeout_seconds: PositiveFloat = 30.0
    renew_below_seconds: PositiveInt = 600
    renew_increment_seconds: PositiveInt | None = None
    lookup_workers: int = Field(default=4, ge=1, le=64)
    discover_tokens: bool = True
    discover_approle: bool = True
    discover_kv: bool = True
    approle_mounts: list[str] | None = None
    kv_mounts: list[str] | None = None
    tiers: TierRules = TierRules()

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"expected an http:// or https:// address, got {value!r}")
        return value.rstrip("/")

    @field_validator("approle_auth_mount", "kubernetes_auth_mount")
    @classmethod
    def _check_auth_mount(cls, value: str) -> str:
        return _check_mount(value)

    @field_validator("approle_mounts", "kv_mounts")
    @classmethod
    def _check_mounts(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return sorted({_check_mount(item) for item in value})

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"CA bundle not found: {value}")
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> VaultOptions:
        if self.auth_method == "token" and self.token is None:
            raise ValueError("auth_method 'token' needs the option token")
        if self.auth_method == "approle" and (
            not self.role_id or self.secret_id is None
        ):
            raise ValueError("auth_method 'approle' needs role_id and secret_id")
        if self.auth_method == "kubernetes" and not self.kubernetes_role:
            raise ValueError("auth_method 'kubernetes' needs kubernetes_role")
        if self.ca_bundle is not None and not self.verify_tls:
            raise ValueError("ca_bundle is set but verify_tls is false")
        return self

    def tls_verify(self) -> bool | str:
        """Return the `verify` argument for requests: a CA bundle path or a flag."""
        if self.ca_bundle is not None:
            return str(self.ca_bundle)
        return self.verify_tls

    def masked(self) -> dict[str, Any]:
        """Return the options as plain JSON with credentials masked."""
        document = self.model_dump(mode="json")
        for key in ("token", "secret_id"):
            if document.get(key) is not None:
                document[key] = "**********"
        return document


def parse_options(name: str, options: dict[str, Any]) -> VaultOptions:
    """Validate the options of instance `name` or raise ConnectorConfigError."""
    try:
        return VaultOptions.model_validate(options)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = ".".join(str(part) for part in item["loc"]) or "options"
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{location}: {message}")
        raise ConnectorConfigError(
            f"invalid options for vault connector {name!r}: " + "; ".join(problems),
            connector=name,
        ) from None
