"""The app factory: settings, database engine and session factory, built once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from governance.database.engine import (
    create_database_engine,
    database_url,
    safe_url,
    session_scope,
)
from governance.settings import Settings, load_settings

logger = logging.getLogger(__name__)


@dataclass
class Steward:
    """One configured Steward process: what every surface needs to act."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open one unit of work that commits on success."""
        with session_scope(self.sessions) as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def create_app(
    settings: Settings | None = None,
    *,
    config_file: Path | None = None,
    **overrides: Any,
) -> Steward:
    """Build a Steward from `settings`, or load them from the environment."""
    if settings is None:
        settings = load_settings(config_file, **overrides)
    password = settings.database_password
    url = database_url(
        settings.database_url,
        password.get_secret_value() if password is not None else None,
    )
    engine = create_database_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    logger.debug("database engine created for %s", safe_url(url))
    return Steward(settings=settings, engine=engine, sessions=sessions)
