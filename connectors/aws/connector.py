"""The AWS connector: discovery, health checks and staged revocation.

One instance covers several accounts, each reached with the default
credential chain or an assumed role, and the Secrets Manager secrets of
several regions. IAM access keys are revoked in two stages: deactivate now,
delete after `delete_after_days`. A secret is scheduled for deletion and
reported as MANUAL, because it only stores a copy of a credential.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from connectors.aws.config import AwsOptions, parse_options
from connectors.aws.errors import translated
from connectors.aws.iam import ACCESS_KEY_KIND, IamFetcher, access_key_identities
from connectors.aws.revocation import AccessKeyRevoker, SecretRevoker
from connectors.aws.secrets import SECRET_KIND, fetch_secrets, secret_identities
from connectors.aws.session import AccountSession, open_sessions
from connectors.base import (
    DiscoveredIdentity,
    HealthState,
    HealthStatus,
    IdentityRef,
    RevocationOutcome,
    RevocationResult,
)
from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorNotFoundError,
    ConnectorPermissionError,
    ConnectorRateLimitedError,
)

logger = logging.getLogger(__name__)

KINDS = (ACCESS_KEY_KIND, SECRET_KIND)


class AwsConnector:
    """A configured AWS connector instance; see the module docstring."""

    def __init__(
        self, name: str, options: AwsOptions, sessions: list[AccountSession]
    ) -> None:
        self.name = name
        self.options = options
        self.sessions = sessions
        self.delete_after_days = options.delete_after_days
        self.grace_period = timedelta(days=options.delete_after_days)
        self.recovery_window_days = options.recovery_window_days

    # Discovery

    def discover(self) -> Iterator[DiscoveredIdentity]:
        """Yield every access key and secret of every account and region.

        The listing finishes before the first identity is yielded, so a
        failure anywhere raises a ConnectorError and never yields a partial
        snapshot. Each call lists everything again.
        """
        yield from self.snapshot()

    def snapshot(self) -> list[DiscoveredIdentity]:
        """Return every identity, sorted by kind and external id."""
        started = time.monotonic()
        identities: list[DiscoveredIdentity] = []
        for session in self.sessions:
            identities.extend(self._discover_account(session))
        identities.sort(key=lambda identity: (identity.kind, identity.external_id))
        for previous, current in itertools.pairwise(identities):
            if previous.external_id == current.external_id:
                raise ConnectorConfigError(
                    f"{current.external_id} was reported twice: two configured "
                    "accounts reach the same AWS account",
                    connector=self.name,
                )
        logger.info(
            "aws connector %s discovered %s identities in %s accounts in %.1f s",
            self.name,
            len(identities),
            len(self.sessions),
            time.monotonic() - started,
        )
        return identities

    def _discover_account(self, session: AccountSession) -> list[DiscoveredIdentity]:
        identities: list[DiscoveredIdentity] = []
        if self.options.discover_access_keys:
            fetcher = IamFetcher(
                session.iam(), connector=self.name, workers=self.options.lookup_workers
            )
            identities.extend(access_key_identities(fetcher.fetch(), self.options))
        if self.options.discover_secrets:
            for region in self.options.regions:
                secrets = fetch_secrets(
                    session.secrets(region), connector=self.name, region=region
                )
                identities.extend(secret_identities(secrets, self.options, region))
        return identities

    def check_health(self) -> HealthStatus:
        """Call STS GetCallerIdentity for every account and compare the account id."""
        problems: list[str] = []
        reached: list[str] = []
        for session in self.sessions:
            expected = session.account.expected_account_id
            try:
                actual = session.caller_account_id()
            except ConnectorError as error:
                logger.warning("aws connector %s health check: %s", self.name, error)
                problems.append(f"{expected or 'default credentials'}: {error}")
                continue
            if expected is not None and actual != expected:
                problems.append(
                    f"credentials for account {expected} belong to account {actual}"
                )
                continue
            reached.append(actual)
        if problems:
            return HealthStatus(HealthState.FAILING, "; ".join(problems))
        return HealthStatus(HealthState.OK, f"accounts {', '.join(reached)} reachable")

    # Revocation

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        """Deactivate an access key, or schedule a secret's deletion."""
        return self._act(
            identity,
            "revoke",
            lambda keys: keys.deactivate(self.delete_after_days),
            lambda secret: secret.schedule_deletion(self.recovery_window_days),
        )

    def finish(self, identity: IdentityRef) -> RevocationResult:
        """Delete an access key deactivated earlier; check a secret's deletion.

        The caller waits `delete_after_days` after revoke: IAM does not record
        when a key was deactivated, so the connector cannot check the wait.
        """
        return self._act(
            identity,
            "finish",
            lambda keys: keys.delete(),
            lambda secret: secret.confirm_deletion(),
        )

    def undo(self, identity: IdentityRef) -> RevocationResult:
        """Re-activate a deactivated access key, or cancel a secret's deletion."""
        return self._act(
            identity,
            "undo",
            lambda keys: keys.reactivate(),
            lambda secret: secret.restore(),
        )

    def _act(
        self,
        identity: IdentityRef,
        action: str,
        on_key: Callable[[AccessKeyRevoker], RevocationResult],
        on_secret: Callable[[SecretRevoker], RevocationResult],
    ) -> RevocationResult:
        try:
            if identity.kind == ACCESS_KEY_KIND:
                result = on_key(self._key_revoker(identity))
            elif identity.kind == SECRET_KIND:
                result = on_secret(self._secret_revoker(identity))
            else:
                result = RevocationResult(
                    RevocationOutcome.NEEDS_HUMAN,
                    f"unknown kind {identity.kind!r}; expected one of "
                    f"{', '.join(KINDS)}",
                )
        except ConnectorError as error:
            result = _failure(error, undo=action == "undo")
        log = logger.warning if result.outcome in _FAILED else logger.info
        log(
            "aws connector %s %s %s %s: %s (%s)",
            self.name,
            action,
            identity.kind,
            identity.external_id,
            result.outcome.value,
            result.detail,
        )
        return result

    def _session_for(self, account_id: str) -> AccountSession:
        for session in self.sessions:
            if session.account_id() == account_id:
                return session
        raise ConnectorConfigError(
            f"account {account_id} is not configured for aws connector {self.name}",
            connector=self.name,
        )

    def _key_revoker(self, identity: IdentityRef) -> AccessKeyRevoker:
        key_id = identity.external_id
        account_id = identity.attributes.get("account_id")
        user_name = identity.attributes.get("user_name")
        if isinstance(account_id, str) and isinstance(user_name, str):
            return AccessKeyRevoker(
                self._session_for(account_id), user_name, key_id, self.name
            )
        # Without the attributes discovery stores, ask each account whose
        # user the key belongs to, and confirm with that user's key list.
        denied: ConnectorPermissionError | None = None
        for session in self.sessions:
            try:
                with translated(self.name, f"GetAccessKeyLastUsed {key_id}"):
                    response = session.iam().get_access_key_last_used(
                        AccessKeyId=key_id
                    )
                revoker = AccessKeyRevoker(
                    session, response["UserName"], key_id, self.name
                )
                if revoker.status() is not None:
                    return revoker
            except ConnectorNotFoundError:
                continue
            except ConnectorPermissionError as error:
                denied = error
                continue
        if denied is not None:
            # An account that denied the look-up may hold the key.
            raise denied
        raise ConnectorNotFoundError(
            f"access key {key_id} not found in any configured account",
            connector=self.name,
        )

    def _secret_revoker(self, identity: IdentityRef) -> SecretRevoker:
        arn = identity.external_id
        parts = arn.split(":")
        if len(parts) < 7 or parts[2] != "secretsmanager":
            raise ConnectorConfigError(
                f"invalid secret ARN {arn!r}: expected "
                "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME",
                connector=self.name,
            )
        return SecretRevoker(self._session_for(parts[4]), arn, self.name)

    # Administration

    def describe(self) -> dict[str, Any]:
        """Return the effective options with the external ids masked."""
        return {"type": "aws", "name": self.name, **self.options.masked()}

    def close(self) -> None:
        for session in self.sessions:
            session.close()


_FAILED = frozenset({RevocationOutcome.RETRYABLE, RevocationOutcome.NEEDS_HUMAN})


def _failure(error: ConnectorError, *, undo: bool) -> RevocationResult:
    if isinstance(error, ConnectorRateLimitedError):
        return RevocationResult(
            RevocationOutcome.RETRYABLE, str(error), retry_after=error.retry_after
        )
    if error.retryable:
        return RevocationResult(RevocationOutcome.RETRYABLE, str(error))
    if isinstance(error, ConnectorNotFoundError) and not undo:
        # The look-up itself found nothing to revoke.
        return RevocationResult(RevocationOutcome.ALREADY_GONE, str(error))
    return RevocationResult(RevocationOutcome.NEEDS_HUMAN, str(error))


def create(name: str, options: Mapping[str, Any]) -> AwsConnector:
    """Validate the options and build the connector; no AWS call is made."""
    parsed = parse_options(name, dict(options))
    return AwsConnector(name, parsed, open_sessions(name, parsed))
