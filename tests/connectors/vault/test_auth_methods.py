"""Kubernetes login and namespaces of the vault connector, on real OpenBao.

OpenBao's kubernetes auth method calls the Kubernetes TokenReview API to
validate a login JWT. A small HTTP server on loopback takes the place of that
API: it authenticates one known JWT as the service account steward/steward
and rejects every other token.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hvac import exceptions as hvac_errors

from connectors.base import HealthState, IdentityRef, RevocationOutcome
from connectors.errors import ConnectorAuthError, ConnectorConfigError
from connectors.vault.connector import VaultConnector, create
from tests.openbao import OpenBao, steward_policy, token_of, unique

TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SERVICE_ACCOUNT = "steward"
SERVICE_ACCOUNT_NAMESPACE = "steward"
SERVICE_ACCOUNT_UID = "6f1f4c39-5d0e-4b8a-9c1e-2b7f3a9d4e10"
USERNAME = f"system:serviceaccount:{SERVICE_ACCOUNT_NAMESPACE}:{SERVICE_ACCOUNT}"


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def service_account_jwt(name: str = SERVICE_ACCOUNT) -> str:
    """Return an unsigned JWT with the claims of a service account token.

    OpenBao reads the service account from these claims but leaves the
    signature to the TokenReview, because the auth method has no pem_keys.
    """
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": f"system:serviceaccount:{SERVICE_ACCOUNT_NAMESPACE}:{name}",
        "kubernetes.io/serviceaccount/namespace": SERVICE_ACCOUNT_NAMESPACE,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": SERVICE_ACCOUNT_UID,
        "kubernetes.io/serviceaccount/secret.name": f"{name}-token",
    }
    parts = [
        _base64url(json.dumps(header).encode()),
        _base64url(json.dumps(claims).encode()),
        _base64url(b"unsigned"),
    ]
    return ".".join(parts)


KNOWN_JWT = service_account_jwt()


@dataclass
class TokenReview:
    """One request the TokenReview stand-in received."""

    path: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class TokenReviewServer:
    """The TokenReview stand-in and the requests it received, in order."""

    url: str
    reviews: list[TokenReview] = field(default_factory=list)


def _review_status(token: str) -> dict[str, Any]:
    if token != KNOWN_JWT:
        return {"authenticated": False, "error": "invalid bearer token"}
    return {
        "authenticated": True,
        "user": {
            "username": USERNAME,
            "uid": SERVICE_ACCOUNT_UID,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{SERVICE_ACCOUNT_NAMESPACE}",
                "system:authenticated",
            ],
        },
    }


@pytest.fixture
def token_review() -> Iterator[TokenReviewServer]:
    """Serve the TokenReview API on a free loopback port for one test."""
    reviews: list[TokenReview] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            reviews.append(
                TokenReview(self.path, self.headers.get("Authorization"), body)
            )
            if self.path != TOKEN_REVIEW_PATH:
                self.send_error(404)
                return
            token = str(body.get("spec", {}).get("token", ""))
            review = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
                "status": _review_status(token),
            }
            payload = json.dumps(review).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep request lines out of the test output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield TokenReviewServer(url=f"http://{host!s}:{port}", reviews=reviews)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def self_signed_pem() -> str:
    """Return a throw-away self-signed CA certificate in PEM form."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-review")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class KubernetesMount:
    """A kubernetes auth mount, its Steward role and that role's policy."""

    mount: str
    role: str
    policy: str


@pytest.fixture
def kubernetes_mount(
    openbao: OpenBao, token_review: TokenReviewServer
) -> Iterator[KubernetesMount]:
    """Enable kubernetes auth with a role bound to Steward's policy.

    Disables the mount and deletes the policy afterwards, because other tests
    discover every mount.
    """
    mount = unique("kubernetes")
    role = "steward"
    policy = unique("steward-kubernetes")
    openbao.root.sys.create_or_update_acl_policy(policy, steward_policy())
    openbao.root.sys.enable_auth_method("kubernetes", path=mount)
    try:
        # OpenBao 2.7.2 requires kubernetes_ca_cert when disable_local_ca_jwt
        # is true. The stand-in speaks plain HTTP, so the certificate is
        # stored but never used.
        openbao.root.write_data(
            f"auth/{mount}/config",
            data={
                "kubernetes_host": token_review.url,
                "kubernetes_ca_cert": self_signed_pem(),
                "disable_local_ca_jwt": True,
                "disable_iss_validation": True,
            },
        )
        openbao.root.write_data(
            f"auth/{mount}/role/{role}",
            data={
                "bound_service_account_names": [SERVICE_ACCOUNT],
                "bound_service_account_namespaces": [SERVICE_ACCOUNT_NAMESPACE],
                "token_policies": [policy],
                "token_ttl": "1h",
            },
        )
        yield KubernetesMount(mount, role, policy)
    finally:
        openbao.root.sys.disable_auth_method(mount)
        openbao.root.sys.delete_acl_policy(policy)


def kubernetes_options(
    openbao: OpenBao, mount: KubernetesMount, jwt_path: Path
) -> dict[str, Any]:
    return {
        "url": openbao.url,
        "auth_method": "kubernetes",
        "kubernetes_auth_mount": mount.mount,
        "kubernetes_role": mount.role,
        "kubernetes_jwt_path": str(jwt_path),
    }


def write_jwt(directory: Path, jwt: str) -> Path:
    path = directory / "token"
    path.write_text(jwt + "\n", encoding="utf-8")
    return path


def test_kubernetes_login_discovers_and_health(
    openbao: OpenBao,
    token_review: TokenReviewServer,
    kubernetes_mount: KubernetesMount,
    tmp_path: Path,
) -> None:
    _, seeded = token_of(
        openbao.root.auth.token.create(
            policies=["default"], display_name="kubernetes-seen", ttl="10m"
        )
    )
    jwt_path = write_jwt(tmp_path, KNOWN_JWT)
    connector = create(
        "vault-kubernetes", kubernetes_options(openbao, kubernetes_mount, jwt_path)
    )
    try:
        status = connector.check_health()
        records = {record.external_id: record for record in connector.discover()}
        accessor = connector.session.accessor
    finally:
        connector.close()
        openbao.root.auth.token.revoke_accessor(seeded)

    assert status.state is HealthState.OK
    assert status.detail.startswith(f"authenticated to {openbao.url}; token ttl ")
    assert records[seeded].kind == "vault_token"
    assert records[seeded].attributes["policies"] == ["default"]
    # Discovery leaves out the login token that close() revokes.
    assert accessor is not None
    assert accessor not in records

    # Exactly one login happened, and OpenBao reviewed the file's JWT.
    assert len(token_review.reviews) == 1
    review = token_review.reviews[0]
    assert review.path == TOKEN_REVIEW_PATH
    assert review.body["spec"]["token"] == KNOWN_JWT
    # With no token_reviewer_jwt, OpenBao presents the login JWT itself.
    assert review.authorization == f"Bearer {KNOWN_JWT}"

    # close() revoked the login token.
    with pytest.raises(hvac_errors.InvalidRequest):
        openbao.root.auth.token.lookup_accessor(accessor)


def test_kubernetes_token_carries_steward_policy(
    openbao: OpenBao,
    kubernetes_mount: KubernetesMount,
    tmp_path: Path,
) -> None:
    jwt_path = write_jwt(tmp_path, KNOWN_JWT)
    connector = create(
        "vault-kubernetes", kubernetes_options(openbao, kubernetes_mount, jwt_path)
    )
    try:
        own = connector.session.check()
    finally:
        connector.close()

    assert own["meta"]["service_account_name"] == SERVICE_ACCOUNT
    assert own["meta"]["service_account_namespace"] == SERVICE_ACCOUNT_NAMESPACE
    assert own["meta"]["service_account_uid"] == SERVICE_ACCOUNT_UID
    assert own["path"] == f"auth/{kubernetes_mount.mount}/login"
    assert sorted(own["policies"]) == sorted(["default", kubernetes_mount.policy])


def test_kubernetes_wrong_jwt_fails_auth(
    openbao: OpenBao,
    token_review: TokenReviewServer,
    kubernetes_mount: KubernetesMount,
    tmp_path: Path,
) -> None:
    wrong = service_account_jwt()[:-4] + "AAAA"
    jwt_path = write_jwt(tmp_path, wrong)
    connector = create(
        "vault-kubernetes", kubernetes_options(openbao, kubernetes_mount, jwt_path)
    )
    try:
        status = connector.check_health()
        with pytest.raises(ConnectorAuthError) as raised:
            list(connector.discover())
    finally:
        connector.close()

    assert status.state is HealthState.FAILING
    assert status.detail.startswith("log in with kubernetes failed: ")
    assert "permission denied" in status.detail
    assert wrong not in status.detail
    assert raised.value.connector == "vault-kubernetes"
    assert f"auth/{kubernetes_mount.mount}/login" in str(raised.value)
    assert wrong not in str(raised.value)
    # OpenBao accepted the JWT's claims and called the TokenReview API, which
    # rejected the token: once for the health check, once for discovery.
    assert len(token_review.reviews) == 2
    assert [review.body["spec"]["token"] for review in token_review.reviews] == [
        wrong,
        wrong,
    ]


def test_kubernetes_unbound_account_fails_auth(
    openbao: OpenBao,
    token_review: TokenReviewServer,
    kubernetes_mount: KubernetesMount,
    tmp_path: Path,
) -> None:
    jwt_path = write_jwt(tmp_path, service_account_jwt("intruder"))
    connector = create(
        "vault-kubernetes", kubernetes_options(openbao, kubernetes_mount, jwt_path)
    )
    try:
        with pytest.raises(ConnectorAuthError):
            connector.session.check()
    finally:
        connector.close()

    # The role binds only the service account steward, so OpenBao rejects
    # the claims before it calls the TokenReview API.
    assert token_review.reviews == []


def test_kubernetes_missing_jwt_file_is_config_error(
    openbao: OpenBao, kubernetes_mount: KubernetesMount, tmp_path: Path
) -> None:
    missing = tmp_path / "absent" / "token"
    connector = create(
        "vault-kubernetes", kubernetes_options(openbao, kubernetes_mount, missing)
    )
    try:
        with pytest.raises(ConnectorConfigError) as raised:
            connector.session.check()
        status = connector.check_health()
    finally:
        connector.close()

    assert str(missing) in str(raised.value)
    assert "kubernetes_jwt_path" in str(raised.value)
    assert status.state is HealthState.FAILING


def test_approle_wrong_secret_id_fails_auth(openbao: OpenBao) -> None:
    options = openbao.steward_login()
    options["secret_id"] = "00000000-0000-0000-0000-000000000000"
    connector = create("vault-main", options)
    try:
        with pytest.raises(ConnectorAuthError) as raised:
            connector.session.check()
    finally:
        connector.close()

    assert "invalid role or secret ID" in str(raised.value)


def test_unknown_fixed_token_fails_auth(openbao: OpenBao) -> None:
    connector = create("vault-main", {"url": openbao.url, "token": "not-a-token"})
    try:
        with pytest.raises(ConnectorAuthError) as raised:
            connector.session.check()
    finally:
        connector.close()

    assert "permission denied" in str(raised.value)
    assert "not-a-token" not in str(raised.value)


@pytest.fixture
def namespace(openbao: OpenBao) -> Iterator[str]:
    """Create a namespace for one test and delete it afterwards."""
    name = unique("steward-ns")
    openbao.cli("namespace", "create", name)
    try:
        yield name
    finally:
        openbao.cli("namespace", "delete", name)


def test_namespace_discovers_and_revokes(openbao: OpenBao, namespace: str) -> None:
    inside = hvac.Client(url=openbao.url, token=openbao.root_token, namespace=namespace)
    inside.sys.enable_auth_method("approle", path="approle")

    steward = unique("steward")
    inside.sys.create_or_update_acl_policy(steward, steward_policy())
    inside.auth.approle.create_or_update_approle(
        steward, token_policies=[steward], token_ttl="1h"
    )
    role_id = inside.auth.approle.read_role_id(steward)["data"]["role_id"]
    secret_id = inside.auth.approle.generate_secret_id(steward)["data"]["secret_id"]

    role = unique("payments")
    inside.auth.approle.create_or_update_approle(role, token_policies=["default"])
    created = inside.auth.approle.generate_secret_id(
        role, metadata={"owner": "carol@example.com"}
    )["data"]

    # A secret-id in the root namespace must stay out of the namespace's view.
    outside_role = unique("payments")
    openbao.root.auth.approle.create_or_update_approle(
        outside_role, token_policies=["default"]
    )
    outside = openbao.root.auth.approle.generate_secret_id(outside_role)["data"]

    connector: VaultConnector = create(
        "vault-ns",
        {
            "url": openbao.url,
            "namespace": namespace,
            "auth_method": "approle",
            "role_id": role_id,
            "secret_id": secret_id,
        },
    )
    try:
        status = connector.check_health()
        records = {record.external_id: record for record in connector.discover()}
        result = connector.revoke(
            IdentityRef(
                "vault-ns",
                "approle_secret_id",
                created["secret_id_accessor"],
                {"mount": "approle", "role": role},
            )
        )
    finally:
        connector.close()
        openbao.root.auth.approle.delete_role(outside_role)

    assert status.state is HealthState.OK

    found = records[created["secret_id_accessor"]]
    assert found.kind == "approle_secret_id"
    assert found.owner_email == "carol@example.com"
    assert found.attributes["role"] == role
    assert f"auth/approle/role/{role}" in records
    assert outside["secret_id_accessor"] not in records
    assert f"auth/approle/role/{outside_role}" not in records

    assert result.outcome is RevocationOutcome.REVOKED
    with pytest.raises(hvac_errors.InvalidPath):
        inside.auth.approle.read_secret_id_accessor(role, created["secret_id_accessor"])
