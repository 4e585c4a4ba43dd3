"""A click group that runs a default subcommand when none is named."""

from __future__ import annotations

from typing import Any

import click


class DefaultCommandGroup(click.Group):
    """Treats `GROUP ARGS...` as `GROUP DEFAULT ARGS...` when ARGS[0] is no subcommand.

    `steward claim NHI` then means `steward claim request NHI`, beside
    `steward claim approve ID`.
    """

    def __init__(self, *args: Any, default_command: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)
