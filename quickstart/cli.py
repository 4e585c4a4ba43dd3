"""`steward quickstart`: set everything up and run the main job on a demo fleet."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TextIO

import click

from governance.settings import load_settings
from quickstart.run import prepare, run_console, run_slack

DEFAULT_DIRECTORY = Path(".steward-quickstart")


def _read_terminal() -> str | None:
    try:
        return input()
    except EOFError:
        return None


def _reader(script: TextIO) -> Callable[[], str | None]:
    """Return a reader of script lines that echoes each line, as a terminal would."""

    def read() -> str | None:
        line = script.readline()
        if line:
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
        return line or None

    return read


@click.command("quickstart")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIRECTORY,
    show_default=True,
    help="Working directory for the database, OpenBao's files and the CSV "
    "exports; emptied at every start.",
)
@click.option(
    "--script",
    type=click.File("r"),
    default=None,
    help="Read console input from this file instead of the terminal.",
)
@click.option(
    "--slack/--console",
    "use_slack",
    default=None,
    help="Use the Slack workspace configured in STEWARD_SLACK__* (the default "
    "when a bot token is set) or the console.",
)
def quickstart(directory: Path, script: TextIO | None, use_slack: bool | None) -> None:
    """Start OpenBao with a demo fleet and govern it, in Slack or in the console."""
    if use_slack is None:
        use_slack = load_settings().slack.configured
    out = sys.stdout
    demo = prepare(directory.resolve(), out, console=not use_slack)
    try:
        if use_slack:
            stop = threading.Event()

            def _stop(signum: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, _stop)
            try:
                run_slack(demo, out, stop)
            except KeyboardInterrupt:
                stop.set()
        else:
            read_line = _reader(script) if script is not None else _read_terminal
            try:
                run_console(demo, read_line, out)
            except KeyboardInterrupt:
                out.write("\n")
    finally:
        demo.stop()
        out.write("Stopped OpenBao and Steward.\n")
