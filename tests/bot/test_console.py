"""Console mode: requests go through Bolt, messages are drawn with numbered buttons."""

from __future__ import annotations

import io
from typing import Any

import pytest
from slack_bolt import Ack, Respond

from bot.app import build_bot
from bot.console.chat import Console, ConsoleCommand
from bot.console.render import Drawer, plain_text, strip_markers
from bot.context import Bot
from bot.local_api import SlackApi
from bot.notifier import SlackNotifier
from governance.app import Steward
from governance.audit.service import Actor
from governance.remediation.service import queue_notification
from tests.bot.conftest import ADMIN_ID, OWNER_ID, SIGNING_SECRET
from tests.factories import make_person


def _script(*lines: str) -> Any:
    queue = list(lines)
    return lambda: queue.pop(0) if queue else None


def _console(bot: Bot, slack_api: SlackApi, out: io.StringIO, **extra: Any) -> Console:
    notifier = SlackNotifier(bot.steward, bot.client, bot.directory, worker_id="c")
    return Console(
        bot,
        slack_api,
        signing_secret=SIGNING_SECRET,
        user_id=ADMIN_ID,
        out=out,
        pump=lambda: notifier.run_once() and None,
        **extra,
    )


def test_slash_command_through_bolt(bot: Bot, slack_api: SlackApi) -> None:
    out = io.StringIO()
    _console(bot, slack_api, out).run(_script("/nhi help", "who", "quit"))
    text = out.getvalue()
    assert "/nhi status NAME" in text
    assert "you are security@example.com (U0ADMIN)" in text


def test_help_lists_added_commands(bot: Bot, slack_api: SlackApi) -> None:
    out = io.StringIO()
    typed: list[list[str]] = []
    login = ConsoleCommand(
        usage="login ACCESSOR", description="try a login", run=typed.append
    )
    console = _console(bot, slack_api, out, commands={"login": login})
    console.run(_script("help", "login abc", "quit"))
    lines = out.getvalue().splitlines()
    listed = [line for line in lines if line.strip().startswith("login ACCESSOR")]
    # Once when the console starts and once for `help`.
    assert len(listed) == 2
    assert listed[0].split() == ["login", "ACCESSOR", "try", "a", "login"]
    assert typed == [["abc"]]


def test_wrong_secret_rejected(bot: Bot, slack_api: SlackApi) -> None:
    out = io.StringIO()
    console = _console(bot, slack_api, out)
    console.signing_secret = "not-the-secret"
    console.run(_script("/nhi help"))
    assert "rejected: the request signature did not verify" in out.getvalue()
    assert "/nhi status NAME" not in out.getvalue()


def test_button_press_dispatched(steward: Steward, slack_api: SlackApi) -> None:
    clicks: list[tuple[str, str]] = []

    def register(bot: Bot) -> None:
        @bot.bolt.action("demo_press")
        def pressed(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            ack()
            clicks.append((body["user"]["id"], body["actions"][0]["value"]))
            respond(text="pressed", replace_original=False)

    bot = build_bot(steward, extra=[register])
    with steward.session() as session:
        make_person(session, "owner@example.com")
        queue_notification(
            session,
            actor=Actor.system("test"),
            dedupe_key="demo",
            recipient=None,
            template="demo_template",
            context={"review_id": 7},
        )
    out = io.StringIO()
    console = _console(bot, slack_api, out)
    # The fallback renderer has no buttons; post one directly as the bot would.
    bot.client.chat_postMessage(
        channel="C0SECURITY",
        text="press me",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Press"},
                        "action_id": "demo_press",
                        "value": "42",
                    }
                ],
            }
        ],
    )
    console.run(_script("as owner@example.com", "1", "quit"))
    text = out.getvalue()
    assert "Steward notification: demo_template" in text
    assert "[1] Press" in text
    assert clicks == [(OWNER_ID, "42")]
    assert "pressed" in text


def test_drawer_numbers_buttons_and_pickers() -> None:
    drawer = Drawer()
    drawing = drawer.draw(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "Review"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*a* &lt;b&gt; <http://x|link>"},
                "accessory": {
                    "type": "users_select",
                    "action_id": "pick",
                    "placeholder": {"type": "plain_text", "text": "Right owner"},
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Certify"},
                        "action_id": "certify",
                        "value": "1",
                        "confirm": {"title": {"type": "plain_text", "text": "Sure?"}},
                    }
                ],
            },
        ],
        channel="C1",
        message_ts="1.1",
    )
    assert drawing.lines[0] == "  REVIEW"
    assert "a <b> link" in drawing.lines[1]
    assert [control.kind for control in drawing.controls] == ["users_select", "button"]
    assert [control.number for control in drawing.controls] == [1, 2]
    assert drawing.controls[1].confirm is not None
    assert "    [2] Certify" in drawing.lines


@pytest.mark.parametrize(
    ("mrkdwn", "shown"),
    [
        ("*Claimed* by Olive", "Claimed by Olive"),
        ("_italic_ and `code`", "italic and code"),
        (
            "Risk tier: *privileged* (root policy)",
            "Risk tier: privileged (root policy)",
        ),
        ("*_both_* and _*both*_", "both and both"),
        ("(*bold*), _it_.", "(bold), it."),
        ("*Owner:* none", "Owner: none"),
        ("first *bold* then *more bold*", "first bold then more bold"),
    ],
)
def test_markers_dropped(mrkdwn: str, shown: str) -> None:
    assert strip_markers(mrkdwn) == shown


@pytest.mark.parametrize(
    "kept",
    [
        "approle_secret_id",
        "snake_case_name and other_name",
        "__init__",
        "word_ and _word",
        "2*3*4",
        "5 * 3 * 2",
        "a*b* c",
        "*unclosed bold",
        "*two\nlines*",
        "**",
        "``",
    ],
)
def test_markers_kept_inside_words(kept: str) -> None:
    assert strip_markers(kept) == kept


def test_code_span_kept_verbatim() -> None:
    assert strip_markers("`*not bold*` and *bold*") == "*not bold* and bold"
    assert strip_markers("`secret_id_accessor`") == "secret_id_accessor"


def test_plain_text_of_mrkdwn() -> None:
    shown = plain_text("*<https://x.example|billing_exporter>* &lt;a_b&gt; _note_")
    assert shown == "billing_exporter <a_b> note"


def test_drawer_keeps_plain_text_markers() -> None:
    drawing = Drawer().draw(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "*Review*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Review*"}},
        ]
    )
    assert drawing.lines == ["  *REVIEW*", "  Review"]
