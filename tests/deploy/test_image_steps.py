"""The container image, checked without a Docker engine.

CI machines have no Docker engine, so these tests read the Dockerfile and
repeat its steps on the host. The builder stage's COPY lines fill a fresh
build context, and its RUN lines run unchanged in it to build the wheel and
install it into a new virtual environment. The installed `steward` then
migrates an SQLite file and serves HTTP as an unprivileged user, and the
image's HEALTHCHECK command runs against it. What cannot be repeated without
an engine (the base image's own contents) is checked by reading the file.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

from governance.database import migrate
from governance.settings import ServerSettings
from tests.support.dockerfile import Dockerfile, Stage, parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# Where the image keeps the virtual environment. The tests use a temporary one.
IMAGE_VENV = "/opt/steward"
# PATH of the official python images before the Dockerfile's ENV lines.
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|libpq-dev|pkg-config)\b"
)
PACKAGE_INSTALL = re.compile(r"\b(apt-get|apt|apk|dnf|yum)\b[^&;|]*\binstall\b")
SERVE_START_SECONDS = 30


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE)


def _packages() -> list[str]:
    """Return the top-level packages that pyproject.toml puts in the wheel."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        path.name
        for path in ROOT.iterdir()
        if (path / "__init__.py").is_file()
        and any(fnmatch(path.name, pattern) for pattern in patterns)
    )


# --- What the Dockerfile declares -------------------------------------------


def test_stages_share_pinned_base(dockerfile: Dockerfile) -> None:
    builder = dockerfile.stage("builder")
    assert len(dockerfile.stages) == 2
    # The copied virtual environment links to the base image's interpreter.
    assert builder.base == dockerfile.final.base
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", dockerfile.final.base), (
        f"base image {dockerfile.final.base} is not pinned to a 3.11.N slim tag"
    )


def test_final_stage_has_no_build_tools(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    for instruction in final.all("RUN"):
        assert not PACKAGE_INSTALL.search(instruction.arguments), instruction
        assert not BUILD_TOOLS.search(instruction.arguments), instruction
    copies = [shlex.split(item.arguments) for item in final.all("COPY")]
    assert copies == [["--from=builder", IMAGE_VENV, IMAGE_VENV]]
    keywords = {item.keyword for item in final.instructions}
    assert "ADD" not in keywords


def test_final_stage_user_is_fixed_non_root(dockerfile: Dockerfile) -> None:
    user = dockerfile.final.one("USER").arguments
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"USER {user} is not a numeric uid"
    assert gid.isdigit(), f"USER {user} has no numeric gid"
    assert int(uid) != 0
    assert int(gid) != 0
    created = " ".join(item.arguments for item in dockerfile.final.all("RUN"))
    assert f"--uid {uid}" in created
    assert f"--gid {gid}" in created


def test_entrypoint_command_and_port(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    assert final.one("ENTRYPOINT").exec_form() == ["steward"]
    assert final.one("CMD").exec_form() == ["serve"]
    assert final.one("EXPOSE").arguments == str(ServerSettings().port)
    # Containers must accept connections from outside their own loopback.
    every_interface = "0.0.0.0"  # noqa: S104 - the value expected, not a bind
    assert final.environment({})["STEWARD_SERVER__HOST"] == every_interface


def test_image_never_migrates_at_start(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for instruction in stage.instructions:
            assert "db upgrade" not in instruction.arguments, instruction
            assert "alembic" not in instruction.arguments, instruction


def test_healthcheck_calls_healthz(dockerfile: Dockerfile) -> None:
    options, command = dockerfile.final.healthcheck()
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    assert "urllib" in command[2]
    assert any(option.startswith("--timeout=") for option in options)


def test_builder_copies_every_package(dockerfile: Dockerfile) -> None:
    copied = set()
    for instruction in dockerfile.stage("builder").all("COPY"):
        *sources, _ = shlex.split(instruction.arguments)
        copied.update(sources)
    packages = _packages()
    assert "governance" in packages
    for package in packages:
        assert package in copied, f"the builder stage does not copy {package}"


def test_dockerignore_admits_copied_sources(dockerfile: Dockerfile) -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded first, so only the listed sources are sent.
    assert rules[0] == "*"
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for instruction in dockerfile.stage("builder").all("COPY"):
        *sources, _ = shlex.split(instruction.arguments)
        for source in sources:
            assert source in admitted, f"{source} is copied but .dockerignore drops it"


# --- The builder's steps, repeated on the host --------------------------------


@dataclass(frozen=True)
class RunAs:
    """How to start a command as an unprivileged user, and that user's ids."""

    prefix: list[str]
    uid: int
    gid: int


@dataclass(frozen=True)
class BuiltImage:
    """The virtual environment the builder stage made, and the image's ENV."""

    venv: Path
    final: Stage
    run_as: RunAs


def _unprivileged() -> RunAs:
    if os.geteuid() != 0:
        return RunAs(prefix=[], uid=os.getuid(), gid=os.getgid())
    nobody = pwd.getpwnam("nobody")
    setpriv = shutil.which("setpriv")
    if setpriv:
        return RunAs(
            prefix=[
                setpriv,
                f"--reuid={nobody.pw_uid}",
                f"--regid={nobody.pw_gid}",
                "--clear-groups",
                "--",
            ],
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
        )
    runuser = shutil.which("runuser")
    if runuser:
        return RunAs(
            prefix=[runuser, "-u", "nobody", "--"],
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
        )
    pytest.skip(
        "the tests run as root and neither setpriv nor runuser is installed, "
        "so steward cannot be started as an unprivileged user"
    )


def _interpreter(run_as: RunAs) -> str:
    """Return a Python 3.11+ with venv and pip that the unprivileged user can run.

    A virtual environment links to its base interpreter, so one under a
    private home directory (pyenv under /root, say) would not start as the
    user nobody.
    """
    candidates = [
        getattr(sys, "_base_executable", sys.executable),
        "/usr/local/bin/python3.11",
        "/usr/bin/python3.11",
        shutil.which("python3.11"),
        shutil.which("python3"),
    ]
    probe = "import sys, venv, ensurepip, pip; sys.exit(sys.version_info < (3, 11))"
    for candidate in dict.fromkeys(c for c in candidates if c):
        if not Path(candidate).is_file():
            continue
        result = subprocess.run(
            [*run_as.prefix, candidate, "-c", probe],
            capture_output=True,
            check=False,
            cwd="/",
        )
        if result.returncode == 0:
            return candidate
    pytest.fail(
        f"none of {candidates} is a Python 3.11+ with venv and pip that uid "
        f"{run_as.uid} can run: install python3-venv and python3-pip"
    )


def _fill_context(builder: Stage, context: Path) -> None:
    """Copy what the builder's COPY lines name into `context`, like the engine."""
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]")
    for instruction in builder.all("COPY"):
        tokens = shlex.split(instruction.arguments)
        assert not any(token.startswith("--") for token in tokens), instruction
        *sources, destination = tokens
        target = context / destination
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=ignore)
            elif destination.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)
            else:
                shutil.copy2(path, target)


def _build_environment(builder: Stage, venv: Path, tools: Path) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STEWARD_")
        and key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    }
    env = {
        key: value.replace(IMAGE_VENV, str(venv))
        for key, value in builder.environment(inherited).items()
    }
    # The pip cache changes how long the install takes, not what it installs.
    env.pop("PIP_NO_CACHE_DIR", None)
    env["PATH"] = f"{tools}:{env['PATH']}"
    return env


def _scratch_directory(prefix: str) -> Path:
    """Create a directory that every user may read, in RAM when possible.

    Not under pytest's tmp_path, because its parent is private to the user
    running the tests. A RAM-backed /dev/shm keeps the install's thousands of
    small files off the disk, which is slow when other jobs share it.
    """
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp below makes a private name
    parent = None
    if (
        shm.is_dir()
        and os.access(shm, os.W_OK | os.X_OK)
        and not os.statvfs(shm).f_flag & os.ST_NOEXEC
    ):
        parent = shm
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def built_image(dockerfile: Dockerfile) -> Iterator[BuiltImage]:
    run_as = _unprivileged()
    root = _scratch_directory("steward-image-")
    try:
        context = root / "src"
        tools = root / "tools"
        venv = root / "venv"
        context.mkdir()
        tools.mkdir()
        (root / "tmp").mkdir()
        (tools / "python").symlink_to(_interpreter(run_as))
        builder = dockerfile.stage("builder")
        _fill_context(builder, context)
        env = _build_environment(builder, venv, tools)
        env["TMPDIR"] = str(root / "tmp")
        for instruction in builder.all("RUN"):
            result = subprocess.run(
                ["sh", "-c", instruction.arguments],
                cwd=context,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, (
                f"RUN at Dockerfile line {instruction.line} failed:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        yield BuiltImage(venv=venv, final=dockerfile.final, run_as=run_as)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _data_directory(built: BuiltImage, tmp_root: Path) -> Path:
    """Return a directory the unprivileged user owns, like the image's WORKDIR."""
    data = Path(tempfile.mkdtemp(prefix="steward-data-", dir=tmp_root))
    data.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(data, built.run_as.uid, built.run_as.gid)
    return data


def _runtime_environment(built: BuiltImage, data: Path) -> dict[str, str]:
    """Return the image's environment with the test's paths and settings."""
    image = built.final.environment(
        {"PATH": BASE_IMAGE_PATH, "HOME": str(data), "LANG": "C.UTF-8"}
    )
    env = {
        key: value.replace(IMAGE_VENV, str(built.venv)) for key, value in image.items()
    }
    env["STEWARD_DATABASE_URL"] = f"sqlite:///{data / 'steward.db'}"
    # The image listens on every interface, but the tests use loopback only.
    env["STEWARD_SERVER__HOST"] = "127.0.0.1"
    return env


def _container_command(built: BuiltImage, *args: str) -> list[str]:
    """Return what `docker run IMAGE ARGS` runs, as the unprivileged user."""
    command = list(args) or built.final.one("CMD").exec_form()
    return [*built.run_as.prefix, *built.final.one("ENTRYPOINT").exec_form(), *command]


def _steward(
    built: BuiltImage, data: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _container_command(built, *args),
        cwd=data,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def data_root() -> Iterator[Path]:
    root = _scratch_directory("steward-run-")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_image_installs_runtime_only(built_image: BuiltImage, data_root: Path) -> None:
    packages = _packages()
    extras = ["pytest", "mypy", "moto", "time_machine", "tests"]
    probe = (
        "import importlib.util, json, sys, governance; "
        "print(json.dumps({'found': {n: importlib.util.find_spec(n) is not None "
        "for n in sys.argv[1:]}, 'governance': governance.__file__}))"
    )
    names = [*packages, "waitress", "psycopg", *extras]
    result = subprocess.run(
        [str(built_image.venv / "bin" / "python"), "-c", probe, *names],
        cwd=data_root,
        env={"PATH": BASE_IMAGE_PATH},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    found = report["found"]
    for package in packages:
        assert found[package], f"{package} is missing from the wheel"
    assert found["waitress"]
    assert found["psycopg"]
    for extra in extras:
        assert not found[extra], f"{extra} is installed in the image"
    assert report["governance"].startswith(str(built_image.venv))
    assert not (built_image.venv / "bin" / "ruff").exists()


@pytest.mark.slow
def test_db_upgrade_as_non_root(built_image: BuiltImage, data_root: Path) -> None:
    data = _data_directory(built_image, data_root)
    env = _runtime_environment(built_image, data)

    result = _steward(built_image, data, env, "db", "upgrade")

    assert result.returncode == 0, result.stderr
    head = migrate.head_revision()
    assert f"database at revision {head} (was empty)" in result.stdout
    database = data / "steward.db"
    assert database.stat().st_uid == built_image.run_as.uid
    again = _steward(built_image, data, env, "db", "current")
    assert again.stdout.strip() == f"{head} (current)"


# --- `steward serve` from the built environment -------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _listener_uid(port: int) -> int | None:
    """Return the uid owning the IPv4 socket listening on 127.0.0.1:port."""
    address = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        listening = fields[3] == "0A"
        if listening and fields[1] == address:
            return int(fields[7])
    return None


def _wait_for_health(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVE_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"steward serve exited with {process.returncode}:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        try:
            status, _ = _get(f"http://127.0.0.1:{port}/healthz")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
            continue
        if status == 200:
            return
        time.sleep(0.1)
    pytest.fail(
        f"/healthz did not answer 200 within {SERVE_START_SECONDS} s:\n"
        + log.read_text(errors="replace")[-4000:]
    )


def _run_healthcheck(
    built: BuiltImage, data: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    _, command = built.final.healthcheck()
    return subprocess.run(
        [*built.run_as.prefix, *command],
        cwd=data,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.mark.slow
def test_serve_rejects_unmigrated_database(
    built_image: BuiltImage, data_root: Path
) -> None:
    data = _data_directory(built_image, data_root)
    env = _runtime_environment(built_image, data)
    env["STEWARD_SERVER__PORT"] = str(_free_port())
    env["STEWARD_SLACK__BOT_TOKEN"] = "xoxb-x"
    env["STEWARD_SLACK__SIGNING_SECRET"] = "x"

    result = _steward(built_image, data, env, "serve")

    assert result.returncode == 2, result.stderr
    assert "steward db upgrade" in result.stderr
    assert not (data / "steward.db").exists()


@pytest.mark.slow
def test_serve_as_non_root_passes_healthcheck(
    built_image: BuiltImage, data_root: Path
) -> None:
    data = _data_directory(built_image, data_root)
    env = _runtime_environment(built_image, data)
    upgrade = _steward(built_image, data, env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr

    # Connections to a socket that is bound but not listening fail at once,
    # so its address serves as Slack's Web API and as an unreachable proxy.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        port = _free_port()
        env["STEWARD_SERVER__PORT"] = str(port)
        env["STEWARD_SLACK__BOT_TOKEN"] = "xoxb-x"
        env["STEWARD_SLACK__SIGNING_SECRET"] = "x"
        env["STEWARD_SLACK__API_URL"] = f"{closed_url}/api/"
        env["STEWARD_SLACK__TIMEOUT_SECONDS"] = "2"
        # Docker runs the check with the container's environment, which may
        # name a proxy for reaching Slack. The check must bypass it.
        check_env = dict(env, HTTP_PROXY=closed_url, http_proxy=closed_url)

        log = data_root / "serve.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                _container_command(built_image),
                cwd=data,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_health(process, port, log)
            assert _listener_uid(port) == built_image.run_as.uid

            status, body = _get(f"http://127.0.0.1:{port}/readyz")
            checks = {check["name"]: check for check in json.loads(body)["checks"]}
            assert status in {200, 503}
            assert checks["database"]["ok"] is True
            assert checks["migrations"]["ok"] is True

            status, body = _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            assert b"steward_database_up 1.0" in body

            healthy = _run_healthcheck(built_image, data, check_env)
            assert healthy.returncode == 0, healthy.stderr
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SERVE_START_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail("steward serve did not stop within 30 s of SIGTERM")

        assert process.returncode == 0, log.read_text(errors="replace")[-4000:]
        stopped = _run_healthcheck(built_image, data, check_env)
        assert stopped.returncode != 0
