"""Discovery of a large account survives throttling errors injected ahead of moto.

A botocore before-send hook returns the throttling response AWS sends for
chosen attempts, so botocore's own retry mode decides and backs off.
"""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from connectors.aws.connector import AwsConnector
from connectors.errors import ConnectorRateLimitedError
from tests.connectors.aws.conftest import Throttle, iam_client, make_user

Factory = Callable[..., AwsConnector]
USERS = 151
KEYS_PER_USER = 2
SECRETS = 105
IAM_CODES = ("Throttling", "RequestLimitExceeded")
SECRETS_CODES = ("ThrottlingException", "TooManyRequestsException")


def every(step: int) -> Callable[[str, int], str | None]:
    """Throttle every `step`-th attempt of each operation, rotating codes."""

    def decide(operation: str, attempt: int) -> str | None:
        if attempt % step != 0:
            return None
        codes = SECRETS_CODES if operation == "ListSecrets" else IAM_CODES
        return codes[(attempt // step) % len(codes)]

    return decide


@pytest.fixture
def large_account() -> set[str]:
    iam = iam_client()
    keys: set[str] = set()
    for number in range(USERS):
        keys.update(make_user(iam, f"service-{number:03}", keys=KEYS_PER_USER))
    client = boto3.client("secretsmanager", region_name="us-east-1")
    for number in range(SECRETS):
        keys.add(client.create_secret(Name=f"secret-{number}", SecretString="x")["ARN"])
    return keys


def test_throttled_discovery_complete(
    make_connector: Factory,
    throttle: Callable[..., Throttle],
    large_account: set[str],
) -> None:
    state = throttle(every(25))
    connector = make_connector(regions=["us-east-1"], retry_mode="standard")

    identities = connector.snapshot()

    assert len(large_account) == USERS * KEYS_PER_USER + SECRETS
    assert {identity.external_id for identity in identities} == large_account
    assert state.injected >= 15
    # 105 secrets take two pages of ListSecrets (moto returns 100 per page).
    assert state.attempts["ListSecrets"] == 2
    assert state.attempts["GetAccessKeyLastUsed"] > USERS * KEYS_PER_USER


def test_adaptive_mode_survives_throttling(
    make_connector: Factory, throttle: Callable[..., Throttle]
) -> None:
    iam = iam_client()
    keys = {key for number in range(8) for key in make_user(iam, f"user-{number}")}
    state = throttle(every(5))
    connector = make_connector(regions=["us-east-1"], retry_mode="adaptive")

    identities = connector.snapshot()

    assert {identity.external_id for identity in identities} == keys
    assert state.injected >= 2


def test_throttling_beyond_max_attempts_raises(
    make_connector: Factory, throttle: Callable[..., Throttle]
) -> None:
    make_user(iam_client(), "someone")
    state = throttle(
        lambda operation, _: (
            "ThrottlingException" if operation == "ListSecrets" else None
        )
    )
    connector = make_connector(regions=["us-east-1"], max_attempts=2)

    with pytest.raises(ConnectorRateLimitedError, match="ListSecrets in us-east-1"):
        connector.snapshot()
    assert state.attempts["ListSecrets"] == 2
