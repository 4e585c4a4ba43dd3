"""`steward serve`: start-up checks, readiness, a draining stop, and the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import bot.cli
import bot.service
from bot.app import build_bot
from bot.cli import build_service
from bot.client import build_client
from bot.local_api import SlackApi
from bot.nhi.replies import help_reply
from bot.payloads import FORM, signed, slash_command_body
from bot.scopes import REQUIRED_SCOPES
from bot.service import SLACK_CHECK, Background, Service, check_slack_auth
from connectors.registry import CONNECTOR_TYPES
from governance.app import create_app
from governance.cli.main import cli
from governance.settings import ConnectorSettings, ServerSettings, Settings
from tests.bot.conftest import OWNER_ID, SIGNING_SECRET, Response, get, post
from tests.support.file_revoker import FILE_REVOKER_FACTORY, TYPE_NAME, create_store

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 10.0


def checks_by_name(response: Response) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in json.loads(response.body)["checks"]}


def refused(url: str) -> bool:
    """Return whether the server at `url` no longer accepts requests.

    A connection made just before the listener closed is reset instead.
    """
    try:
        with urllib.request.urlopen(url, timeout=WAIT_SECONDS):
            return False
    except urllib.error.HTTPError:
        return False
    except urllib.error.URLError as error:
        return isinstance(error.reason, ConnectionRefusedError | ConnectionResetError)
    except ConnectionResetError:
        return True


def wait_for(condition: Any, what: str) -> None:
    event = threading.Event()
    for _ in range(int(WAIT_SECONDS / 0.05)):
        if condition():
            return
        event.wait(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def serve_settings(bot_settings: Settings) -> Settings:
    return bot_settings.model_copy(
        update={"server": ServerSettings(port=0, threads=4, shutdown_grace_seconds=10)}
    )


def start_service(settings: Settings, **options: Any) -> Service:
    steward = create_app(settings)
    service = Service(steward, build_bot(steward), **options)
    service.start()
    return service


def stop_service(service: Service) -> None:
    service.stop()
    service.steward.close()


@pytest.fixture
def service(serve_settings: Settings, slack_api: SlackApi) -> Iterator[Service]:
    slack_api.granted_scopes = sorted(REQUIRED_SCOPES)
    running = start_service(serve_settings)
    yield running
    stop_service(running)


# Serving


def test_http_mode_serves_slack_and_probes(
    service: Service, slack_api: SlackApi
) -> None:
    assert service.slack_checked.wait(WAIT_SECONDS)
    ready = get(service.url + "/readyz")
    assert ready.status == 200
    checks = checks_by_name(ready)
    assert set(checks) == {"database", "migrations", SLACK_CHECK}
    assert checks[SLACK_CHECK]["detail"] == "bot user UBOT in workspace T1"

    body = slash_command_body("help", user_id=OWNER_ID)
    request = signed(SIGNING_SECRET, body, FORM)
    answer = post(service.url + "/slack/events", request.body.encode(), request.headers)
    assert answer.status == 200
    assert json.loads(answer.body) == help_reply().message()

    metrics = get(service.url + "/metrics")
    assert metrics.status == 200
    assert "steward_identities{" in metrics.body
    assert get(service.url + "/healthz").status == 200


def test_connectors_loaded_at_start(
    serve_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CONNECTOR_TYPES, TYPE_NAME, FILE_REVOKER_FACTORY)
    store = tmp_path / "store.db"
    create_store(store, [])
    connectors = {
        "files": ConnectorSettings(type=TYPE_NAME, path=str(store)),  # type: ignore[call-arg]
        "broken": ConnectorSettings(type="nope"),
        "idle": ConnectorSettings(type="nope", enabled=False),
    }
    service = start_service(
        serve_settings.model_copy(update={"connectors": connectors})
    )
    try:
        assert service.slack_checked.wait(WAIT_SECONDS)
        ready = get(service.url + "/readyz")
    finally:
        stop_service(service)
    assert ready.status == 503
    checks = checks_by_name(ready)
    assert checks["connector files"]["ok"] is True
    assert checks["connector files"]["detail"] == "file connector loaded"
    assert checks["connector broken"]["ok"] is False
    assert "unknown connector type 'nope'" in checks["connector broken"]["detail"]
    assert "connector idle" not in checks
    assert checks[SLACK_CHECK]["ok"] is True


# Slack's start-up check


def test_missing_scope_fails_readiness(
    serve_settings: Settings, slack_api: SlackApi
) -> None:
    slack_api.granted_scopes = sorted(REQUIRED_SCOPES - {"users:read.email"})
    service = start_service(serve_settings)
    try:
        assert service.slack_checked.wait(WAIT_SECONDS)
        ready = get(service.url + "/readyz")
    finally:
        stop_service(service)
    assert ready.status == 503
    detail = checks_by_name(ready)[SLACK_CHECK]["detail"]
    assert "lacks the scopes users:read.email:" in detail


def test_rejected_bot_token_not_retried(
    serve_settings: Settings, slack_api: SlackApi
) -> None:
    slack_api.fail_with("auth.test", "invalid_auth", times=3)
    service = start_service(serve_settings)
    try:
        assert service.slack_checked.wait(WAIT_SECONDS)
        ready = get(service.url + "/readyz")
    finally:
        stop_service(service)
    assert ready.status == 503
    assert checks_by_name(ready)[SLACK_CHECK] == {
        "name": SLACK_CHECK,
        "ok": False,
        "detail": "auth.test failed: invalid_auth",
    }
    assert len(slack_api.calls_to("auth.test")) == 1


def test_failing_slack_check_retried(
    serve_settings: Settings, slack_api: SlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.service, "FIRST_RETRY_SECONDS", 0.01)
    slack_api.fail_with("auth.test", "internal_error", times=2)
    service = start_service(serve_settings)
    try:
        assert service.slack_checked.wait(WAIT_SECONDS)
        ready = get(service.url + "/readyz")
    finally:
        stop_service(service)
    assert ready.status == 200
    assert len(slack_api.calls_to("auth.test")) == 3


def test_unreachable_slack_is_retryable(serve_settings: Settings) -> None:
    slack = serve_settings.slack.model_copy(
        update={"api_url": "http://127.0.0.1:1/api/"}
    )
    check, retryable = check_slack_auth(build_client(slack))
    assert check.ok is False
    assert check.detail.startswith("auth.test failed: cannot reach Slack:")
    assert retryable is True


# Stopping


def test_stop_lets_request_in_progress_finish(serve_settings: Settings) -> None:
    entered = threading.Event()
    release = threading.Event()

    def slow(environ: Any, start_response: Any) -> list[bytes]:
        entered.set()
        release.wait(WAIT_SECONDS)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    service = start_service(serve_settings, routes={"/slow": slow})
    answers: list[Response] = []
    request = threading.Thread(
        target=lambda: answers.append(get(service.url + "/slow"))
    )
    request.start()
    assert entered.wait(WAIT_SECONDS)
    stopper = threading.Thread(target=stop_service, args=(service,))
    stopper.start()
    # While the slow request runs, new connections are refused and stop waits.
    wait_for(lambda: refused(service.url + "/healthz"), "the listener to close")
    assert stopper.is_alive()
    release.set()
    request.join(WAIT_SECONDS)
    stopper.join(WAIT_SECONDS)
    assert not stopper.is_alive()
    assert answers == [Response(200, "finished")]


def test_background_runs_while_http_serves(
    serve_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, int]] = []
    holder: list[Service] = []

    def probe(step: str) -> None:
        seen.append((step, get(holder[0].url + "/healthz").status))

    def failing_stop() -> None:
        raise RuntimeError("scheduler did not stop")

    tasks = [
        Background("probe", lambda: probe("start"), lambda: probe("stop")),
        Background("broken", lambda: None, failing_stop),
    ]
    steward = create_app(serve_settings)
    service = Service(steward, build_bot(steward), background=tasks)
    holder.append(service)
    service.start()
    stop_service(service)
    assert seen == [("start", 200), ("stop", 200)]
    assert "stopping broken failed" in caplog.text
    assert refused(service.url + "/healthz")


def test_registered_routes_and_tasks_mounted(
    serve_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    def lifecycle(environ: Any, start_response: Any) -> list[bytes]:
        start_response("202 Accepted", [("Content-Type", "text/plain")])
        return [environ["REQUEST_METHOD"].encode()]

    monkeypatch.setattr(
        bot.cli, "ROUTE_FACTORIES", [lambda steward: ("/events/lifecycle", lifecycle)]
    )
    task = Background(
        "scheduler", lambda: started.append("start"), lambda: started.append("stop")
    )
    monkeypatch.setattr(bot.cli, "BACKGROUND_FACTORIES", [lambda steward: task])
    steward = create_app(serve_settings)
    service = build_service(steward)
    service.start()
    try:
        answer = post(service.url + "/events/lifecycle", b"{}", {})
    finally:
        stop_service(service)
    assert answer == Response(202, "POST")
    assert started == ["start", "stop"]


# The command


def _invoke(env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, ["serve"], env=env)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_") and name != "STEWARD_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_environment")
def test_serve_without_credentials_names_them(tmp_path: Path) -> None:
    result = _invoke({"STEWARD_DATABASE_URL": f"sqlite:///{tmp_path}/none.db"})
    assert result.exit_code == 2
    assert "STEWARD_SLACK__BOT_TOKEN" in result.output
    assert "STEWARD_SLACK__SIGNING_SECRET" in result.output
    assert "STEWARD_SLACK__APP_TOKEN" in result.output
    assert not (tmp_path / "none.db").exists()


@pytest.mark.usefixtures("clean_environment")
def test_serve_rejects_bot_token_as_app_token(tmp_path: Path) -> None:
    result = _invoke(
        {
            "STEWARD_DATABASE_URL": f"sqlite:///{tmp_path}/none.db",
            "STEWARD_SLACK__BOT_TOKEN": "xoxb-bot-value",
            "STEWARD_SLACK__APP_TOKEN": "xoxb-pasted-value",
        }
    )
    assert result.exit_code == 2
    assert "expected a token starting with xapp-" in result.output
    assert "pasted-value" not in result.output


@pytest.mark.usefixtures("clean_environment")
def test_serve_requires_migrated_database(tmp_path: Path) -> None:
    result = _invoke(
        {
            "STEWARD_DATABASE_URL": f"sqlite:///{tmp_path}/none.db",
            "STEWARD_SLACK__BOT_TOKEN": "xoxb-bot-value",
            "STEWARD_SLACK__SIGNING_SECRET": "secret",
        }
    )
    assert result.exit_code == 2
    assert "steward db upgrade" in result.output


class LogReader:
    """Collects a child process's standard error, one line at a time."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._condition:
                self.lines.append(line)
                self._condition.notify_all()

    def wait_for_message(self, prefix: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [
                record
                for record in map(json.loads, self.lines)
                if record["message"].startswith(prefix)
            ]
            return bool(found)

        with self._condition:
            if not self._condition.wait_for(seen, timeout=30):
                pytest.fail(f"no log line {prefix!r} in:\n{''.join(self.lines)}")
        return found[0]

    def records(self, process: subprocess.Popen[str]) -> list[dict[str, Any]]:
        self._thread.join(timeout=WAIT_SECONDS)
        assert process.stderr is not None
        process.stderr.close()
        return [json.loads(line) for line in self.lines]


def test_serve_process_stops_on_sigterm(database_url: str, slack_api: SlackApi) -> None:
    env = {key: value for key, value in os.environ.items() if "STEWARD_" not in key}
    env.update(
        STEWARD_DATABASE_URL=database_url,
        STEWARD_SLACK__BOT_TOKEN="xoxb-test-token",
        STEWARD_SLACK__SIGNING_SECRET=SIGNING_SECRET,
        STEWARD_SLACK__API_URL=slack_api.url,
        STEWARD_SERVER__PORT="0",
        STEWARD_LOG_FORMAT="json",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.steward_launcher", "serve"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = LogReader(process)
    try:
        listening = reader.wait_for_message("listening on http://127.0.0.1:")
        url = listening["message"].split()[2].rstrip(";")
        assert get(url + "/healthz").status == 200
        reader.wait_for_message("Slack accepted the bot token")
        assert get(url + "/readyz").status == 200

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    records = reader.records(process)
    messages = [record["message"] for record in records]
    assert "stopping on SIGTERM" in messages
    assert "HTTP server stopped" in messages
    assert messages[-1] == "stopped"
    for record in records:
        assert set(record) >= {"time", "level", "logger", "message"}
    assert refused(url + "/healthz")
