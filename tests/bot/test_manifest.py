"""The Slack app manifest matches what the code registers and calls."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt import App

from bot.app import build_bot
from bot.local_api import APP_TOKEN_METHODS, SlackApi
from bot.nhi.parsing import USAGE
from bot.scopes import METHOD_SCOPES, REQUIRED_SCOPES
from governance.app import Steward

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack" / "manifest.yaml"
PLACEHOLDER_URL = "https://steward.example.com/slack/events"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return document


@pytest.fixture
def registered(
    steward: Steward, monkeypatch: pytest.MonkeyPatch
) -> dict[str, list[str]]:
    """Build the bot, recording each command and event a listener registers."""
    seen: dict[str, list[str]] = {"commands": [], "events": []}
    original_command, original_event = App.command, App.event

    def command(self: App, name: Any, *args: Any, **kwargs: Any) -> Any:
        seen["commands"].append(name)
        return original_command(self, name, *args, **kwargs)

    def event(self: App, name: Any, *args: Any, **kwargs: Any) -> Any:
        seen["events"].append(name if isinstance(name, str) else name["type"])
        return original_event(self, name, *args, **kwargs)

    monkeypatch.setattr(App, "command", command)
    monkeypatch.setattr(App, "event", event)
    build_bot(steward)
    return seen


def _web_api_methods() -> set[str]:
    """Return the Web API methods the stand-in implements, in Slack's spelling.

    The stand-in handles the method `a.bC` in its method `_a_bC(self, params)`.
    """
    return {
        name[1:].replace("_", ".")
        for name, function in vars(SlackApi).items()
        if name.startswith("_")
        and not name.startswith("__")
        and inspect.isfunction(function)
        and list(inspect.signature(function).parameters) == ["self", "params"]
    }


def test_commands_match_registered(
    manifest: dict[str, Any], registered: dict[str, list[str]]
) -> None:
    declared = [entry["command"] for entry in manifest["features"]["slash_commands"]]
    assert sorted(declared) == sorted(registered["commands"])


def test_events_cover_registered(
    manifest: dict[str, Any], registered: dict[str, list[str]]
) -> None:
    subscribed = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(registered["events"]) <= set(subscribed)
    # The Home tab and the owner-departure rule need these two.
    assert sorted(subscribed) == ["app_home_opened", "user_change"]


def test_scopes_match_code(manifest: dict[str, Any]) -> None:
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == REQUIRED_SCOPES


def test_every_called_method_has_scopes() -> None:
    methods = _web_api_methods()
    assert "chat.postMessage" in methods
    assert "usergroups.users.list" in methods
    assert methods - APP_TOKEN_METHODS <= set(METHOD_SCOPES)


def test_usage_hint_names_real_subcommands(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    hinted = [part.split()[0] for part in command["usage_hint"].split("|")]
    offered = {usage.split()[0] for usage, _ in USAGE}
    assert hinted
    assert set(hinted) <= set(offered)


def test_app_settings(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"] == PLACEHOLDER_URL
    assert settings["event_subscriptions"]["request_url"] == PLACEHOLDER_URL
    (command,) = manifest["features"]["slash_commands"]
    assert command["url"] == PLACEHOLDER_URL
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True
    assert home["messages_tab_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"]
    display = manifest["display_information"]
    assert len(display["name"]) <= 35
    assert len(display["description"]) <= 140
    assert 174 <= len(display["long_description"]) <= 4000
