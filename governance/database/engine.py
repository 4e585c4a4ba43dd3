"""Engines and sessions for SQLite and PostgreSQL.

SQLite runs with foreign keys on, write-ahead logging and a busy timeout, and
every transaction starts with BEGIN IMMEDIATE: a writer takes the database
lock up front, so two writers queue on the busy timeout instead of failing
with "database is locked" when a read transaction tries to upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def database_url(url: str, password: str | None = None) -> URL:
    """Return `url` parsed, with `password` set when one is given separately."""
    parsed = make_url(url)
    if password is not None:
        parsed = parsed.set(password=password)
    return parsed


# Query parameters that carry credentials in database URLs.
_SECRET_QUERY_KEYS = ("pass", "secret", "token", "key")


def safe_url(url: str | URL) -> str:
    """Return the URL with its password and credential query values masked."""
    parsed = make_url(url) if isinstance(url, str) else url
    masked = {
        key: "***" if any(word in key.lower() for word in _SECRET_QUERY_KEYS) else value
        for key, value in parsed.query.items()
    }
    return parsed.set(query=masked).render_as_string(hide_password=True)


def create_database_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """Create an engine configured for Steward's use of SQLite or PostgreSQL."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Run one unit of work: commit when the block succeeds, roll back otherwise."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
