"""The declarative base and the column types shared by every model."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so that Alembic's batch mode on SQLite can find and
# alter constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def sqlite_timestamp(value: datetime) -> str:
    """Return an aware datetime as the UTC text stored in SQLite.

    The text has SQLAlchemy's SQLite storage form, 2026-01-31 23:59:59.000000:
    zero-padded and microseconds always included, so stored values compare
    in time order. Raises ValueError for a naive datetime.
    """
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
    # isoformat is several times faster than strftime; the slice drops "+00:00".
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no timezone-aware type, so values are normalised to UTC before
    they are written and tagged as UTC when they are read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
        aware = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return aware.replace(tzinfo=None)
        return aware

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # One step instead of this class's conversion followed by SQLite's.
        def to_text(value: datetime | None) -> str | None:
            return None if value is None else sqlite_timestamp(value)

        return to_text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def enum_column(enum_class: type[enum.Enum], length: int = 40) -> sa.Enum:
    """Return a portable string column type storing the members' values."""
    return sa.Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of every Steward table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}
