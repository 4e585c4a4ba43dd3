"""Turning AWS responses into identities and tiers, without AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from connectors.aws.config import AwsOptions, TierRules
from connectors.aws.policies import AttachedPolicy, assess, parse_document
from connectors.aws.secrets import secret_identity

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
RULES = TierRules()


def inline(*statements: dict[str, object]) -> AttachedPolicy:
    return AttachedPolicy(
        name="p",
        kind="inline",
        via="user",
        document={"Version": "2012-10-17", "Statement": list(statements)},
    )


def test_secret_last_accessed_day() -> None:
    options = AwsOptions(regions=["eu-west-1"])
    accessed = datetime(2026, 5, 4, 2, 0, tzinfo=timezone(timedelta(hours=3)))

    identity = secret_identity(
        {"ARN": ARN, "Name": "db", "LastAccessedDate": accessed}, options, "eu-west-1"
    )

    assert identity.last_used_at == datetime(2026, 5, 3, tzinfo=UTC)
    assert identity.never_used is False


def test_secret_never_accessed() -> None:
    options = AwsOptions(regions=["eu-west-1"])

    identity = secret_identity({"ARN": ARN, "Name": "db"}, options, "eu-west-1")

    assert identity.last_used_at is None
    assert identity.never_used is True
    assert identity.attributes["rotation_enabled"] is False


def test_not_action_is_privileged() -> None:
    policy = inline({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})

    tier, reason = assess([policy], RULES)

    assert tier == "privileged"
    assert "every action except iam:* (NotAction)" in reason


def test_iam_pattern_actions() -> None:
    read = inline({"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"]})
    write = inline({"Effect": "Allow", "Action": "iam:*AccessKey"})

    assert assess([read], RULES)[0] == "standard"
    assert assess([write], RULES)[0] == "privileged"


def test_no_policies_standard() -> None:
    assert assess([], RULES) == ("standard", "standard: no policies attached")


def test_unread_document_named() -> None:
    policy = AttachedPolicy(name="Vendor", kind="managed", via="user")

    tier, reason = assess([policy], RULES)

    assert tier == "standard"
    assert "documents of Vendor could not be read" in reason


def test_encoded_document_parsed() -> None:
    encoded = "%7B%22Statement%22%3A%20%5B%5D%7D"

    assert parse_document(encoded) == {"Statement": []}
