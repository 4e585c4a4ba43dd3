"""Steward's own session with a Vault/OpenBao server: login, renewal, requests.

Steward logs in with a fixed token, an AppRole or a Kubernetes service
account. Before each request the session checks the token's remaining time to
live and calls renew-self when it falls below `renew_below_seconds`; a token
that reached its maximum TTL is replaced by a fresh login (AppRole and
Kubernetes only). A token obtained by login is revoked when the session
closes, so that each Steward run leaves no token behind.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import hvac

from connectors.errors import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorNotFoundError,
    ConnectorPermissionError,
    ConnectorRequestError,
)
from connectors.vault.config import VaultOptions
from connectors.vault.errors import TRANSLATED, translate

logger = logging.getLogger(__name__)

Document = dict[str, Any]


def _data(response: Document | None) -> Document:
    if response is None:
        return {}
    data = response.get("data")
    return data if isinstance(data, dict) else {}


class VaultSession:
    """An authenticated session of one connector instance; safe across threads.

    Each thread gets its own hvac client (and so its own HTTP connection
    pool); they share the token, which only this object changes.
    """

    def __init__(self, name: str, options: VaultOptions) -> None:
        self.name = name
        self.options = options
        self._lock = threading.RLock()
        self._local = threading.local()
        self._clients: list[hvac.Client] = []
        self._token: str | None = None
        self._accessor: str | None = None
        self._expires_at: float | None = None
        self._lease_seconds = 0
        self._renewable = False
        self._renewed_at = float("-inf")
        self._at_max_ttl = False
        self._closed = False

    # Clients and requests

    def _new_client(self) -> hvac.Client:
        client = hvac.Client(
            url=self.options.url,
            verify=self.options.tls_verify(),
            # hvac passes the timeout to requests, which accepts float seconds.
            timeout=self.options.timeout_seconds,  # type: ignore[arg-type]
            namespace=self.options.namespace,
        )
        with self._lock:
            self._clients.append(client)
        return client

    def _client(self) -> hvac.Client:
        client: hvac.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._new_client()
            self._local.client = client
        return client

    def _send(
        self,
        method: str,
        path: str,
        *,
        action: str,
        body: Document | None = None,
        token: str | None = None,
    ) -> Document | None:
        client = self._client()
        client.token = token  # type: ignore[assignment]
        try:
            response = client.adapter.request(method, f"/v1/{path}", json=body)
        except TRANSLATED as error:
            raise translate(error, connector=self.name, action=action) from error
        if isinstance(response, dict):
            return response
        # JSONAdapter returns the raw response for 204 No Content.
        return None

    def request(
        self, method: str, path: str, *, action: str, body: Document | None = None
    ) -> Document | None:
        """Send one authenticated request; return the JSON body or None for 204.

        Raises a ConnectorError translated from hvac's exception.
        """
        token = self.ensure_token()
        return self._send(method, path, action=action, body=body, token=token)

    def read(self, path: str, *, action: str) -> Document:
        """Return the `data` of a GET request."""
        return _data(self.request("GET", path, action=action))

    def list_keys(self, path: str, *, action: str) -> list[str]:
        """Return the keys of a LIST request, or an empty list on a 404.

        Vault returns 404 for a LIST of an empty or missing folder and no
        error message, so 404 here means "no keys".
        """
        try:
            data = _data(self.request("LIST", path, action=action))
        except ConnectorNotFoundError:
            return []
        keys = data.get("keys") or []
        return [str(key) for key in keys]

    def read_post(self, path: str, body: Document, *, action: str) -> Document:
        """Return the `data` of a POST request; Vault's lookup endpoints use POST."""
        return _data(self.request("POST", path, action=action, body=body))

    def write(self, path: str, body: Document, *, action: str) -> Document | None:
        """Send a POST request and return its JSON body, or None for 204."""
        return self.request("POST", path, action=action, body=body)

    # Authentication

    @property
    def accessor(self) -> str | None:
        """Accessor of Steward's own token, known after the first request."""
        return self._accessor

    def _login(self) -> None:
        options = self.options
        if options.auth_method == "token" and options.token is not None:
            self._token = options.token.get_secret_value()
            data = _data(
                self._send_credentials(
                    "GET",
                    "auth/token/lookup-self",
                    action="look up Steward's token",
                    token=self._token,
                )
            )
            self._accept_lease(
                str(data.get("accessor", "")),
                int(data.get("ttl") or 0),
                bool(data.get("renewable")),
            )
            return
        if options.auth_method == "approle" and options.secret_id is not None:
            mount = options.approle_auth_mount
            body: Document = {
                "role_id": options.role_id,
                "secret_id": options.secret_id.get_secret_value(),
            }
        else:
            mount = options.kubernetes_auth_mount
            body = {"role": options.kubernetes_role, "jwt": self._kubernetes_jwt()}
        response = self._send_credentials(
            "POST",
            f"auth/{mount}/login",
            action=f"log in with {options.auth_method}",
            body=body,
        )
        auth = (response or {}).get("auth") or {}
        token = auth.get("client_token")
        if not token:
            raise ConnectorAuthError(
                f"log in with {options.auth_method} at auth/{mount} returned no token",
                connector=self.name,
            )
        self._token = str(token)
        self._accept_lease(
            str(auth.get("accessor", "")),
            int(auth.get("lease_duration") or 0),
            bool(auth.get("renewable")),
        )
        logger.info(
            "vault connector %s logged in with %s; token accessor %s, ttl %ss",
            self.name,
            options.auth_method,
            self._accessor,
            self._lease_seconds,
        )

    def _send_credentials(
        self,
        method: str,
        path: str,
        *,
        action: str,
        body: Document | None = None,
        token: str | None = None,
    ) -> Document | None:
        """Send a login or a first look-up; a rejection raises ConnectorAuthError.

        OpenBao 2.7.2 rejects a wrong secret-id with 400, and a Kubernetes JWT
        that its TokenReview does not authenticate, or an unknown token, with
        403. Those statuses otherwise translate to ConnectorRequestError or
        ConnectorPermissionError, which describe a bad request or a missing
        permission of a logged-in Steward.
        """
        try:
            return self._send(method, path, action=action, body=body, token=token)
        except (ConnectorPermissionError, ConnectorRequestError) as error:
            raise ConnectorAuthError(str(error), connector=self.name) from error

    def _kubernetes_jwt(self) -> str:
        path = self.options.kubernetes_jwt_path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConnectorConfigError(
                f"cannot read the Kubernetes service account token at {path} "
                f"(kubernetes_jwt_path): {error.strerror}",
                connector=self.name,
            ) from None

    def _accept_lease(
        self, accessor: str, ttl: int, renewable: bool, *, renewed: bool = False
    ) -> None:
        now = time.monotonic()
        self._accessor = accessor or None
        self._lease_seconds = ttl
        # A TTL of 0 means the token never expires (a root or periodic token
        # reports its period instead).
        self._expires_at = now + ttl if ttl > 0 else None
        self._renewable = renewable
        # Only a renewal starts the wait before the next one (see _needs_renewal).
        self._renewed_at = now if renewed else float("-inf")
        self._at_max_ttl = False

    def ensure_token(self) -> str:
        """Return a valid token, logging in or renewing it first when needed."""
        with self._lock:
            if self._closed:
                raise ConnectorConfigError(
                    "the vault session is closed", connector=self.name
                )
            if self._token is None:
                self._login()
            elif self._needs_renewal():
                self._renew()
            if self._token is None:
                raise ConnectorAuthError(
                    "no token after logging in", connector=self.name
                )
            return self._token

    def _needs_renewal(self) -> bool:
        if self._expires_at is None:
            return False
        now = time.monotonic()
        if self._expires_at - now >= self.options.renew_below_seconds:
            return False
        # Renewing at most once per tenth of the lease keeps a short-lived
        # token from being renewed before every request.
        return now - self._renewed_at >= max(1.0, self._lease_seconds / 10)

    def _renew(self) -> None:
        logins = self.options.auth_method != "token"
        if logins and (self._at_max_ttl or not self._renewable):
            logger.info(
                "vault connector %s token cannot be renewed further; logging in",
                self.name,
            )
            self._token = None
            self._login()
            return
        if not self._renewable:
            logger.warning(
                "vault connector %s token is not renewable and expires in %.0fs",
                self.name,
                (self._expires_at or 0) - time.monotonic(),
            )
            self._renewed_at = time.monotonic()
            return
        body: Document = {}
        if self.options.renew_increment_seconds is not None:
            body["increment"] = f"{self.options.renew_increment_seconds}s"
        try:
            response = self._send(
                "POST",
                "auth/token/renew-self",
                action="renew Steward's token",
                body=body,
                token=self._token,
            )
        except (ConnectorAuthError, ConnectorPermissionError):
            if not logins:
                raise
            logger.warning(
                "vault connector %s token renewal rejected; logging in again",
                self.name,
            )
            self._token = None
            self._login()
            return
        auth = (response or {}).get("auth") or {}
        previous = self._lease_seconds
        granted = int(auth.get("lease_duration") or 0)
        self._accept_lease(
            self._accessor or "", granted, bool(auth.get("renewable")), renewed=True
        )
        self._at_max_ttl = 0 < granted < previous
        logger.info(
            "vault connector %s renewed its token; ttl now %ss", self.name, granted
        )

    def check(self) -> Document:
        """Look up Steward's own token, proving the server accepts it."""
        return self.read("auth/token/lookup-self", action="look up Steward's token")

    def close(self) -> None:
        """Revoke a token this session logged in for, and close connections."""
        with self._lock:
            if self._closed:
                return
            if self._token is not None and self.options.auth_method != "token":
                try:
                    self._send(
                        "POST",
                        "auth/token/revoke-self",
                        action="revoke Steward's token",
                        token=self._token,
                    )
                    logger.info(
                        "vault connector %s revoked its login token %s",
                        self.name,
                        self._accessor,
                    )
                except ConnectorError as error:
                    logger.warning(
                        "vault connector %s could not revoke its login token %s: %s",
                        self.name,
                        self._accessor,
                        error,
                    )
            self._token = None
            self._closed = True
            for client in self._clients:
                client.adapter.close()
            self._clients.clear()
