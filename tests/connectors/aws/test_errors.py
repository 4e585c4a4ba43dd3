"""Every botocore exception and the AWS error codes map to connector errors."""

from __future__ import annotations

import inspect

import pytest
from botocore import exceptions as boto_errors

from connectors.aws.errors import error_class_for, error_class_for_code, translate
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

BOTOCORE_CLASSES = sorted(
    (
        value
        for _, value in inspect.getmembers(boto_errors, inspect.isclass)
        if issubclass(value, Exception)
    ),
    key=lambda value: value.__name__,
)


def client_error(code: str, status: int = 400) -> boto_errors.ClientError:
    return boto_errors.ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "ListSecrets",
    )


def test_botocore_classes_found() -> None:
    assert len(BOTOCORE_CLASSES) > 80


@pytest.mark.parametrize("error_type", BOTOCORE_CLASSES, ids=lambda t: t.__name__)
def test_botocore_class_maps(error_type: type[Exception]) -> None:
    mapped = error_class_for(error_type)

    assert issubclass(mapped, ConnectorError)
    assert mapped is not ConnectorError


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        (boto_errors.NoCredentialsError, ConnectorAuthError),
        (boto_errors.PartialCredentialsError, ConnectorAuthError),
        (boto_errors.CredentialRetrievalError, ConnectorAuthError),
        (boto_errors.SSOTokenLoadError, ConnectorAuthError),
        (boto_errors.MetadataRetrievalError, ConnectorAuthError),
        (boto_errors.EndpointConnectionError, ConnectorUnavailableError),
        (boto_errors.ConnectTimeoutError, ConnectorUnavailableError),
        (boto_errors.ReadTimeoutError, ConnectorUnavailableError),
        (boto_errors.ConnectionClosedError, ConnectorUnavailableError),
        (boto_errors.SSLError, ConnectorUnavailableError),
        (boto_errors.ProxyConnectionError, ConnectorUnavailableError),
        (boto_errors.CapacityNotAvailableError, ConnectorRateLimitedError),
        (boto_errors.ParamValidationError, ConnectorRequestError),
        (boto_errors.UnknownParameterError, ConnectorRequestError),
        (boto_errors.PaginationError, ConnectorRequestError),
        (boto_errors.NoRegionError, ConnectorConfigError),
        (boto_errors.ProfileNotFound, ConnectorConfigError),
        (boto_errors.UnknownServiceError, ConnectorConfigError),
        (boto_errors.InvalidRetryModeError, ConnectorConfigError),
        (boto_errors.ClientError, ConnectorRequestError),
    ],
    ids=lambda value: value.__name__,
)
def test_botocore_class_category(
    error_type: type[Exception], expected: type[ConnectorError]
) -> None:
    assert error_class_for(error_type) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("NoSuchEntity", ConnectorNotFoundError),
        ("ResourceNotFoundException", ConnectorNotFoundError),
        ("Throttling", ConnectorRateLimitedError),
        ("ThrottlingException", ConnectorRateLimitedError),
        ("TooManyRequestsException", ConnectorRateLimitedError),
        ("RequestLimitExceeded", ConnectorRateLimitedError),
        ("AccessDenied", ConnectorPermissionError),
        ("AccessDeniedException", ConnectorPermissionError),
        ("ExpiredToken", ConnectorAuthError),
        ("ExpiredTokenException", ConnectorAuthError),
        ("InvalidClientTokenId", ConnectorAuthError),
        ("UnrecognizedClientException", ConnectorAuthError),
        ("SignatureDoesNotMatch", ConnectorAuthError),
        ("InvalidRequestException", ConnectorRequestError),
        ("InvalidParameterException", ConnectorRequestError),
        ("LimitExceeded", ConnectorRequestError),
        ("LimitExceededException", ConnectorRequestError),
        ("ServiceFailure", ConnectorUnavailableError),
        ("InternalFailure", ConnectorUnavailableError),
        ("InternalServiceError", ConnectorUnavailableError),
        ("ServiceUnavailable", ConnectorUnavailableError),
        ("ConcurrentModification", ConnectorUnavailableError),
    ],
)
def test_error_code_maps(code: str, expected: type[ConnectorError]) -> None:
    error = translate(client_error(code), connector="aws-main", action="ListSecrets")

    assert type(error) is expected
    assert error.connector == "aws-main"
    assert str(error) == f"ListSecrets failed: {code}: {code} happened"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ConnectorRequestError),
        (401, ConnectorAuthError),
        (403, ConnectorPermissionError),
        (404, ConnectorNotFoundError),
        (429, ConnectorRateLimitedError),
        (500, ConnectorUnavailableError),
        (503, ConnectorUnavailableError),
    ],
)
def test_unknown_code_maps_by_status(
    status: int, expected: type[ConnectorError]
) -> None:
    assert error_class_for_code("SomethingNew", status) is expected


def test_retryable_errors() -> None:
    throttled = translate(client_error("Throttling"), connector="a", action="x")
    failing = translate(client_error("InternalFailure", 500), connector="a", action="x")
    denied = translate(client_error("AccessDenied", 403), connector="a", action="x")

    assert throttled.retryable is True
    assert failing.retryable is True
    assert denied.retryable is False


def test_botocore_instance_translates() -> None:
    error = translate(
        boto_errors.EndpointConnectionError(endpoint_url="https://iam.amazonaws.com"),
        connector="aws-main",
        action="GetAccountAuthorizationDetails",
    )

    assert isinstance(error, ConnectorUnavailableError)
    assert "EndpointConnectionError" in str(error)
    assert "https://iam.amazonaws.com" in str(error)
