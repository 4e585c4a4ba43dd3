"""Revocation of tokens and secret-ids by accessor, verified by a look-up.

Whether a credential is gone is decided by looking it up, never by the text
of an error. OpenBao 2.7.2 returns 200 with a warning for a second
revoke-accessor of the same token and 500 for a second secret-id destroy,
and some Vault versions return 400 "invalid accessor". A look-up that Vault rejects as
not found (404) or invalid (400) means the accessor no longer resolves.
Permission errors need a person; an unreachable or sealed server is
retryable. Neither is ever reported as revoked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.base import IdentityRef, RevocationOutcome, RevocationResult
from connectors.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorNotFoundError,
    ConnectorPermissionError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
)
from connectors.vault.client import VaultSession
from connectors.vault.discovery import (
    KIND_KV1,
    KIND_KV2,
    KIND_ROLE,
    KIND_SECRET_ID,
    KIND_TOKEN,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Credential:
    """How to look up and revoke one kind of credential."""

    label: str
    lookup: Callable[[], object]
    revoke: Callable[[], object]


def _failure(error: ConnectorError, step: str) -> RevocationResult:
    if isinstance(error, ConnectorRateLimitedError):
        return RevocationResult(
            RevocationOutcome.RETRYABLE,
            f"{step}: {error}",
            retry_after=error.retry_after,
        )
    if error.retryable:
        return RevocationResult(RevocationOutcome.RETRYABLE, f"{step}: {error}")
    if isinstance(error, ConnectorPermissionError | ConnectorAuthError):
        return RevocationResult(
            RevocationOutcome.NEEDS_HUMAN,
            f"{step}: {error}; Steward's policy must allow this "
            "(see deploy/vault/steward-policy.hcl)",
        )
    return RevocationResult(RevocationOutcome.NEEDS_HUMAN, f"{step}: {error}")


class VaultRevoker:
    """Revokes tokens and AppRole secret-ids of one server."""

    def __init__(self, session: VaultSession) -> None:
        self.session = session

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        """Revoke the credential behind `identity` and verify it is gone."""
        if identity.kind in {KIND_KV1, KIND_KV2}:
            return RevocationResult(
                RevocationOutcome.MANUAL,
                f"{identity.external_id} is a stored copy of a credential; revoke "
                "it at the issuing system, then delete or rotate the entry",
            )
        if identity.kind == KIND_ROLE:
            return RevocationResult(
                RevocationOutcome.NEEDS_HUMAN,
                f"Steward does not delete AppRole roles; revoke the secret-ids of "
                f"{identity.external_id} or delete the role in Vault",
            )
        if identity.kind == KIND_TOKEN:
            if identity.external_id == self.session.accessor:
                return RevocationResult(
                    RevocationOutcome.NEEDS_HUMAN,
                    "refusing to revoke the token Steward itself uses; rotate "
                    "Steward's credentials first",
                )
            credential = self._token(identity.external_id)
        elif identity.kind == KIND_SECRET_ID:
            found = self._secret_id(identity)
            if isinstance(found, RevocationResult):
                return found
            credential = found
        else:
            return RevocationResult(
                RevocationOutcome.NEEDS_HUMAN,
                f"unknown vault identity kind {identity.kind!r}",
            )
        return self._run(identity, credential)

    def _token(self, accessor: str) -> _Credential:
        body = {"accessor": accessor}
        return _Credential(
            label=f"token accessor {accessor}",
            lookup=lambda: self.session.read_post(
                "auth/token/lookup-accessor", body, action="look up token accessor"
            ),
            revoke=lambda: self.session.write(
                "auth/token/revoke-accessor", body, action="revoke token accessor"
            ),
        )

    def _secret_id(self, identity: IdentityRef) -> _Credential | RevocationResult:
        mount = identity.attributes.get("mount")
        role = identity.attributes.get("role")
        if not isinstance(mount, str) or not isinstance(role, str):
            return RevocationResult(
                RevocationOutcome.NEEDS_HUMAN,
                f"secret-id accessor {identity.external_id} has no mount and role "
                "attributes; run discovery again",
            )
        base = f"auth/{mount}/role/{role}/secret-id-accessor"
        body = {"secret_id_accessor": identity.external_id}

        def lookup() -> object:
            # OpenBao 2.7.2 returns 500 for a look-up under a deleted role, so
            # the role is read first: a missing role (404) has no secret-ids.
            self.session.read(f"auth/{mount}/role/{role}", action="read AppRole role")
            return self.session.read_post(
                f"{base}/lookup", body, action="look up secret-id accessor"
            )

        return _Credential(
            label=f"secret-id accessor {identity.external_id} of role {role!r}",
            lookup=lookup,
            revoke=lambda: self.session.write(
                f"{base}/destroy", body, action="destroy secret-id accessor"
            ),
        )

    def _resolves(self, credential: _Credential) -> bool:
        """Return whether the accessor still resolves; raise on other errors."""
        try:
            credential.lookup()
        except (ConnectorNotFoundError, ConnectorRequestError):
            return False
        return True

    def _run(self, identity: IdentityRef, credential: _Credential) -> RevocationResult:
        try:
            if not self._resolves(credential):
                logger.info(
                    "vault %s %s was already gone", identity.source, credential.label
                )
                return RevocationResult(
                    RevocationOutcome.ALREADY_GONE,
                    f"{credential.label} no longer resolves",
                    gone_at=datetime.now(UTC),
                )
        except ConnectorError as error:
            return _failure(error, "look-up before revoking")

        revoke_error: ConnectorError | None = None
        try:
            credential.revoke()
        except (ConnectorPermissionError, ConnectorAuthError) as error:
            return _failure(error, "revoke")
        except ConnectorError as error:
            if error.retryable:
                return _failure(error, "revoke")
            # Another actor may have revoked it in between; the look-up decides.
            revoke_error = error

        try:
            still_there = self._resolves(credential)
        except ConnectorError as error:
            return _failure(error, "look-up after revoking")
        if still_there:
            detail = f"{credential.label} still resolves after revoking"
            if revoke_error is not None:
                detail += f" ({revoke_error})"
            logger.error("vault %s: %s", identity.source, detail)
            return RevocationResult(RevocationOutcome.NEEDS_HUMAN, detail)
        outcome = (
            RevocationOutcome.REVOKED
            if revoke_error is None
            else RevocationOutcome.ALREADY_GONE
        )
        logger.info("vault %s %s: %s", identity.source, credential.label, outcome.value)
        return RevocationResult(
            outcome,
            f"{credential.label} no longer resolves",
            gone_at=datetime.now(UTC),
        )
