"""Revoking access keys in two stages and scheduling secrets for deletion.

Every action ends with a look-up of the object it changed, and the outcome is
what that look-up found, not what the change call returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from connectors.aws.errors import translated
from connectors.base import RevocationOutcome, RevocationResult
from connectors.errors import ConnectorNotFoundError, ConnectorRequestError

if TYPE_CHECKING:
    from connectors.aws.session import AccountSession

logger = logging.getLogger(__name__)

KeyStatus = Literal["Active", "Inactive"]
ACTIVE: KeyStatus = "Active"
INACTIVE: KeyStatus = "Inactive"
# Seconds before a retry when IAM or Secrets Manager has not yet shown a
# change that succeeded; both are eventually consistent.
CONSISTENCY_DELAY = 5.0


def _result(
    outcome: RevocationOutcome,
    detail: str,
    *,
    retry_after: float | None = None,
    gone_at: datetime | None = None,
) -> RevocationResult:
    return RevocationResult(
        outcome=outcome, detail=detail, retry_after=retry_after, gone_at=gone_at
    )


class AccessKeyRevoker:
    """Deactivates, deletes and re-activates one account's access keys."""

    def __init__(
        self, session: AccountSession, user_name: str, key_id: str, connector: str
    ) -> None:
        self.session = session
        self.user_name = user_name
        self.key_id = key_id
        self.connector = connector
        self.label = f"access key {key_id} of user {user_name} in {session.label}"

    def status(self) -> str | None:
        """Return the key's status from ListAccessKeys, or None when it is missing."""
        paginator = self.session.iam().get_paginator("list_access_keys")
        try:
            with translated(
                self.connector, f"ListAccessKeys for user {self.user_name}"
            ):
                for page in paginator.paginate(UserName=self.user_name):
                    for metadata in page["AccessKeyMetadata"]:
                        if metadata["AccessKeyId"] == self.key_id:
                            return metadata["Status"]
        except ConnectorNotFoundError:
            return None
        return None

    def _set_status(self, status: KeyStatus) -> None:
        action = f"UpdateAccessKey {self.key_id} to {status}"
        try:
            with translated(self.connector, action):
                self.session.iam().update_access_key(
                    UserName=self.user_name, AccessKeyId=self.key_id, Status=status
                )
        except ConnectorNotFoundError:
            # Deleted since the look-up; the next look-up reports it.
            logger.info("%s was deleted before %s", self.label, action)

    def deactivate(self, delete_after_days: int) -> RevocationResult:
        status = self.status()
        if status is None:
            return _result(RevocationOutcome.ALREADY_GONE, f"{self.label} not found")
        if status == INACTIVE:
            return _result(RevocationOutcome.DISABLED, f"{self.label} already inactive")
        self._set_status(INACTIVE)
        status = self.status()
        if status is None:
            return _result(RevocationOutcome.ALREADY_GONE, f"{self.label} not found")
        if status == ACTIVE:
            return _result(
                RevocationOutcome.RETRYABLE,
                f"{self.label} still active after UpdateAccessKey",
                retry_after=CONSISTENCY_DELAY,
            )
        logger.info("%s deactivated", self.label)
        return _result(
            RevocationOutcome.DISABLED,
            f"{self.label} deactivated; due for deletion after {delete_after_days} "
            "days",
        )

    def delete(self) -> RevocationResult:
        status = self.status()
        if status is None:
            return _result(RevocationOutcome.ALREADY_GONE, f"{self.label} not found")
        if status == ACTIVE:
            # Someone re-activated the key after Steward disabled it, so it
            # may be in use again: a person has to decide.
            return _result(
                RevocationOutcome.NEEDS_HUMAN,
                f"{self.label} is active again, so it was not deleted; "
                "deactivate it again or cancel the revocation",
            )
        try:
            with translated(self.connector, f"DeleteAccessKey {self.key_id}"):
                self.session.iam().delete_access_key(
                    UserName=self.user_name, AccessKeyId=self.key_id
                )
        except ConnectorNotFoundError:
            logger.info("%s was deleted by someone else", self.label)
        if self.status() is not None:
            return _result(
                RevocationOutcome.RETRYABLE,
                f"{self.label} still listed after DeleteAccessKey",
                retry_after=CONSISTENCY_DELAY,
            )
        logger.info("%s deleted", self.label)
        return _result(RevocationOutcome.REVOKED, f"{self.label} deleted")

    def reactivate(self) -> RevocationResult:
        status = self.status()
        if status is None:
            return _result(
                RevocationOutcome.NEEDS_HUMAN,
                f"{self.label} was deleted and cannot be restored; create a new key",
            )
        if status == ACTIVE:
            return _result(RevocationOutcome.RESTORED, f"{self.label} already active")
        self._set_status(ACTIVE)
        status = self.status()
        if status is None:
            return _result(
                RevocationOutcome.NEEDS_HUMAN,
                f"{self.label} was deleted and cannot be restored; create a new key",
            )
        if status != ACTIVE:
            return _result(
                RevocationOutcome.RETRYABLE,
                f"{self.label} still inactive after UpdateAccessKey",
                retry_after=CONSISTENCY_DELAY,
            )
        logger.info("%s re-activated", self.label)
        return _result(RevocationOutcome.RESTORED, f"{self.label} re-activated")


class SecretRevoker:
    """Schedules one secret's deletion, or cancels it."""

    def __init__(self, session: AccountSession, arn: str, connector: str) -> None:
        self.session = session
        self.arn = arn
        self.region = arn.split(":")[3]
        self.connector = connector
        self.label = f"secret {arn}"

    def describe(self) -> Mapping[str, Any] | None:
        """Return DescribeSecret's response, or None when the secret is missing."""
        try:
            with translated(self.connector, f"DescribeSecret {self.arn}"):
                return self.session.secrets(self.region).describe_secret(
                    SecretId=self.arn
                )
        except ConnectorNotFoundError:
            return None

    def schedule_deletion(self, recovery_window_days: int) -> RevocationResult:
        described = self.describe()
        if described is None:
            return _result(RevocationOutcome.ALREADY_GONE, f"{self.label} not found")
        if described.get("DeletedDate") is not None:
            return self._already_scheduled(described)

        deletion_date: datetime | None = None
        rejection: ConnectorRequestError | None = None
        try:
            with translated(self.connector, f"DeleteSecret {self.arn}"):
                response = self.session.secrets(self.region).delete_secret(
                    SecretId=self.arn, RecoveryWindowInDays=recovery_window_days
                )
            deletion_date = response.get("DeletionDate")
        except ConnectorNotFoundError:
            logger.info("%s was deleted before DeleteSecret", self.label)
        except ConnectorRequestError as error:
            # Secrets Manager returns InvalidRequestException when someone
            # scheduled the deletion since the look-up. The next look-up
            # tells that case apart from a request that is really invalid.
            rejection = error

        described = self.describe()
        if described is None:
            return _result(RevocationOutcome.ALREADY_GONE, f"{self.label} not found")
        if described.get("DeletedDate") is None:
            if rejection is not None:
                return _result(RevocationOutcome.NEEDS_HUMAN, str(rejection))
            return _result(
                RevocationOutcome.RETRYABLE,
                f"{self.label} not scheduled for deletion after DeleteSecret",
                retry_after=CONSISTENCY_DELAY,
            )
        if deletion_date is None:
            return self._already_scheduled(described)

        logger.info("%s scheduled for deletion on %s", self.label, deletion_date)
        return _result(
            RevocationOutcome.MANUAL,
            f"{self.label} scheduled for deletion on {deletion_date.isoformat()} "
            f"(recovery window {recovery_window_days} days). It only stores a "
            "copy: revoke the credential at the system that issued it.",
            gone_at=deletion_date,
        )

    def _already_scheduled(self, described: Mapping[str, Any]) -> RevocationResult:
        deleted: datetime = described["DeletedDate"]
        return _result(
            RevocationOutcome.ALREADY_GONE,
            f"{self.label} already scheduled for deletion ({deleted.isoformat()})",
            gone_at=deleted,
        )

    def confirm_deletion(self) -> RevocationResult:
        described = self.describe()
        if described is None:
            return _result(RevocationOutcome.ALREADY_GONE, f"{self.label} not found")
        if described.get("DeletedDate") is not None:
            return self._already_scheduled(described)
        return _result(
            RevocationOutcome.NEEDS_HUMAN,
            f"{self.label} is no longer scheduled for deletion; someone restored it",
        )

    def restore(self) -> RevocationResult:
        described = self.describe()
        if described is None:
            return _result(
                RevocationOutcome.NEEDS_HUMAN,
                f"{self.label} was deleted and cannot be restored",
            )
        if described.get("DeletedDate") is None:
            return _result(
                RevocationOutcome.RESTORED, f"{self.label} not scheduled for deletion"
            )
        with translated(self.connector, f"RestoreSecret {self.arn}"):
            self.session.secrets(self.region).restore_secret(SecretId=self.arn)
        described = self.describe()
        if described is None or described.get("DeletedDate") is not None:
            return _result(
                RevocationOutcome.RETRYABLE,
                f"{self.label} still scheduled for deletion after RestoreSecret",
                retry_after=CONSISTENCY_DELAY,
            )
        logger.info("%s restored", self.label)
        return _result(RevocationOutcome.RESTORED, f"{self.label} restored")
