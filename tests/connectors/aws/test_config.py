"""Options of the AWS connector: validation, defaults and masking."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.aws.connector import AwsConnector, create
from connectors.errors import ConnectorConfigError
from connectors.registry import factory_for

ROLE = "arn:aws:iam::111111111111:role/steward"


def test_registry_loads_aws() -> None:
    assert factory_for("aws") is create


def test_defaults() -> None:
    connector = create("aws-main", {"regions": ["eu-west-1"]})

    described = connector.describe()

    assert isinstance(connector, AwsConnector)
    assert described["retry_mode"] == "standard"
    assert described["max_attempts"] == 8
    assert described["delete_after_days"] == 7
    assert described["recovery_window_days"] == 30
    assert described["tags"]["owner"] == ["Owner"]
    assert described["tiers"]["privileged_policies"] == [
        "AdministratorAccess",
        "IAMFullAccess",
    ]
    assert described["accounts"][0]["role_arn"] is None


def test_external_id_masked() -> None:
    connector = create(
        "aws-main",
        {
            "regions": ["eu-west-1"],
            "accounts": [{"role_arn": ROLE, "external_id": "very-private-id"}],
        },
    )

    described = connector.describe()

    assert described["accounts"][0]["external_id"] == "**********"
    assert "very-private-id" not in repr(described)
    assert "very-private-id" not in repr(connector.options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "regions: Field required"),
        ({"regions": []}, "regions: List should have at least 1 item"),
        ({"regions": ["Europe"]}, "expected a region name like eu-west-1"),
        ({"regions": ["eu-west-1"], "retry_mode": "legacy"}, "retry_mode"),
        ({"regions": ["eu-west-1"], "max_attempts": 0}, "max_attempts"),
        ({"regions": ["eu-west-1"], "recovery_window_days": 3}, "recovery_window"),
        ({"regions": ["eu-west-1"], "token": "x"}, "token: Extra inputs"),
        (
            {"regions": ["eu-west-1"], "accounts": [{"role_arn": "role/steward"}]},
            "accounts.0.role_arn: expected a role ARN",
        ),
        (
            {"regions": ["eu-west-1"], "accounts": [{"external_id": "abc"}]},
            "external_id is set but role_arn is not",
        ),
        (
            {
                "regions": ["eu-west-1"],
                "accounts": [{"account_id": "222222222222", "role_arn": ROLE}],
            },
            "differs from the account of role_arn",
        ),
        (
            {"regions": ["eu-west-1"], "accounts": [{"role_arn": ROLE}] * 2},
            "account 111111111111 is listed twice",
        ),
        (
            {"regions": ["eu-west-1"], "accounts": [{}, {}]},
            "only one account may use the default credential chain",
        ),
        (
            {"regions": ["eu-west-1"], "accounts": [{"account_id": "12345"}]},
            "expected a 12-digit AWS account id",
        ),
    ],
)
def test_invalid_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        create("aws-main", options)

    assert "aws connector 'aws-main'" in str(caught.value)
    assert message in str(caught.value)
    assert caught.value.connector == "aws-main"


def test_external_id_not_in_error() -> None:
    options = {"regions": ["eu-west-1"], "accounts": [{"external_id": "hidden-id"}]}

    with pytest.raises(ConnectorConfigError) as caught:
        create("aws-main", options)

    assert "hidden-id" not in str(caught.value)


def test_unknown_profile_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")

    with pytest.raises(ConnectorConfigError, match="ProfileNotFound"):
        create("aws-main", {"regions": ["eu-west-1"], "profile": "missing"})
