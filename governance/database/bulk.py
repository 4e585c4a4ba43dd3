"""Inserting thousands of rows without SQLAlchemy's per-row processing.

`session.execute(insert(table), rows)` runs every value of every row through
its column type's bind processing and builds a parameter dict per row. For a
batch of thousands of rows that costs more than the database's own work.
`insert_rows` converts only the values that need it (timestamps, JSON,
enums), with one converter chosen per column, and hands the whole batch to
the driver in one call: `executemany` on SQLite, COPY on PostgreSQL.

The stored values equal what the ORM and Core inserts store: timestamps in
UTC in the text form of `UTCDateTime` on SQLite, JSON text from `json.dumps`,
enum members by value.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.database.base import UTCDateTime, sqlite_timestamp

Converter = Callable[[Any], Any]
# Distinct timestamps remembered per column and call.
_MAX_CACHED_TIMESTAMPS = 4096


def insert_rows(
    session: Session,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    json_text: Collection[str] = (),
) -> int:
    """Insert `rows` (values in the order of `columns`) in the session's transaction.

    Values of the JSON columns named in `json_text` are already JSON text and
    are stored as given. Every column with a Python-side default must be
    listed, because nothing here fills defaults in; a missing one raises
    ValueError before anything is written. Returns the number of rows
    inserted. Like a Core insert, this does not flush the session's pending
    ORM changes first.
    """
    _check_columns(table, columns)
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    converters = [
        (index, converter)
        for index, name in enumerate(columns)
        if name not in json_text
        and (converter := _converter(table.c[name], dialect.name)) is not None
    ]
    values: Sequence[Sequence[Any]] = (
        [_convert(row, converters) for row in rows] if converters else rows
    )
    preparer = dialect.identifier_preparer
    table_name = preparer.format_table(table)
    column_list = ", ".join(preparer.quote(name) for name in columns)
    if dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            statement = f"COPY {table_name} ({column_list}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in values:
                    copy.write_row(row)
    else:
        marks = ", ".join(_placeholder(dialect.paramstyle) for _ in columns)
        # Names come from the table's metadata, quoted by the dialect.
        sql = f"INSERT INTO {table_name} ({column_list}) VALUES ({marks})"  # noqa: S608
        connection.exec_driver_sql(sql, list(map(tuple, values)))
    return len(rows)


def _check_columns(table: sa.Table, columns: Sequence[str]) -> None:
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise ValueError(f"table {table.name} has no columns {', '.join(unknown)}")
    listed = set(columns)
    missing = [
        column.name
        for column in table.c
        if column.default is not None and column.name not in listed
    ]
    if missing:
        raise ValueError(
            f"insert into {table.name} must list the columns with defaults: "
            f"{', '.join(missing)}"
        )


def _placeholder(paramstyle: str) -> str:
    if paramstyle == "qmark":
        return "?"
    if paramstyle in ("format", "pyformat"):
        return "%s"
    raise ValueError(f"unsupported DB-API parameter style {paramstyle!r}")


def _convert(row: Sequence[Any], converters: list[tuple[int, Converter]]) -> list[Any]:
    values = list(row)
    for index, converter in converters:
        values[index] = converter(values[index])
    return values


def _converter(column: sa.Column[Any], backend: str) -> Converter | None:
    column_type = column.type
    if isinstance(column_type, UTCDateTime):
        return _sqlite_timestamp() if backend == "sqlite" else _aware_timestamp
    if isinstance(column_type, sa.JSON):
        return json.dumps
    if isinstance(column_type, sa.Enum) and column_type.enum_class is not None:
        return _enum_value(column.name, column_type.enum_class)
    return None


def _aware_timestamp(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
    return value


def _sqlite_timestamp() -> Converter:
    # Timestamps repeat within a batch: the time of the write in several
    # columns, dates without a time, due dates spread over a year of days.
    texts: dict[datetime, str] = {}

    def to_text(value: datetime | None) -> str | None:
        if value is None:
            return None
        text = texts.get(value)
        if text is None:
            if len(texts) >= _MAX_CACHED_TIMESTAMPS:
                texts.clear()
            text = texts[value] = sqlite_timestamp(value)
        return text

    return to_text


def _enum_value(name: str, enum_class: type[enum.Enum]) -> Converter:
    values: dict[Any, Any] = {member: member.value for member in enum_class}
    values.update({member.value: member.value for member in enum_class})

    def to_value(value: Any) -> Any:
        if value is None:
            return None
        try:
            return values[value]
        except (KeyError, TypeError):
            raise ValueError(
                f"{value!r} is not a valid {enum_class.__name__} for column {name}"
            ) from None

    return to_value


def allocate_ids(session: Session, table: sa.Table, count: int) -> list[int]:
    """Reserve `count` new primary key values of `table` for an insert to use.

    On PostgreSQL the values come from the column's sequence, so concurrent
    writers never get the same ones. On SQLite they continue from the largest
    id, which is what SQLite itself assigns; that is safe because every
    Steward transaction on SQLite holds the write lock from its start (BEGIN
    IMMEDIATE), so no other writer can insert until this one commits.
    """
    if count <= 0:
        return []
    connection = session.connection()
    (key,) = table.primary_key.columns
    if connection.dialect.name == "postgresql":
        sequence = sa.func.pg_get_serial_sequence(table.name, key.name)
        values = connection.execute(
            sa.select(sa.func.nextval(sequence)).select_from(
                sa.func.generate_series(1, count)
            )
        )
        return [value for (value,) in values]
    largest = connection.execute(sa.select(sa.func.max(key))).scalar() or 0
    return list(range(largest + 1, largest + 1 + count))
