"""Fixtures of the AWS connector tests: moto in place of AWS, and call hooks.

Every test runs inside moto's mock_aws with fake credentials, no shared
config files and the EC2 instance metadata endpoint disabled. A socket guard
fails any connection to an address beyond loopback, so a request that moto
does not intercept cannot reach AWS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.handlers
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws

from connectors.aws.connector import AwsConnector, create

DEFAULT_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111111111111"
REGIONS = ["us-east-1", "eu-west-1"]
FAKE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION")


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str):  # a Unix socket path
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise AssertionError(f"test tried to connect to {address!r}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def make_connector() -> Iterator[Callable[..., AwsConnector]]:
    started: list[AwsConnector] = []

    def build(**options: Any) -> AwsConnector:
        values: dict[str, Any] = {"regions": REGIONS, **options}
        connector = create("aws-main", values)
        started.append(connector)
        return connector

    yield build
    for connector in started:
        connector.close()


@dataclass
class CallLog:
    """Operations sent by clients created while the hook is installed."""

    calls: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def call_log(monkeypatch: pytest.MonkeyPatch) -> CallLog:
    """Record every API call, with its parameters, of clients created later."""
    log = CallLog()

    def record(params: Mapping[str, Any], model: Any, **_: Any) -> None:
        log.calls.append((model.name, dict(params)))

    handlers = [("before-parameter-build", record), *botocore.handlers.BUILTIN_HANDLERS]
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", handlers)
    return log


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def throttling_response(service: str, code: str) -> AWSResponse:
    """Build the HTTP response AWS sends when it throttles a call."""
    if service in {"secretsmanager", "secrets-manager"}:
        body = f'{{"__type": "{code}", "message": "Rate exceeded"}}'.encode()
        content_type = "application/x-amz-json-1.1"
    else:
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>Rate exceeded</Message></Error>"
            "<RequestId>throttled</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    headers = HTTPHeaders()
    headers["Content-Type"] = content_type
    return AWSResponse("https://throttled.invalid/", 400, headers, _RawBody(body))


@dataclass
class Throttle:
    """Which calls get a throttling response, and how many did."""

    decide: Callable[[str, int], str | None]
    attempts: dict[str, int] = field(default_factory=dict)
    injected: int = 0


@pytest.fixture
def throttle(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Throttle]:
    """Return throttling errors for chosen attempts, ahead of moto.

    `decide(operation, attempt_number)` returns an error code to send, or
    None to let moto respond. Attempts count from 1 per operation name.
    """

    def install(decide: Callable[[str, int], str | None]) -> Throttle:
        state = Throttle(decide)

        def before_send(request: Any, event_name: str, **kwargs: Any) -> Any:
            _, service, operation = event_name.split(".", 2)
            number = state.attempts.get(operation, 0) + 1
            state.attempts[operation] = number
            code = decide(operation, number)
            if code is None:
                return None
            state.injected += 1
            return throttling_response(service, code)

        handlers = [("before-send", before_send), *botocore.handlers.BUILTIN_HANDLERS]
        monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", handlers)
        return state

    return install


def iam_client(account: str = DEFAULT_ACCOUNT) -> Any:
    """Return an IAM client for `account`, assuming a role for other accounts."""
    if account == DEFAULT_ACCOUNT:
        return boto3.client("iam", region_name="us-east-1")
    credentials = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/test-admin", RoleSessionName="tests"
    )["Credentials"]
    return boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def make_user(
    iam: Any, name: str, *, tags: Mapping[str, str] | None = None, keys: int = 1
) -> list[str]:
    """Create an IAM user with `keys` access keys; return the key ids."""
    iam.create_user(
        UserName=name,
        Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    )
    return [
        iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
        for _ in range(keys)
    ]
