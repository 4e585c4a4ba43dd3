"""Translation of botocore exceptions into Steward's connector errors.

AWS reports a failed call as botocore.exceptions.ClientError carrying an
error code; every other failure (credentials, network, configuration, request
validation) is a class in botocore.exceptions. Error codes come from the IAM,
STS and Secrets Manager API references; codes not listed here fall back to
their HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore import exceptions as boto_errors

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

_CODES: dict[type[ConnectorError], frozenset[str]] = {
    ConnectorNotFoundError: frozenset(
        {"NoSuchEntity", "NoSuchEntityException", "ResourceNotFoundException"}
    ),
    ConnectorRateLimitedError: frozenset(
        {
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "RequestThrottled",
            "RequestThrottledException",
            "SlowDown",
            "PriorRequestNotComplete",
            "BandwidthLimitExceeded",
        }
    ),
    ConnectorPermissionError: frozenset(
        {
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "AuthorizationError",
            "OptInRequired",
        }
    ),
    ConnectorAuthError: frozenset(
        {
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "IncompleteSignature",
            "MissingAuthenticationToken",
            "InvalidToken",
            "AuthFailure",
            "RequestExpired",
        }
    ),
    ConnectorUnavailableError: frozenset(
        {
            "ServiceFailure",
            "InternalFailure",
            "InternalError",
            "InternalServiceError",
            "InternalServiceErrorException",
            "InternalServerError",
            "ServiceUnavailable",
            "ServiceUnavailableException",
            "RequestTimeout",
            "RequestTimeoutException",
            # IAM: another request changed the same entity; a retry succeeds.
            "ConcurrentModification",
            "ConcurrentModificationException",
        }
    ),
    ConnectorRequestError: frozenset(
        {
            "InvalidRequestException",
            "InvalidParameterException",
            "InvalidParameterValue",
            "InvalidParameterCombination",
            "InvalidInput",
            "ValidationError",
            "ValidationException",
            "MalformedPolicyDocument",
            "MalformedPolicyDocumentException",
            "DeleteConflict",
            "EntityAlreadyExists",
            "ResourceExistsException",
            "PreconditionNotMetException",
            # Quotas (for example two access keys per user), not request rates.
            "LimitExceeded",
            "LimitExceededException",
        }
    ),
}

ERROR_CODES: dict[str, type[ConnectorError]] = {
    code: error_type for error_type, codes in _CODES.items() for code in codes
}

_STATUSES: dict[int, type[ConnectorError]] = {
    400: ConnectorRequestError,
    401: ConnectorAuthError,
    403: ConnectorPermissionError,
    404: ConnectorNotFoundError,
    409: ConnectorRequestError,
    429: ConnectorRateLimitedError,
}

# Checked in order, so a subclass must come before its base class.
_CLASSES: tuple[tuple[type[Exception], type[ConnectorError]], ...] = (
    # The adaptive retry mode raises this when its client-side rate limit
    # has no capacity left.
    (boto_errors.CapacityNotAvailableError, ConnectorRateLimitedError),
    # Steward's own credentials are missing, expired or cannot be fetched.
    (boto_errors.NoCredentialsError, ConnectorAuthError),
    (boto_errors.PartialCredentialsError, ConnectorAuthError),
    (boto_errors.CredentialRetrievalError, ConnectorAuthError),
    (boto_errors.UnknownCredentialError, ConnectorAuthError),
    (boto_errors.NoAuthTokenError, ConnectorAuthError),
    (boto_errors.TokenRetrievalError, ConnectorAuthError),
    (boto_errors.SSOError, ConnectorAuthError),
    (boto_errors.LoginError, ConnectorAuthError),
    (boto_errors.RefreshWithMFAUnsupportedError, ConnectorAuthError),
    (boto_errors.MetadataRetrievalError, ConnectorAuthError),
    # The network or the service failed; a retry can succeed.
    (boto_errors.ConnectionError, ConnectorUnavailableError),
    (boto_errors.HTTPClientError, ConnectorUnavailableError),
    (boto_errors.IncompleteReadError, ConnectorUnavailableError),
    (boto_errors.ChecksumError, ConnectorUnavailableError),
    (boto_errors.FlexibleChecksumError, ConnectorUnavailableError),
    (boto_errors.AwsChunkedWrapperError, ConnectorUnavailableError),
    (boto_errors.WaiterError, ConnectorUnavailableError),
    # botocore rejected the request before sending it.
    (boto_errors.ParamValidationError, ConnectorRequestError),
    (boto_errors.ValidationError, ConnectorRequestError),
    (boto_errors.MissingParametersError, ConnectorRequestError),
    (boto_errors.InvalidExpressionError, ConnectorRequestError),
    (boto_errors.OperationNotPageableError, ConnectorRequestError),
    (boto_errors.PaginationError, ConnectorRequestError),
    (boto_errors.UnknownClientMethodError, ConnectorRequestError),
    (boto_errors.UnseekableStreamError, ConnectorRequestError),
    (boto_errors.InvalidDNSNameError, ConnectorRequestError),
    (boto_errors.InvalidHostLabelError, ConnectorRequestError),
    (boto_errors.StubResponseError, ConnectorRequestError),
    # Everything else botocore raises is about its configuration: profiles,
    # regions, endpoints, retry and checksum settings, service models.
    (boto_errors.BotoCoreError, ConnectorConfigError),
    (boto_errors.UndefinedModelAttributeError, ConnectorConfigError),
    (Warning, ConnectorConfigError),
)


def error_class_for_code(code: str, status: int | None = None) -> type[ConnectorError]:
    """Return the connector error class for an AWS error code and HTTP status."""
    known = ERROR_CODES.get(code)
    if known is not None:
        return known
    if status is not None:
        if status in _STATUSES:
            return _STATUSES[status]
        if status >= 500:
            return ConnectorUnavailableError
    return ConnectorRequestError


def error_class_for(error_type: type[Exception]) -> type[ConnectorError]:
    """Return the connector error class that a botocore exception class maps to.

    A ClientError maps by its code, so its class alone maps to the fallback
    for unknown codes; use `translate` for instances.
    """
    if issubclass(error_type, boto_errors.ClientError):
        return ConnectorRequestError
    for vendor, ours in _CLASSES:
        if issubclass(error_type, vendor):
            return ours
    raise TypeError(f"no translation for {error_type.__name__}")


def translate(error: Exception, *, connector: str, action: str) -> ConnectorError:
    """Return the connector error for a botocore exception raised during `action`.

    The message keeps AWS's error code and message, which name the failed
    operation and resource but never a credential.
    """
    if isinstance(error, boto_errors.ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        error_type = error_class_for_code(code, status)
        detail = f"{code}: {details.get('Message', '') or error}"
    else:
        error_type = error_class_for(type(error))
        detail = f"{type(error).__name__}: {error}"
    message = f"{action} failed: {detail}"
    if error_type is ConnectorRateLimitedError:
        return ConnectorRateLimitedError(message, connector=connector)
    return error_type(message, connector=connector)


@contextmanager
def translated(connector: str, action: str) -> Iterator[None]:
    """Raise a ConnectorError in place of any botocore exception in the block."""
    try:
        yield
    except ConnectorError:
        raise
    except (boto_errors.BotoCoreError, boto_errors.ClientError) as error:
        raise translate(error, connector=connector, action=action) from error
