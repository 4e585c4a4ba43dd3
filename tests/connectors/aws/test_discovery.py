"""Discovery of access keys and secrets on moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import time_machine
from moto import mock_aws

from connectors.aws.connector import AwsConnector
from connectors.base import DiscoveredIdentity, HealthState
from connectors.errors import ConnectorAuthError
from tests.connectors.aws.conftest import (
    DEFAULT_ACCOUNT,
    OTHER_ACCOUNT,
    CallLog,
    iam_client,
    make_user,
)

Factory = Callable[..., AwsConnector]
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": "*"}


def by_id(identities: list[DiscoveredIdentity]) -> dict[str, DiscoveredIdentity]:
    return {identity.external_id: identity for identity in identities}


def test_access_key_fields(make_connector: Factory) -> None:
    iam = iam_client()
    with time_machine.travel(START, tick=False):
        iam.create_user(
            UserName="ci-deployer",
            Tags=[
                {"Key": "owner", "Value": "Alice@Example.com"},
                {"Key": "Application", "Value": "payments"},
                {"Key": "Project", "Value": "checkout"},
                {"Key": "Vendor", "Value": "acme"},
            ],
        )
        created = iam.create_access_key(UserName="ci-deployer")["AccessKey"]
        unused = iam.create_access_key(UserName="ci-deployer")["AccessKey"]
    with time_machine.travel(START + timedelta(days=3), tick=False):
        # Any request signed with the key marks it used in moto.
        boto3.client(
            "sts",
            region_name="eu-west-1",
            aws_access_key_id=created["AccessKeyId"],
            aws_secret_access_key=created["SecretAccessKey"],
        ).get_caller_identity()

    identities = by_id(make_connector(discover_secrets=False).snapshot())

    used = identities[created["AccessKeyId"]]
    assert used.kind == "iam_access_key"
    assert used.name == f"ci-deployer/{created['AccessKeyId']}"
    assert used.owner_email == "alice@example.com"
    assert used.application == "payments"
    assert used.project == "checkout"
    assert used.vendor == "acme"
    assert used.managed is False
    assert used.created_at == START
    assert used.last_used_at == START + timedelta(days=3)
    assert used.never_used is False
    assert used.attributes["status"] == "Active"
    assert used.attributes["account_id"] == DEFAULT_ACCOUNT
    assert used.attributes["user_name"] == "ci-deployer"
    assert used.attributes["last_used_service"] == "sts"
    assert used.attributes["last_used_region"] == "eu-west-1"

    never = identities[unused["AccessKeyId"]]
    assert never.never_used is True
    assert never.last_used_at is None
    assert never.created_at == START
    assert never.attributes["last_used_service"] is None

    document = json.dumps(
        [item.model_dump(mode="json") for item in identities.values()]
    )
    assert created["SecretAccessKey"] not in document
    assert unused["SecretAccessKey"] not in document


def test_owner_tag_without_email(make_connector: Factory) -> None:
    key_id = make_user(iam_client(), "batch", tags={"Owner": "team-data"})[0]

    identity = by_id(make_connector(discover_secrets=False).snapshot())[key_id]

    assert identity.owner_email is None
    assert identity.attributes["owner_tag"] == "team-data"


def test_inactive_key_status(make_connector: Factory) -> None:
    iam = iam_client()
    key_id = make_user(iam, "old")[0]
    iam.update_access_key(UserName="old", AccessKeyId=key_id, Status="Inactive")

    identity = by_id(make_connector(discover_secrets=False).snapshot())[key_id]

    assert identity.attributes["status"] == "Inactive"


def test_tiers_from_user_and_group_policies(make_connector: Factory) -> None:
    iam = iam_client()
    reader = make_user(iam, "reader")[0]
    iam.put_user_policy(
        UserName="reader",
        PolicyName="read",
        PolicyDocument=policy(allow(["s3:GetObject", "iam:Get*", "iam:List*"])),
    )
    writer = make_user(iam, "writer")[0]
    iam.create_group(GroupName="iam-admins")
    iam.add_user_to_group(GroupName="iam-admins", UserName="writer")
    iam.put_group_policy(
        GroupName="iam-admins",
        PolicyName="users",
        PolicyDocument=policy(allow("iam:CreateUser")),
    )
    wildcard = make_user(iam, "wildcard")[0]
    managed = iam.create_policy(
        PolicyName="storage", PolicyDocument=policy(allow("s3:*"))
    )["Policy"]["Arn"]
    iam.create_group(GroupName="storage")
    iam.attach_group_policy(GroupName="storage", PolicyArn=managed)
    iam.add_user_to_group(GroupName="storage", UserName="wildcard")
    denied = make_user(iam, "denied")[0]
    iam.put_user_policy(
        UserName="denied",
        PolicyName="deny",
        PolicyDocument=policy({"Effect": "Deny", "Action": "*", "Resource": "*"}),
    )

    identities = by_id(make_connector(discover_secrets=False).snapshot())

    assert identities[reader].tier == "standard"
    assert identities[reader].scope_summary == "user: read (inline)"
    assert identities[writer].tier == "privileged"
    assert "iam write action iam:CreateUser" in identities[writer].tier_reason
    assert "group iam-admins" in identities[writer].tier_reason
    assert identities[writer].scope_summary == "group iam-admins: users (inline)"
    assert identities[wildcard].tier == "privileged"
    assert "every s3 action (s3:*)" in identities[wildcard].tier_reason
    assert identities[denied].tier == "standard"


def test_tier_rules_are_settings(make_connector: Factory) -> None:
    iam = iam_client()
    key_id = make_user(iam, "uploader")[0]
    iam.put_user_policy(
        UserName="uploader",
        PolicyName="upload",
        PolicyDocument=policy(allow("s3:PutObject")),
    )

    default = make_connector(discover_secrets=False).snapshot()
    strict = make_connector(
        discover_secrets=False, tiers={"write_sensitive_services": ["s3"]}
    ).snapshot()

    assert by_id(default)[key_id].tier == "standard"
    assert by_id(strict)[key_id].tier == "privileged"
    assert "s3 write action s3:PutObject" in by_id(strict)[key_id].tier_reason


def test_aws_managed_admin_policy(
    make_connector: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto loads AWS managed policies only when asked, which takes seconds.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    with mock_aws():
        iam = iam_client()
        key_id = make_user(iam, "root-ish")[0]
        iam.attach_user_policy(
            UserName="root-ish",
            PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess",
        )

        identity = by_id(make_connector(discover_secrets=False).snapshot())[key_id]

    assert identity.tier == "privileged"
    assert "AdministratorAccess (user) is privileged by name" in identity.tier_reason
    assert 'allows every action ("*")' in identity.tier_reason
    assert identity.scope_summary == "user: AdministratorAccess (managed)"


def test_secret_fields(make_connector: Factory) -> None:
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    with time_machine.travel(START, tick=False):
        arn = client.create_secret(
            Name="payments/db",
            Description="database password",
            SecretString="hunter2-value",
            Tags=[
                {"Key": "Owner", "Value": "bob@example.com"},
                {"Key": "Application", "Value": "payments"},
            ],
        )["ARN"]
        client.rotate_secret(
            SecretId=arn,
            RotationRules={"AutomaticallyAfterDays": 30},
            RotateImmediately=False,
        )

    identities = by_id(make_connector(discover_access_keys=False).snapshot())

    secret = identities[arn]
    assert secret.kind == "secretsmanager_secret"
    assert secret.name == "payments/db"
    assert secret.description == "database password"
    assert secret.owner_email == "bob@example.com"
    assert secret.application == "payments"
    assert secret.managed is True
    assert secret.created_at == START
    assert secret.attributes["region"] == "eu-west-1"
    assert secret.attributes["account_id"] == DEFAULT_ACCOUNT
    assert secret.attributes["rotation_enabled"] is True
    assert secret.attributes["rotation_days"] == 30
    assert secret.attributes["deletion_scheduled"] is False
    assert "rotated every 30 days" in secret.scope_summary
    assert "hunter2-value" not in secret.model_dump_json()


def test_secret_scheduled_for_deletion(make_connector: Factory) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="old", SecretString="x")["ARN"]
    deletion = client.delete_secret(SecretId=arn, RecoveryWindowInDays=7)

    secret = by_id(make_connector(discover_access_keys=False).snapshot())[arn]

    assert secret.attributes["deletion_scheduled"] is True
    assert secret.attributes["deletion_date"] == (
        deletion["DeletionDate"].astimezone(UTC).isoformat()
    )


def test_secrets_paginated_in_every_region(
    make_connector: Factory, call_log: CallLog
) -> None:
    for region, count in (("us-east-1", 130), ("eu-west-1", 3)):
        client = boto3.client("secretsmanager", region_name=region)
        for number in range(count):
            client.create_secret(Name=f"{region}-{number}", SecretString="x")

    identities = make_connector(discover_access_keys=False).snapshot()

    assert len(identities) == 133
    assert call_log.operations().count("ListSecrets") >= 3


def test_discovery_never_reads_secret_values(
    make_connector: Factory, call_log: CallLog
) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="a", SecretString="x"
    )
    make_user(iam_client(), "someone")

    make_connector().snapshot()

    operations = set(call_log.operations())
    assert "ListSecrets" in operations
    assert "GetSecretValue" not in operations
    assert "DescribeSecret" not in operations


def test_snapshot_is_deterministic(make_connector: Factory) -> None:
    iam = iam_client()
    for number in range(5):
        make_user(iam, f"user-{number}", keys=2)
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="s", SecretString="x"
    )
    connector = make_connector()

    first = connector.snapshot()
    second = list(connector.discover())

    assert first == second
    assert [item.external_id for item in first[:10]] == sorted(
        item.external_id for item in first[:10]
    )


def test_accounts_through_assumed_roles(
    make_connector: Factory, call_log: CallLog
) -> None:
    home_key = make_user(iam_client(), "home")[0]
    other_key = make_user(iam_client(OTHER_ACCOUNT), "remote")[0]
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/steward-reader"
    connector = make_connector(
        discover_secrets=False,
        accounts=[{}, {"role_arn": role, "external_id": "steward-external-id"}],
    )

    identities = by_id(connector.snapshot())

    assert identities[home_key].attributes["account_id"] == DEFAULT_ACCOUNT
    assert identities[other_key].attributes["account_id"] == OTHER_ACCOUNT
    assert "home" not in {
        identity.attributes["user_name"]
        for identity in identities.values()
        if identity.attributes["account_id"] == OTHER_ACCOUNT
    }
    assume = [
        params
        for name, params in call_log.calls
        if name == "AssumeRole" and params["RoleArn"] == role
    ]
    assert len(assume) == 1
    assert assume[0]["RoleArn"] == role
    assert assume[0]["ExternalId"] == "steward-external-id"


def test_assumed_role_refreshed_before_expiry(
    make_connector: Factory, call_log: CallLog
) -> None:
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/steward-reader"
    connector = make_connector(
        discover_secrets=False,
        accounts=[{"role_arn": role, "role_duration_seconds": 3600}],
    )
    with time_machine.travel(START, tick=False):
        connector.snapshot()
    with time_machine.travel(START + timedelta(minutes=40), tick=False):
        connector.snapshot()
    assert call_log.operations().count("AssumeRole") == 1

    # botocore refreshes credentials that expire within 15 minutes.
    with time_machine.travel(START + timedelta(minutes=50), tick=False):
        connector.snapshot()

    assert call_log.operations().count("AssumeRole") == 2


def test_health_per_account(make_connector: Factory) -> None:
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/steward-reader"

    healthy = make_connector(accounts=[{}, {"role_arn": role}]).check_health()
    wrong = make_connector(accounts=[{"account_id": "999999999999"}]).check_health()

    assert healthy.state is HealthState.OK
    assert DEFAULT_ACCOUNT in healthy.detail
    assert OTHER_ACCOUNT in healthy.detail
    assert wrong.state is HealthState.FAILING
    assert "belong to account 123456789012" in wrong.detail


def test_missing_credentials_fail(
    make_connector: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    connector = make_connector()

    with pytest.raises(ConnectorAuthError, match="NoCredentialsError"):
        connector.snapshot()
    assert connector.check_health().state is HealthState.FAILING
