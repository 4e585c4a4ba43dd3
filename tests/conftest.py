"""Fixtures shared by every test: databases on SQLite and PostgreSQL.

Each database test runs twice, once per backend. SQLite tests get a copy of a
file migrated once per run. PostgreSQL tests share one database created for
the run (dropped at the end) and migrated once, emptied before each test.
PostgreSQL comes from STEWARD_TEST_POSTGRES_URL; when it does not answer the
PostgreSQL half is skipped, except under CI (CI=true), where the run fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from governance.app import Steward, create_app
from governance.database import migrate
from governance.database.engine import create_database_engine
from governance.models import Base
from governance.settings import Settings

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def postgres_server_url() -> URL:
    return make_url(os.environ.get("STEWARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def _postgres_error() -> str | None:
    engine = sa.create_engine(
        postgres_server_url(), connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        return str(error).splitlines()[0]
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    error = _postgres_error()
    if error is None:
        return True
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"PostgreSQL is required under CI and did not answer: {error}")
    return False


def create_scratch_database(prefix: str) -> URL:
    """Create an empty PostgreSQL database beside the test database."""
    server = postgres_server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    admin.dispose()
    return server.set(database=name)


def drop_scratch_database(url: URL) -> None:
    admin = sa.create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        )
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "steward.db"
    engine = create_database_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    # Closing the last connection checkpoints the write-ahead log into the file.
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database(postgres_available: bool) -> Iterator[URL | None]:
    if not postgres_available:
        yield None
        return
    url = create_scratch_database("steward_test")
    engine = create_database_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    drop_scratch_database(url)


def _empty_postgres(url: URL) -> None:
    engine = create_database_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
) -> str:
    """URL of an empty, migrated database on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "steward.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: URL | None = request.getfixturevalue("postgres_database")
    if url is None:
        pytest.skip("PostgreSQL is not running (set STEWARD_TEST_POSTGRES_URL)")
    _empty_postgres(url)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        security={"admins": ["security@example.com"]},  # type: ignore[arg-type]
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Steward]:
    steward = create_app(settings)
    yield steward
    steward.close()


@pytest.fixture
def session(app: Steward) -> Iterator[Session]:
    """A session for arranging and inspecting data; the test commits."""
    with app.sessions() as opened:
        yield opened
