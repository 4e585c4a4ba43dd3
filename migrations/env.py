"""Alembic environment: runs on SQLite (in batch mode) and on PostgreSQL.

`steward db upgrade` passes an open connection in `config.attributes`; a plain
`alembic` command builds an engine from Steward's settings instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from governance.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return

    from governance.app import create_app  # noqa: PLC0415 - only for plain alembic

    steward = create_app()
    try:
        with steward.engine.connect() as new_connection:
            _run(new_connection)
            new_connection.commit()
    finally:
        steward.close()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run_migrations_online()
