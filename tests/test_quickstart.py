"""`steward quickstart` in console mode, run as a subprocess and driven by a script.

The script file is a named pipe: the test reads the transcript as it grows
and writes each next line, because the control numbers and secret-id
accessors it needs appear only in the transcript. The owner revokes a
privileged AppRole secret-id from her review request, the security admin
approves, and the console's `login` command shows the secret-id stop
working. Quitting must stop OpenBao, and a second run must start clean.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.openbao import BAO

STEWARD = Path(sys.executable).parent / "steward"
TIMEOUT_SECONDS = 120.0
OWNER = "olive.owner@example.com"
ADMIN = "security@example.com"
SECTION = re.compile(r"^== (.+?) ==$", re.MULTILINE)
ACCESSOR = re.compile(r"approle_secret_id in openbao: (\S+)")
OPENBAO_URL = re.compile(r"OpenBao is listening on (http://127\.0\.0\.1:(\d+))\.")
EXPORT = re.compile(r"export BAO_ADDR=(\S+) BAO_TOKEN=(\S+)")


def _environment() -> dict[str, str]:
    """Return this process's environment without any STEWARD_ setting."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("STEWARD_")
    }


class QuickstartProcess:
    """A running quickstart: its transcript so far and the pipe it reads."""

    def __init__(self, directory: Path, script: Path) -> None:
        self.process = subprocess.Popen(
            [
                str(STEWARD),
                "quickstart",
                "--directory",
                str(directory),
                "--script",
                str(script),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_environment(),
        )
        self._text = ""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._pipe = self._open_pipe(script)

    def _read(self) -> None:
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        while True:
            chunk = os.read(descriptor, 65536)
            with self._changed:
                if chunk:
                    self._text += chunk.decode("utf-8", errors="replace")
                self._changed.notify_all()
            if not chunk:
                return

    def _open_pipe(self, script: Path) -> int:
        """Open the pipe for writing once the quickstart opened it for reading."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                return os.open(script, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                # ENXIO: the quickstart has not opened the pipe yet.
                if self.process.poll() is not None:
                    raise AssertionError(self.text) from None
                time.sleep(0.05)
        raise AssertionError("the quickstart never opened its script")

    @property
    def text(self) -> str:
        with self._changed:
            return self._text

    def expect(self, pattern: str, start: int = 0) -> re.Match[str]:
        """Wait until `pattern` appears in the transcript after `start`."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        with self._changed:
            while True:
                found = compiled.search(self._text, start)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError(
                        f"{pattern!r} not in the transcript:\n{self._text[start:]}"
                    )
                self._changed.wait(remaining)

    def send(self, line: str, prompt: str | None) -> str:
        """Type one line, wait for the next `prompt` and return what was printed."""
        start = len(self.text)
        os.write(self._pipe, (line + "\n").encode())
        if prompt is None:
            return ""
        end = self.expect(re.escape(f"\n{prompt}> "), start).start()
        return self.text[start:end]

    def close_script(self) -> None:
        os.close(self._pipe)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self._reader.join(timeout=10)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[QuickstartProcess, Path]]:
    if not BAO.is_file():
        pytest.skip(f"bao binary not found at {BAO} (set STEWARD_TEST_BAO)")
    script = tmp_path / "script"
    os.mkfifo(script)
    directory = tmp_path / "quickstart"
    session = QuickstartProcess(directory, script)
    try:
        yield session, directory
    finally:
        session.stop()


def _sections(text: str, where: str) -> list[str]:
    """Return the drawn messages whose heading names `where`, in order."""
    marks = list(SECTION.finditer(text))
    found = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        if mark.group(1).startswith(where):
            found.append(text[mark.end() : end])
    return found


def _privileged_secret_id(text: str) -> tuple[str, str]:
    """Return the accessor and Revoke number of a privileged secret-id of the owner."""
    for message in _sections(text, f"direct message to {OWNER}"):
        for entry in message.split("-" * 74):
            accessor = ACCESSOR.search(entry)
            revoke = re.search(r"\[(\d+)\] Revoke", entry)
            if accessor and revoke and "Risk tier: privileged" in entry:
                return accessor.group(1), revoke.group(1)
    raise AssertionError(f"no privileged secret-id reviewed by {OWNER}:\n{text}")


def _approve_number(text: str, accessor: str) -> str:
    for message in _sections(text, "#security"):
        approve = re.search(r"\[(\d+)\] Approve", message)
        if accessor[:8] in message and approve:
            return approve.group(1)
    raise AssertionError(f"no approval request for {accessor}:\n{text}")


def _listed_secret_ids(export: re.Match[str], home: Path) -> str:
    """Return `bao list` of the billing role's secret-id accessors, as printed."""
    listed = subprocess.run(
        [str(BAO), "list", "auth/approle/role/billing-service/secret-id"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "BAO_ADDR": export.group(1),
            "BAO_TOKEN": export.group(2),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return listed.stdout


def _listening(port: str) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/sys/health", timeout=5)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _processes_with(argument: str) -> list[int]:
    """Return the ids of running processes whose command line contains `argument`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if argument.encode() in command:
            found.append(int(entry.name))
    return found


def test_quickstart_revocation_in_openbao(
    started: tuple[QuickstartProcess, Path], tmp_path: Path
) -> None:
    session, directory = started
    session.expect(re.escape(f"\n{ADMIN}> "))
    opening = session.text
    address = OPENBAO_URL.search(opening)
    assert address is not None, opening
    export = EXPORT.search(opening)
    assert export is not None, opening
    assert export.group(1) == address.group(1)
    inventory = re.search(r"Inventory: .*", opening)
    assert inventory is not None
    assert "Campaign 1 opened" in inventory.group(0)

    # The owner's review request lists a privileged secret-id with its evidence.
    accessor, revoke = _privileged_secret_id(opening)
    before = session.send(f"login {accessor}", ADMIN)
    assert "login with billing-service succeeded" in before
    assert accessor in _listed_secret_ids(export, tmp_path)

    session.send(f"as {OWNER}", OWNER)
    mark = len(session.text)
    session.send(revoke, None)
    session.expect(r"Revoke a privileged identity\?.*\n.*type yes to confirm", mark)
    decided = session.send("yes", OWNER)
    assert "Revocation requested by Olive Owner" in decided
    waiting = session.send(f"login {accessor}", OWNER)
    assert "login with billing-service succeeded" in waiting

    # The security admin approves, and the worker revokes at once.
    session.send(f"as {ADMIN}", ADMIN)
    approve = _approve_number(session.text, accessor)
    mark = len(session.text)
    session.send(approve, None)
    session.expect(r"Approve the revocation\?.*\n.*type yes to confirm", mark)
    approved = session.send("yes", ADMIN)
    assert "Approved by Sam Security" in approved
    after = session.send(f"login {accessor}", ADMIN)
    assert "login with billing-service failed" in after
    assert "succeeded" not in after
    remaining = _listed_secret_ids(export, tmp_path)
    assert accessor not in remaining
    assert len(remaining.split()) > 2

    # Quitting stops OpenBao.
    port = address.group(2)
    assert _listening(port)
    session.send("quit", None)
    session.close_script()
    assert session.process.wait(timeout=TIMEOUT_SECONDS) == 0
    session.expect("Stopped OpenBao and Steward.")
    assert not _listening(port)
    assert _processes_with(f"-dev-listen-address=127.0.0.1:{port}") == []

    # A second run in the same directory starts from nothing.
    script = tmp_path / "quit.txt"
    script.write_text("quit\n", encoding="utf-8")
    second = subprocess.run(
        [
            str(STEWARD),
            "quickstart",
            "--directory",
            str(directory),
            "--script",
            str(script),
        ],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    again = re.search(r"Inventory: .*", second.stdout)
    assert again is not None
    assert again.group(0) == inventory.group(0)
    assert second.stdout.rstrip().endswith("Stopped OpenBao and Steward.")
