"""Shared state of one CLI invocation: the app, built on first use."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url

from governance.app import Steward, create_app
from governance.audit.service import Actor
from governance.database import migrate
from governance.errors import ConfigurationError, InvalidInputError
from governance.logs import configure_logging
from governance.settings import Settings, load_settings, normalize_email
from governance.textsafety import printable


@dataclass
class CliContext:
    """Lazily loaded settings and app for the running command."""

    config_file: Path | None
    _settings: Settings | None = None
    _app: Steward | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
            configure_logging(self._settings)
        return self._settings

    @property
    def raw_app(self) -> Steward:
        """The app without the schema check, for `db` and `health` commands."""
        if self._app is None:
            self._app = create_app(self.settings)
        return self._app

    @property
    def app(self) -> Steward:
        """The app, once the database exists and its schema is the newest."""
        if self._app is None:
            _check_sqlite_file(self.settings.database_url)
            app = self.raw_app
            current = migrate.current_revision(app.engine)
            head = migrate.head_revision()
            if current != head:
                raise ConfigurationError(
                    f"the database schema is at revision {current or 'none'}, "
                    f"expected {head}: run `steward db upgrade`"
                )
        return self.raw_app

    def actor(self, email: str | None) -> Actor:
        """Return the acting person from `--actor` or STEWARD_ACTOR."""
        chosen = email or self.settings.actor
        if not chosen:
            raise InvalidInputError(
                "missing actor: pass --actor EMAIL or set STEWARD_ACTOR"
            )
        try:
            return Actor.person(normalize_email(chosen))
        except ValueError as error:
            raise InvalidInputError(f"invalid --actor: {error}") from None

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def _check_sqlite_file(url: str) -> None:
    # Connecting would create an empty file, so name the command that creates
    # a migrated one instead.
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (
        None,
        "",
        ":memory:",
    ):
        return
    path = Path(parsed.database)
    if not path.exists():
        raise ConfigurationError(
            f"database file {path.resolve()} not found: run `steward db upgrade` "
            "to create it, or set STEWARD_DATABASE_URL"
        )


pass_context = click.make_pass_decorator(CliContext)


def echo_json(document: Any) -> None:
    """Write `document` as indented JSON to standard output."""
    json.dump(document, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def echo_table(headers: list[str], rows: list[list[str]]) -> None:
    """Write rows as a plain table with columns padded to their widest cell."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [
            max(width, len(cell)) for width, cell in zip(widths, row, strict=True)
        ]
    lines = [headers, ["-" * width for width in widths], *rows]
    for line in lines:
        click.echo(
            "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
        )
