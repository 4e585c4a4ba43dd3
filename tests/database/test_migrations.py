"""Migrations run unchanged on SQLite and PostgreSQL and match the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from governance.database import migrate
from governance.database.engine import create_database_engine
from governance.models import Base
from tests.conftest import create_scratch_database, drop_scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_database_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    if not request.getfixturevalue("postgres_available"):
        pytest.skip("PostgreSQL is not running")
    url = create_scratch_database("steward_migrations")
    engine = create_database_engine(url)
    yield engine
    engine.dispose()
    drop_scratch_database(url)


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _schema_difference(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_downgrade_upgrade(empty_engine: Engine) -> None:
    expected = {table.name for table in Base.metadata.sorted_tables}

    migrate.upgrade(empty_engine)
    assert expected <= _tables(empty_engine)
    assert migrate.is_current(empty_engine)

    migrate.downgrade(empty_engine, "base")
    assert _tables(empty_engine) - {"alembic_version"} == set()
    assert migrate.current_revision(empty_engine) is None

    migrate.upgrade(empty_engine)
    assert expected <= _tables(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


def test_models_match_migrated_schema(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert _schema_difference(empty_engine) == []


def test_schema_difference_detected(empty_engine: Engine) -> None:
    # The comparison itself must be able to fail: drop a column behind its back.
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE person DROP COLUMN time_zone")
    assert _schema_difference(empty_engine) != []
