"""Translation of every hvac and requests exception into connector errors."""

from __future__ import annotations

import inspect

import pytest
import requests
from hvac import exceptions as hvac_errors

from connectors.errors import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorNotFoundError,
    ConnectorPermissionError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorUnavailableError,
)
from connectors.vault.errors import error_class_for, translate

HVAC_EXCEPTIONS = sorted(
    (
        member
        for _, member in inspect.getmembers(hvac_errors, inspect.isclass)
        if issubclass(member, Exception)
    ),
    key=lambda member: member.__name__,
)


def test_hvac_defines_exceptions() -> None:
    assert len(HVAC_EXCEPTIONS) >= 14


@pytest.mark.parametrize("vendor", HVAC_EXCEPTIONS, ids=lambda cls: cls.__name__)
def test_every_hvac_exception_translates(vendor: type[Exception]) -> None:
    error = vendor("boom", method="GET", url="/v1/sys/health")  # type: ignore[call-arg]
    translated = translate(error, connector="vault-main", action="check")
    assert isinstance(translated, ConnectorError)
    assert type(translated) is not ConnectorError
    assert translated.connector == "vault-main"
    assert "check failed" in str(translated)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ConnectorRequestError),
        (401, ConnectorAuthError),
        (403, ConnectorPermissionError),
        (404, ConnectorNotFoundError),
        (429, ConnectorRateLimitedError),
        (500, ConnectorUnavailableError),
        (501, ConnectorUnavailableError),
        (502, ConnectorUnavailableError),
        (503, ConnectorUnavailableError),
        (418, ConnectorUnavailableError),
    ],
)
def test_status_translation(status: int, expected: type[ConnectorError]) -> None:
    vendor = type(hvac_errors.VaultError.from_status(status, "x"))
    assert error_class_for(vendor) is expected


def test_sealed_is_retryable() -> None:
    error = hvac_errors.VaultDown("Vault is sealed", method="GET", url="/v1/x")
    translated = translate(error, connector="v", action="list")
    assert translated.retryable
    assert "Vault is sealed" in str(translated)


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        (requests.exceptions.SSLError, ConnectorConfigError),
        (requests.exceptions.ConnectTimeout, ConnectorUnavailableError),
        (requests.exceptions.ReadTimeout, ConnectorUnavailableError),
        (requests.exceptions.ConnectionError, ConnectorUnavailableError),
        (requests.exceptions.TooManyRedirects, ConnectorUnavailableError),
        (requests.exceptions.RequestException, ConnectorUnavailableError),
    ],
)
def test_network_errors_translate(
    vendor: type[Exception], expected: type[ConnectorError]
) -> None:
    assert error_class_for(vendor) is expected


def test_error_keeps_no_response_body() -> None:
    error = hvac_errors.InvalidRequest(
        errors=["invalid accessor"],
        method="POST",
        url="/v1/auth/token/lookup-accessor",
        text='{"data": "response body"}',
    )
    message = str(translate(error, connector="v", action="look up"))
    assert message == (
        "look up failed: invalid accessor (POST /v1/auth/token/lookup-accessor)"
    )


def test_unknown_exception_rejected() -> None:
    with pytest.raises(TypeError, match="no translation for ValueError"):
        error_class_for(ValueError)
