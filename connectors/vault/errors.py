"""Translation of hvac and requests exceptions into Steward's connector errors.

hvac raises one exception class per HTTP status (hvac.exceptions, hvac 2.4):
400 InvalidRequest, 401 Unauthorized, 403 Forbidden, 404 InvalidPath, 412
PreconditionFailed, 429 RateLimitExceeded, 500 InternalServerError, 501
VaultNotInitialized, 502 BadGateway, 503 VaultDown (also a sealed server),
other statuses UnexpectedError. Network failures come from requests.
"""

from __future__ import annotations

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

# Checked in order, so a subclass must come before its base class.
_HVAC_ERRORS: tuple[tuple[type[Exception], type[ConnectorError]], ...] = (
    (hvac_errors.Unauthorized, ConnectorAuthError),
    (hvac_errors.Forbidden, ConnectorPermissionError),
    (hvac_errors.InvalidPath, ConnectorNotFoundError),
    (hvac_errors.InvalidRequest, ConnectorRequestError),
    (hvac_errors.ParamValidationError, ConnectorRequestError),
    (hvac_errors.UnsupportedOperation, ConnectorRequestError),
    (hvac_errors.RateLimitExceeded, ConnectorRateLimitedError),
    # A performance standby returns 412 until it has caught up; a retry works.
    (hvac_errors.PreconditionFailed, ConnectorUnavailableError),
    (hvac_errors.InternalServerError, ConnectorUnavailableError),
    (hvac_errors.VaultNotInitialized, ConnectorUnavailableError),
    (hvac_errors.BadGateway, ConnectorUnavailableError),
    (hvac_errors.VaultDown, ConnectorUnavailableError),
    (hvac_errors.UnexpectedError, ConnectorUnavailableError),
    (hvac_errors.VaultError, ConnectorUnavailableError),
)

_NETWORK_ERRORS: tuple[tuple[type[Exception], type[ConnectorError]], ...] = (
    (requests.exceptions.SSLError, ConnectorConfigError),
    (requests.exceptions.Timeout, ConnectorUnavailableError),
    (requests.exceptions.ConnectionError, ConnectorUnavailableError),
    (requests.exceptions.RequestException, ConnectorUnavailableError),
)

TRANSLATED = tuple(vendor for vendor, _ in _HVAC_ERRORS + _NETWORK_ERRORS)


def error_class_for(error_type: type[Exception]) -> type[ConnectorError]:
    """Return the connector error class that `error_type` translates to."""
    for vendor, ours in _HVAC_ERRORS + _NETWORK_ERRORS:
        if issubclass(error_type, vendor):
            return ours
    raise TypeError(f"no translation for {error_type.__name__}")


def translate(error: Exception, *, connector: str, action: str) -> ConnectorError:
    """Return the connector error for a vendor exception raised during `action`.

    The message keeps hvac's summary (the server's error list and the request
    path) and drops the response body.
    """
    error_type = error_class_for(type(error))
    if isinstance(error, hvac_errors.VaultError):
        summary = "; ".join(
            " ".join(str(item).split()) for item in error.errors or []
        ) or (
            str(error.args[0]) if error.args and error.args[0] else type(error).__name__
        )
        detail = f"{summary} ({error.method} {error.url})"
    else:
        detail = f"{type(error).__name__}: {error}"
    if error_type is ConnectorConfigError:
        detail += "; check ca_bundle and verify_tls"
    message = f"{action} failed: {detail}"
    if error_type is ConnectorRateLimitedError:
        return ConnectorRateLimitedError(message, connector=connector)
    return error_type(message, connector=connector)
