"""Staged revocation of access keys and deletion of secrets, on moto."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from connectors.aws.connector import AwsConnector
from connectors.base import (
    IdentityRef,
    RevocationOutcome,
    Source,
    StagedRevoker,
)
from tests.connectors.aws.conftest import (
    DEFAULT_ACCOUNT,
    OTHER_ACCOUNT,
    Throttle,
    iam_client,
    make_user,
)

Factory = Callable[..., AwsConnector]


def key_ref(key_id: str, user: str, account: str = DEFAULT_ACCOUNT) -> IdentityRef:
    return IdentityRef(
        source="aws-main",
        kind="iam_access_key",
        external_id=key_id,
        attributes={"account_id": account, "user_name": user},
    )


def secret_ref(arn: str) -> IdentityRef:
    return IdentityRef(source="aws-main", kind="secretsmanager_secret", external_id=arn)


def key_status(iam: Any, user: str, key_id: str) -> str | None:
    for metadata in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        if metadata["AccessKeyId"] == key_id:
            return str(metadata["Status"])
    return None


@pytest.fixture
def connector(make_connector: Factory) -> AwsConnector:
    return make_connector()


def test_connector_implements_interfaces(connector: AwsConnector) -> None:
    assert isinstance(connector, Source)
    assert isinstance(connector, StagedRevoker)
    assert connector.delete_after_days == 7
    assert connector.describe()["delete_after_days"] == 7


def test_key_revoke_disables(connector: AwsConnector) -> None:
    iam = iam_client()
    key_id = make_user(iam, "deployer")[0]

    first = connector.revoke(key_ref(key_id, "deployer"))
    again = connector.revoke(key_ref(key_id, "deployer"))

    assert first.outcome is RevocationOutcome.DISABLED
    assert "deletion after 7 days" in first.detail
    assert key_status(iam, "deployer", key_id) == "Inactive"
    assert again.outcome is RevocationOutcome.DISABLED
    assert "already inactive" in again.detail


def test_key_undo_reactivates(connector: AwsConnector) -> None:
    iam = iam_client()
    key_id = make_user(iam, "deployer")[0]
    connector.revoke(key_ref(key_id, "deployer"))

    result = connector.undo(key_ref(key_id, "deployer"))

    assert result.outcome is RevocationOutcome.RESTORED
    assert key_status(iam, "deployer", key_id) == "Active"


def test_key_finish_deletes(connector: AwsConnector) -> None:
    iam = iam_client()
    key_id, other_key = make_user(iam, "deployer", keys=2)
    connector.revoke(key_ref(key_id, "deployer"))

    result = connector.finish(key_ref(key_id, "deployer"))
    again = connector.finish(key_ref(key_id, "deployer"))
    undo = connector.undo(key_ref(key_id, "deployer"))

    assert result.outcome is RevocationOutcome.REVOKED
    assert key_status(iam, "deployer", key_id) is None
    assert key_status(iam, "deployer", other_key) == "Active"
    assert again.outcome is RevocationOutcome.ALREADY_GONE
    assert undo.outcome is RevocationOutcome.NEEDS_HUMAN
    assert "create a new key" in undo.detail


def test_key_finish_skips_reactivated_key(connector: AwsConnector) -> None:
    iam = iam_client()
    key_id = make_user(iam, "deployer")[0]
    connector.revoke(key_ref(key_id, "deployer"))
    iam.update_access_key(UserName="deployer", AccessKeyId=key_id, Status="Active")

    result = connector.finish(key_ref(key_id, "deployer"))

    assert result.outcome is RevocationOutcome.NEEDS_HUMAN
    assert "active again" in result.detail
    assert key_status(iam, "deployer", key_id) == "Active"


def test_key_of_deleted_user_gone(connector: AwsConnector) -> None:
    iam = iam_client()
    key_id = make_user(iam, "leaver")[0]
    iam.delete_access_key(UserName="leaver", AccessKeyId=key_id)
    iam.delete_user(UserName="leaver")

    result = connector.revoke(key_ref(key_id, "leaver"))

    assert result.outcome is RevocationOutcome.ALREADY_GONE
    assert "not found" in result.detail


def test_key_found_without_attributes(make_connector: Factory) -> None:
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/steward"
    connector = make_connector(accounts=[{}, {"role_arn": role}])
    remote = iam_client(OTHER_ACCOUNT)
    key_id = make_user(remote, "remote")[0]
    bare = IdentityRef(source="aws-main", kind="iam_access_key", external_id=key_id)

    result = connector.revoke(bare)

    assert result.outcome is RevocationOutcome.DISABLED
    assert key_status(remote, "remote", key_id) == "Inactive"


def test_key_in_unknown_account(connector: AwsConnector) -> None:
    result = connector.revoke(key_ref("AKIAEXAMPLE000000000", "x", "999999999999"))

    assert result.outcome is RevocationOutcome.NEEDS_HUMAN
    assert "account 999999999999 is not configured" in result.detail


def test_unknown_kind_needs_human(connector: AwsConnector) -> None:
    ref = IdentityRef(source="aws-main", kind="role", external_id="x")

    result = connector.revoke(ref)

    assert result.outcome is RevocationOutcome.NEEDS_HUMAN
    assert "unknown kind 'role'" in result.detail


def test_throttled_revoke_retryable(
    make_connector: Factory, throttle: Callable[..., Throttle]
) -> None:
    key_id = make_user(iam_client(), "deployer")[0]
    throttle(
        lambda operation, _: "Throttling" if operation == "ListAccessKeys" else None
    )
    connector = make_connector(max_attempts=1)

    result = connector.revoke(key_ref(key_id, "deployer"))

    assert result.outcome is RevocationOutcome.RETRYABLE
    assert "Throttling" in result.detail
    assert key_status(iam_client(), "deployer", key_id) == "Active"


def test_secret_revoke_schedules_deletion(connector: AwsConnector) -> None:
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = client.create_secret(Name="db", SecretString="x")["ARN"]
    before = datetime.now(UTC)

    result = connector.revoke(secret_ref(arn))

    assert result.outcome is RevocationOutcome.MANUAL
    assert "revoke the credential at the system that issued it" in result.detail
    assert result.gone_at is not None
    assert result.gone_at - before >= timedelta(days=30) - timedelta(minutes=1)
    assert client.describe_secret(SecretId=arn).get("DeletedDate") is not None


def test_secret_recovery_window_setting(make_connector: Factory) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="db", SecretString="x")["ARN"]
    before = datetime.now(UTC)

    result = make_connector(recovery_window_days=7).revoke(secret_ref(arn))

    assert result.gone_at is not None
    assert result.gone_at - before < timedelta(days=8)
    assert "recovery window 7 days" in result.detail


def test_secret_already_scheduled_gone(connector: AwsConnector) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="db", SecretString="x")["ARN"]
    deletion = client.delete_secret(SecretId=arn, RecoveryWindowInDays=10)

    result = connector.revoke(secret_ref(arn))
    finished = connector.finish(secret_ref(arn))

    assert result.outcome is RevocationOutcome.ALREADY_GONE
    assert result.gone_at == deletion["DeletionDate"]
    assert finished.outcome is RevocationOutcome.ALREADY_GONE


def test_secret_undo_restores(connector: AwsConnector) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="db", SecretString="x")["ARN"]
    connector.revoke(secret_ref(arn))

    result = connector.undo(secret_ref(arn))
    finished = connector.finish(secret_ref(arn))

    assert result.outcome is RevocationOutcome.RESTORED
    assert client.describe_secret(SecretId=arn).get("DeletedDate") is None
    assert finished.outcome is RevocationOutcome.NEEDS_HUMAN


def test_missing_secret_gone(connector: AwsConnector) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:{DEFAULT_ACCOUNT}:secret:none-AbCdEf"

    result = connector.revoke(secret_ref(arn))

    assert result.outcome is RevocationOutcome.ALREADY_GONE


def test_invalid_secret_arn(connector: AwsConnector) -> None:
    result = connector.revoke(secret_ref("not-an-arn"))

    assert result.outcome is RevocationOutcome.NEEDS_HUMAN
    assert "invalid secret ARN" in result.detail
