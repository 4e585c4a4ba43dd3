"""A real OpenBao dev server for connector tests, on a free loopback port.

`openbao` starts one server per test session; `start_openbao` starts another
for a test that must damage its server (sealing it, for example). The root
token only seeds data and inspects results: Steward itself always logs in
with an AppRole bound to deploy/vault/steward-policy.hcl.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

REPOSITORY = Path(__file__).resolve().parent.parent
POLICY_FILE = REPOSITORY / "deploy" / "vault" / "steward-policy.hcl"
BAO = Path(os.environ.get("STEWARD_TEST_BAO", REPOSITORY / ".venv" / "bin" / "bao"))
START_TIMEOUT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def steward_policy(
    approle_mount: str = "approle", kv2_mount: str = "secret", kv1_mount: str = "kv"
) -> str:
    """Return the repository's Steward policy with its default mounts replaced."""
    text = POLICY_FILE.read_text(encoding="utf-8")
    text = text.replace('"auth/approle/', f'"auth/{approle_mount}/')
    text = text.replace('"secret/metadata/', f'"{kv2_mount}/metadata/')
    return text.replace('"kv/*"', f'"{kv1_mount}/*"')


@dataclass
class OpenBao:
    """A running dev server and a root client for arranging tests."""

    url: str
    root_token: str
    process: subprocess.Popen[bytes]
    home: Path
    _root: hvac.Client | None = field(default=None, repr=False)

    @property
    def root(self) -> hvac.Client:
        if self._root is None:
            self._root = hvac.Client(url=self.url, token=self.root_token)
        return self._root

    def cli(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run the `bao` command against this server with the root token."""
        environment = {
            **os.environ,
            "HOME": str(self.home),
            "BAO_ADDR": self.url,
            "BAO_TOKEN": self.root_token,
        }
        return subprocess.run(
            [str(BAO), *arguments],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )

    def enable_approle(self, mount: str) -> None:
        self.root.sys.enable_auth_method("approle", path=mount)

    def enable_kv(self, mount: str, version: int) -> None:
        self.root.sys.enable_secrets_engine(
            "kv", path=mount, options={"version": str(version)}
        )

    @contextmanager
    def scratch_mounts(
        self, approle: str | None = None, kv2: str | None = None, kv1: str | None = None
    ) -> Iterator[None]:
        """Enable mounts for one test and disable them afterwards.

        Other tests discover every mount, and Steward's default policy does
        not cover these, so they must not outlive the test.
        """
        try:
            if approle:
                self.enable_approle(approle)
            if kv2:
                self.enable_kv(kv2, 2)
            if kv1:
                self.enable_kv(kv1, 1)
            yield
        finally:
            if approle:
                self.root.sys.disable_auth_method(approle)
            for mount in (kv2, kv1):
                if mount:
                    self.root.sys.disable_secrets_engine(mount)

    def steward_login(
        self,
        *,
        approle_mount: str = "approle",
        kv2_mount: str = "secret",
        kv1_mount: str = "kv",
        login_mount: str = "approle",
    ) -> dict[str, str]:
        """Create a Steward AppRole bound to the rendered policy; return options.

        The returned connector options log in with that AppRole.
        """
        name = f"steward-{uuid.uuid4().hex[:8]}"
        self.root.sys.create_or_update_acl_policy(
            name, steward_policy(approle_mount, kv2_mount, kv1_mount)
        )
        self.root.auth.approle.create_or_update_approle(
            name,
            token_policies=[name],
            token_no_default_policy=False,
            token_ttl="1h",
            mount_point=login_mount,
        )
        role_id = self.root.auth.approle.read_role_id(name, mount_point=login_mount)
        secret = self.root.auth.approle.generate_secret_id(
            name, mount_point=login_mount
        )
        return {
            "url": self.url,
            "auth_method": "approle",
            "approle_auth_mount": login_mount,
            "role_id": role_id["data"]["role_id"],
            "secret_id": secret["data"]["secret_id"],
        }

    def is_sealed(self) -> bool:
        response = requests.get(f"{self.url}/v1/sys/seal-status", timeout=5)
        return bool(response.json()["sealed"])


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"bao server exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            if requests.get(f"{url}/v1/sys/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bao server did not start within {START_TIMEOUT_SECONDS}s")


@contextmanager
def start_openbao(directory: Path) -> Iterator[OpenBao]:
    """Start a dev server on 127.0.0.1; stop it when the block ends."""
    if not BAO.is_file():
        pytest.skip(f"bao binary not found at {BAO} (set STEWARD_TEST_BAO)")
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    root_token = f"root-{secrets.token_hex(8)}"
    log = directory / "bao.log"
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(directory)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(BAO),
                "server",
                "-dev",
                f"-dev-root-token-id={root_token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, process, log)
        yield OpenBao(url=url, root_token=root_token, process=process, home=directory)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One OpenBao dev server for the whole session, with KV v1 at kv/."""
    directory = tmp_path_factory.mktemp("openbao")
    with start_openbao(directory) as server:
        server.enable_approle("approle")
        server.enable_kv("kv", 1)
        yield server
    shutil.rmtree(directory, ignore_errors=True)


def unique(prefix: str) -> str:
    """Return `prefix` with a short random suffix, for names tests must not share."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def token_of(response: Any) -> tuple[str, str]:
    """Return (token, accessor) from an hvac token-creation response."""
    auth = response["auth"]
    return auth["client_token"], auth["accessor"]
