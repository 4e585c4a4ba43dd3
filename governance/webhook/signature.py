"""Checking that a webhook request comes from a sender holding the shared secret.

Three modes, one per kind of sender:

- `timestamp`: `X-Steward-Signature: v1=HEX`, the HMAC-SHA256 of
  `v1:{X-Steward-Timestamp}:{raw body}`, with the timestamp in Unix seconds
  and within the allowed clock skew. A captured request stops working once
  its timestamp leaves the window.
- `body`: `X-Steward-Signature: sha256=HEX`, the HMAC-SHA256 of the raw body.
- `static`: `X-Steward-Token: SECRET`, the shared secret itself.

Every comparison of a secret-derived value runs in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime

from governance.settings import WebhookSettings

TIMESTAMP_HEADER = "X-Steward-Timestamp"
SIGNATURE_HEADER = "X-Steward-Signature"
TOKEN_HEADER = "X-Steward-Token"  # noqa: S105 (a header name, not a secret)

TIMESTAMP_SCHEME = "v1"
BODY_SCHEME = "sha256"

# Unix seconds as plain ASCII digits: no sign, no fraction, no spaces.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """The request does not prove knowledge of the secret.

    The message gives the reason. It names headers and limits only, never a
    header's value.
    """


def verify_request(
    headers: Mapping[str, str],
    body: bytes,
    settings: WebhookSettings,
    *,
    now: datetime,
) -> None:
    """Raise SignatureError unless the request is authentic in the configured mode.

    `headers` maps canonical header names (as in TOKEN_HEADER) to their raw
    values. Without `settings.secret` every request is rejected.
    """
    if settings.secret is None:
        raise SignatureError("no webhook secret is configured")
    secret = settings.secret.get_secret_value().encode("utf-8")
    if settings.mode == "static":
        _verify_token(_required(headers, TOKEN_HEADER), secret)
    elif settings.mode == "body":
        expected = _hmac_hex(secret, body)
        _verify_signature(headers, BODY_SCHEME, expected)
    else:
        timestamp = _required(headers, TIMESTAMP_HEADER)
        _check_timestamp(timestamp, now, settings.max_clock_skew_seconds)
        signed = f"{TIMESTAMP_SCHEME}:{timestamp}:".encode("ascii") + body
        _verify_signature(headers, TIMESTAMP_SCHEME, _hmac_hex(secret, signed))


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise SignatureError(f"missing {name} header")
    return value


def _hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _check_timestamp(text: str, now: datetime, max_skew_seconds: int) -> None:
    if not _UNIX_SECONDS.fullmatch(text):
        raise SignatureError(
            f"invalid {TIMESTAMP_HEADER} header: expected Unix time in whole seconds"
        )
    offset = int(text) - int(now.timestamp())
    if offset < -max_skew_seconds:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {-offset} seconds old, and requests older "
            f"than {max_skew_seconds} seconds are rejected"
        )
    if offset > max_skew_seconds:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {offset} seconds in the future: check the "
            "sender's clock"
        )


def _verify_signature(headers: Mapping[str, str], scheme: str, expected: str) -> None:
    provided = _required(headers, SIGNATURE_HEADER)
    # PEP 3333 passes header values as Latin-1 text, so encoding them back
    # gives the bytes that were sent.
    candidate = provided.lower().encode("latin-1", errors="replace")
    reference = f"{scheme}={expected}".encode("ascii")
    if not hmac.compare_digest(candidate, reference):
        raise SignatureError(
            f"invalid {SIGNATURE_HEADER}: expected {scheme}=HEX signed with the "
            "shared secret"
        )


def _verify_token(provided: str, secret: bytes) -> None:
    # compare_digest may reveal the length of its inputs, so it compares
    # fixed-length digests of the token and the secret.
    candidate = hashlib.sha256(provided.encode("latin-1", errors="replace")).digest()
    reference = hashlib.sha256(secret).digest()
    if not hmac.compare_digest(candidate, reference):
        raise SignatureError(f"invalid {TOKEN_HEADER}")
