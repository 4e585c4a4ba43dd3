"""Credentials, assumed roles and clients for each configured AWS account.

Every client shares one botocore Config: the retry mode and total attempts
from the options (botocore's "standard" or "adaptive" mode, which back off
exponentially with jitter on throttling and transient errors) and explicit
timeouts. An account with a role gets credentials from STS AssumeRole,
fetched on first use and refreshed by botocore before they expire (15
minutes ahead by default in botocore 1.44).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)

from connectors.aws.config import AccountOptions, AwsOptions
from connectors.aws.errors import translated

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

logger = logging.getLogger(__name__)


def client_config(options: AwsOptions) -> Config:
    """Build the botocore Config shared by every client of one instance."""
    return Config(
        retries={
            "mode": options.retry_mode,
            "total_max_attempts": options.max_attempts,
        },
        connect_timeout=options.connect_timeout_seconds,
        read_timeout=options.read_timeout_seconds,
        # One connection per worker thread, plus room for the main thread.
        max_pool_connections=max(10, options.lookup_workers + 2),
        user_agent_extra="steward",
    )


class _AssumeRoleProvider(CredentialProvider):
    """Credentials of an assumed role, fetched and refreshed through STS."""

    METHOD = "steward-assume-role"
    CANONICAL_NAME = "StewardAssumeRole"

    def __init__(self, sts: STSClient, account: AccountOptions) -> None:
        super().__init__()
        self._sts = sts
        self._account = account

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(
            refresh_using=self._fetch, method=self.METHOD
        )

    def _fetch(self) -> dict[str, str]:
        account = self._account
        assert account.role_arn is not None  # noqa: S101 (only built with a role)
        request: dict[str, Any] = {
            "RoleArn": account.role_arn,
            "RoleSessionName": account.role_session_name,
            "DurationSeconds": account.role_duration_seconds,
        }
        if account.external_id is not None:
            request["ExternalId"] = account.external_id.get_secret_value()
        response = self._sts.assume_role(**request)
        credentials = response["Credentials"]
        logger.info(
            "assumed role %s, credentials valid until %s",
            account.role_arn,
            credentials["Expiration"].isoformat(),
        )
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }


class AccountSession:
    """Clients for one account, created on first use and shared by threads."""

    def __init__(
        self,
        connector: str,
        account: AccountOptions,
        options: AwsOptions,
        base_core: botocore.session.Session,
        config: Config,
    ) -> None:
        self.connector = connector
        self.account = account
        self.home_region = options.regions[0]
        self._config = config
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._account_id = account.expected_account_id
        base = boto3.Session(botocore_session=base_core)
        if account.role_arn is None:
            self.session = base
        else:
            with translated(connector, "create the STS client"):
                sts = base.client("sts", region_name=self.home_region, config=config)
            role_session = botocore.session.Session()
            # Sharing the loader shares its cache of parsed service models.
            role_session.register_component(
                "data_loader", base_core.get_component("data_loader")
            )
            role_session.register_component(
                "credential_provider",
                CredentialResolver(providers=[_AssumeRoleProvider(sts, account)]),
            )
            self.session = boto3.Session(botocore_session=role_session)

    def _client(self, service: str, region: str) -> Any:
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                with translated(self.connector, f"create the {service} client"):
                    client = self.session.client(
                        service,  # type: ignore[call-overload]
                        region_name=region,
                        config=self._config,
                    )
                self._clients[(service, region)] = client
            return client

    def iam(self) -> IAMClient:
        client: IAMClient = self._client("iam", self.home_region)
        return client

    def sts(self) -> STSClient:
        client: STSClient = self._client("sts", self.home_region)
        return client

    def secrets(self, region: str) -> SecretsManagerClient:
        client: SecretsManagerClient = self._client("secretsmanager", region)
        return client

    def caller_account_id(self) -> str:
        """Return the account id STS GetCallerIdentity reports for these credentials."""
        with translated(self.connector, f"GetCallerIdentity for {self.label}"):
            identity = self.sts().get_caller_identity()
        return identity["Account"]

    def account_id(self) -> str:
        """Return the configured account id, asking STS once when none is set."""
        if self._account_id is None:
            self._account_id = self.caller_account_id()
        return self._account_id

    @property
    def label(self) -> str:
        """A name for log lines and messages: the account id when known."""
        if self._account_id is None:
            return "the default-credentials account"
        return f"account {self._account_id}"

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def open_sessions(connector: str, options: AwsOptions) -> list[AccountSession]:
    """Build one AccountSession per configured account; no AWS call is made."""
    config = client_config(options)
    with translated(connector, "load the AWS configuration"):
        base_core = botocore.session.Session(profile=options.profile)
        # botocore checks the profile only when it is first used.
        base_core.get_scoped_config()
    return [
        AccountSession(connector, account, options, base_core, config)
        for account in options.accounts
    ]
