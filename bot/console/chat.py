"""Console mode: a terminal chat that stands in for a Slack workspace.

The bot talks to a local stand-in of the Web API (bot.local_api), and every
message it posts is drawn in the terminal from the same Block Kit. What the
user types becomes the request Slack would send (a slash command, a button
click, a Home tab visit, a modal submission), signed with the app's signing
secret and dispatched through the same Bolt app, so console mode runs the
listeners that run in Slack.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from slack_bolt.request import BoltRequest

from bot import payloads
from bot.console.render import Control, Drawer, element_text
from bot.context import Bot
from bot.local_api import Message, SlackApi

HELP = """\
Type a slash command (/nhi help), a control's number to press it, or:
  pick N EMAIL   choose EMAIL in the person picker number N
  submit         submit the open form        cancel   close it
  home           open the App Home tab       as EMAIL act as another person
  who            show who you are acting as  help     this text
  quit           stop everything this command started"""


@dataclass(frozen=True)
class ConsoleCommand:
    """A command the console's host adds, listed in the help text.

    `usage` is the command word and its arguments (`login ACCESSOR`), and
    `run` receives the words typed after the command word.
    """

    usage: str
    description: str
    run: Callable[[list[str]], None]


# How long the console waits for the bot to stop calling Slack after a request.
QUIET_SECONDS = 0.3
MAX_WAIT_SECONDS = 10.0


@dataclass
class _OpenView:
    view_id: str
    callback_id: str
    private_metadata: str
    blocks: list[dict[str, Any]]
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)


class Console:
    """Reads commands, dispatches them through Bolt and draws what the bot sends."""

    def __init__(
        self,
        bot: Bot,
        api: SlackApi,
        *,
        signing_secret: str,
        user_id: str,
        out: TextIO,
        pump: Callable[[], None] | None = None,
        commands: dict[str, ConsoleCommand] | None = None,
    ) -> None:
        self.bot = bot
        self.api = api
        self.signing_secret = signing_secret
        self.user_id = user_id
        self.out = out
        self.pump = pump or (lambda: None)
        self.commands = dict(commands or {})
        self.controls: dict[int, Control] = {}
        self.drawer = Drawer()
        self._seen_messages: dict[tuple[str, str], int] = {}
        self._seen_ephemeral = 0
        self._seen_responses = 0
        self._seen_views = 0
        self._view: _OpenView | None = None
        self.read_line: Callable[[], str | None] = lambda: None

    # The loop

    def run(self, read_line: Callable[[], str | None]) -> None:
        """Handle each input line until `quit` or the end of the input.

        `read_line` returns the next line, or None at the end of the input.
        """
        self.read_line = read_line
        self.refresh()
        self._write(self.help_text())
        while True:
            self._write(f"\n{self._prompt()}", end="")
            line = read_line()
            if line is None:
                self._write("")
                return
            if not self.handle(line.strip()):
                return

    def _prompt(self) -> str:
        return f"{self._email(self.user_id)}> "

    def handle(self, line: str) -> bool:
        """Act on one input line; return False when the user quits."""
        if not line:
            return True
        try:
            words = shlex.split(line)
        except ValueError as error:
            self._write(f"  cannot read that line: {error}")
            return True
        command = words[0].lower()
        if command in {"quit", "exit"}:
            return False
        if line.startswith("/"):
            self.slash_command(line)
        elif command.isdigit():
            self.press(int(command))
        elif command == "pick" and len(words) == 3 and words[1].isdigit():
            self.pick(int(words[1]), words[2])
        elif command == "as" and len(words) == 2:
            self.act_as(words[1])
        elif command in self.commands:
            self.commands[command].run(words[1:])
        else:
            self._simple(command)
        return True

    def _simple(self, command: str) -> None:
        if command == "submit":
            self.submit()
        elif command == "cancel":
            self._view = None
            self._write("  form closed")
        elif command == "home":
            self.open_home()
        elif command == "who":
            self._write(f"  you are {self._email(self.user_id)} ({self.user_id})")
        else:
            self._write(self.help_text())

    def help_text(self) -> str:
        """Return the built-in commands, then one line for each added command."""
        lines = [HELP]
        for name in sorted(self.commands):
            command = self.commands[name]
            lines.append(f"  {command.usage:<14} {command.description}")
        return "\n".join(lines)

    # Requests Slack would send

    def slash_command(self, line: str) -> None:
        name, _, text = line.partition(" ")
        body = payloads.slash_command_body(
            text.strip(),
            user_id=self.user_id,
            command=name,
            response_url=self.api.response_url,
        )
        answer = self._dispatch(body, payloads.FORM)
        self._show_answer(answer)
        self.refresh()

    def press(self, number: int) -> None:
        control = self.controls.get(number)
        if control is None:
            self._write(f"  no control numbered {number}")
            return
        if control.kind == "users_select":
            self._write(f"  [{number}] is a person picker: type pick {number} EMAIL")
            return
        if control.confirm is not None and not self._confirmed(control):
            self._write("  cancelled")
            return
        self._click(control)

    def pick(self, number: int, email: str) -> None:
        control = self.controls.get(number)
        if control is None or control.kind != "users_select":
            self._write(f"  no person picker numbered {number}")
            return
        user_id = self._user_for(email)
        if user_id is None:
            self._write(f"  no Slack user has the email {email}")
            return
        view = self._view
        if view is not None and control.view_id == view.view_id:
            view.selections.setdefault(control.block_id, {})[control.action_id] = {
                "type": "users_select",
                "selected_user": user_id,
            }
            self._write(f"  chose {email}; type submit to send the form")
            return
        self._click(control, selected_user=user_id)

    def submit(self) -> None:
        view = self._view
        if view is None:
            self._write("  no form is open")
            return
        body = payloads.view_submission_body(
            user_id=self.user_id,
            callback_id=view.callback_id,
            private_metadata=view.private_metadata,
            values=view.selections,
        )
        self._view = None
        answer = self._dispatch(body, payloads.FORM)
        errors = _json(answer).get("errors") if answer else None
        if errors:
            for field_name, message in errors.items():
                self._write(f"  {field_name}: {message}")
        self.refresh()

    def open_home(self) -> None:
        event = {
            "type": "app_home_opened",
            "user": self.user_id,
            "channel": self.api.dm_channel(self.user_id),
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        self._dispatch(payloads.event_body(event), payloads.JSON)
        self.refresh()
        view = self.api.home_views.get(self.user_id)
        if view is None:
            self._write("  the Home tab is empty")
            return
        self._write("\n== Home ==")
        drawing = self.drawer.draw(view.get("blocks") or [], view_id="V" + self.user_id)
        self._remember(drawing.controls)
        self._write("\n".join(drawing.lines))

    def act_as(self, email: str) -> None:
        user_id = self._user_for(email)
        if user_id is None:
            self._write(f"  no Slack user has the email {email}")
            return
        self.user_id = user_id
        self._write(f"  you are now {email}")

    # Drawing what the bot sent

    def refresh(self) -> None:
        """Let the outbox deliver, then draw every new or edited message."""
        self.pump()
        self._wait_for_quiet()
        for message in list(self.api.messages):
            key = (message.channel, message.ts)
            edits = self._seen_messages.get(key)
            if edits is not None and edits == message.edits:
                continue
            self._seen_messages[key] = message.edits
            self._draw_message(message, edited=edits is not None)
        for item in self.api.ephemeral[self._seen_ephemeral :]:
            self._draw_loose("only you can see this", item)
        self._seen_ephemeral = len(self.api.ephemeral)
        for item in self.api.responses[self._seen_responses :]:
            self._draw_loose("reply", item)
        self._seen_responses = len(self.api.responses)
        for view in self.api.opened_views[self._seen_views :]:
            self._open_view(view)
        self._seen_views = len(self.api.opened_views)

    def _draw_message(self, message: Message, *, edited: bool) -> None:
        where = self._channel_label(message.channel)
        note = " (edited)" if edited else ""
        self._write(f"\n== {where}{note} ==")
        drawing = self.drawer.draw(
            message.blocks,
            fallback=message.text,
            channel=message.channel,
            message_ts=message.ts,
        )
        self._remember(drawing.controls, message)
        self._write("\n".join(drawing.lines))

    def _draw_loose(self, label: str, item: dict[str, Any]) -> None:
        blocks = item.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        self._write(f"\n== {label} ==")
        drawing = self.drawer.draw(
            list(blocks or []),
            fallback=str(item.get("text", "")),
            channel=item.get("channel"),
            message_ts=item.get("ts"),
        )
        self._remember(drawing.controls)
        self._write("\n".join(drawing.lines))

    def _open_view(self, view: dict[str, Any]) -> None:
        title = element_text(view.get("title")) or "form"
        view_id = f"VFORM{self._seen_views + 1}"
        self._view = _OpenView(
            view_id=view_id,
            callback_id=str(view.get("callback_id", "")),
            private_metadata=str(view.get("private_metadata", "")),
            blocks=list(view.get("blocks") or []),
        )
        self._write(f"\n== form: {title} ==")
        drawing = self.drawer.draw(self._view.blocks, view_id=view_id)
        self._remember(drawing.controls)
        self._write("\n".join(drawing.lines))
        self._write("  (pick N EMAIL, then submit; or cancel)")

    def _remember(
        self, controls: list[Control], message: Message | None = None
    ) -> None:
        for control in controls:
            placed = control
            if message is not None:
                placed = dataclasses.replace(
                    control,
                    message={
                        "type": "message",
                        "ts": message.ts,
                        "text": message.text,
                        "blocks": message.blocks,
                    },
                )
            self.controls[placed.number] = placed

    def _show_answer(self, answer: str) -> None:
        document = _json(answer)
        if document:
            self._draw_loose("only you can see this", document)
        elif answer.strip():
            self._write("  " + answer.strip())

    # Plumbing

    def _click(self, control: Control, *, selected_user: str | None = None) -> None:
        in_view = control.view_id is not None and control.channel is None
        body = payloads.block_action_body(
            user_id=self.user_id,
            action_id=control.action_id,
            value=control.value,
            channel_id=(control.view_id or "") if in_view else (control.channel or ""),
            message_ts=control.message_ts or "",
            block_id=control.block_id,
            message=control.message,
            response_url=self.api.response_url,
            container_type="view" if in_view else "message",
            selected_user=selected_user,
        )
        answer = self._dispatch(body, payloads.FORM)
        self._show_answer(answer)
        self.refresh()

    def _confirmed(self, control: Control) -> bool:
        confirm = control.confirm or {}
        title = element_text(confirm.get("title")) or "Confirm"
        text = element_text(confirm.get("text"))
        self._write(f"  {title}: {text}")
        self._write("  type yes to confirm, anything else to cancel")
        answer = self.read_line() or ""
        return answer.strip().lower() in {"y", "yes"}

    def _dispatch(self, body: str, content_type: str) -> str:
        request = payloads.signed(self.signing_secret, body, content_type)
        response = self.bot.bolt.dispatch(
            BoltRequest(
                body=request.body,
                headers={name: [value] for name, value in request.headers.items()},
            )
        )
        self._wait_for_quiet()
        if response.status == 401:
            return "rejected: the request signature did not verify"
        return str(response.body or "")

    def _wait_for_quiet(self) -> None:
        """Wait until the bot has made no Web API call for a moment."""
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        count = len(self.api.calls)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            current = len(self.api.calls)
            if current != count:
                count = current
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return

    def _user_for(self, email: str) -> str | None:
        wanted = email.strip().lower()
        for user_id, user in self.api.users.items():
            if str(user["profile"]["email"]).lower() == wanted:
                return user_id
        return None

    def _email(self, user_id: str) -> str:
        user = self.api.users.get(user_id)
        return str(user["profile"]["email"]) if user else user_id

    def _channel_label(self, channel: str) -> str:
        slack = self.bot.settings.slack
        if channel == slack.security_channel:
            return "#security"
        if channel == slack.orphan_channel:
            return "#nhi-orphans"
        if channel.startswith("D"):
            return f"direct message to {self._email(channel[1:])}"
        return channel

    def _write(self, text: str, *, end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
