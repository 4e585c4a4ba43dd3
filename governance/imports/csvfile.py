"""Reading CSV files row by row with errors that name the line and column.

Files are read as UTF-8 (a byte-order mark is allowed). Header names are
matched case-insensitively, with spaces and hyphens read as underscores, so
"External ID" and "external_id" name the same column. A file with an unknown
column is rejected: a misspelt header would otherwise drop its data silently.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, TypeVar

from governance.errors import InvalidInputError
from governance.textsafety import first_control_character, neutralise_cell

# Rows validated between two progress reports.
PROGRESS_INTERVAL = 50_000
# The largest cell accepted, in characters; larger ones are rejected, not cut.
MAX_CELL_LENGTH = 65_536
# Free-text columns that may contain line breaks and tabs.
MULTILINE_COLUMNS = frozenset({"description"})
# Errors kept in memory and shown; the rest are only counted.
MAX_REPORTED_ERRORS = 50

# Called with the pass ("validated" or "imported") and the rows done so far.
Progress = Callable[[str, int], None]
T = TypeVar("T")


@dataclass(frozen=True)
class RowError:
    """One invalid value: where it is and what was expected."""

    line: int
    column: str | None
    message: str

    def describe(self, path: Path) -> str:
        where = f"{path}, line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class CsvImportError(InvalidInputError):
    """A file failed validation; nothing was imported."""

    def __init__(self, path: Path, errors: list[RowError], total: int) -> None:
        shown = [error.describe(path) for error in errors[:MAX_REPORTED_ERRORS]]
        more = total - len(shown)
        if more > 0:
            shown.append(f"... and {more} more {_plural(more, 'error')}")
        summary = (
            f"{path}: {total} invalid {_plural(total, 'row')}; nothing was imported "
            "(fix them, or pass --skip-invalid to import the valid rows)"
        )
        super().__init__("\n".join([summary, *shown]))
        self.path = path
        self.errors = errors
        self.total = total


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def not_utf8_error(path: Path) -> InvalidInputError:
    """Return the error for a file that is not UTF-8, naming the first bad line.

    The text reader decodes ahead of the CSV reader, so the line the CSV
    reader was on when decoding failed is not the line of the bad byte.
    The file is read again in binary to find it. A line break is never part
    of a multi-byte UTF-8 sequence, so each line decodes on its own.
    """
    advice = "save the file as UTF-8 and import it again"
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as error:
                    byte = line[error.start]
                    return InvalidInputError(
                        f"{path}, line {number}: not UTF-8 (byte 0x{byte:02x} at "
                        f"position {error.start + 1} of the line); {advice}"
                    )
    except OSError as error:
        return InvalidInputError(f"cannot read {path}: {error.strerror}")
    return InvalidInputError(f"{path}: not UTF-8; {advice}")


def normalize_header(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


class Row(NamedTuple):
    """One data row: its line number and its cells by normalised column name.

    A named tuple rather than a frozen dataclass: it is built for every row of
    every pass, and constructs about three times faster.
    """

    line: int
    cells: dict[str, str]
    raw: list[str]


class CsvSource:
    """A CSV file with known required and optional columns."""

    def __init__(
        self,
        path: Path,
        *,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.required = required
        self.optional = optional
        self.aliases = aliases or {}
        self.header: list[str] = []

    def _open(self) -> IO[str]:
        try:
            return self.path.open(encoding="utf-8-sig", newline="")
        except OSError as error:
            raise InvalidInputError(
                f"cannot read {self.path}: {error.strerror}"
            ) from None

    def _columns(self, header: list[str]) -> list[str]:
        columns = []
        for name in header:
            normalized = normalize_header(name)
            columns.append(self.aliases.get(normalized, normalized))
        known = set(self.required) | set(self.optional)
        unknown = [name for name in columns if name not in known]
        missing = [name for name in self.required if name not in columns]
        duplicated = sorted({name for name in columns if columns.count(name) > 1})
        problems = []
        if missing:
            problems.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown columns: {', '.join(unknown)}")
        if duplicated:
            problems.append(f"repeated columns: {', '.join(duplicated)}")
        if problems:
            expected = ", ".join([*self.required, *(f"[{o}]" for o in self.optional)])
            raise InvalidInputError(
                f"{self.path}, line 1: invalid header ({'; '.join(problems)}); "
                f"expected the columns {expected}"
            )
        return columns

    def rows(self, errors: list[RowError] | None = None) -> Iterator[Row]:
        """Yield each data row; a malformed row is appended to `errors` instead.

        Without an `errors` list, a malformed row raises CsvImportError.
        """
        with self._open() as handle:
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InvalidInputError(f"{self.path}: the file is empty") from None
            except UnicodeDecodeError:
                raise not_utf8_error(self.path) from None
            except csv.Error as error:
                raise InvalidInputError(f"{self.path}, line 1: {error}") from None
            columns = self._columns(header)
            self.header = header
            check_shape = _ShapeCheck(columns)
            while True:
                try:
                    raw = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    raise not_utf8_error(self.path) from None
                except csv.Error as error:
                    malformed = RowError(
                        reader.line_num, None, f"malformed CSV: {error}"
                    )
                    if errors is None:
                        raise CsvImportError(self.path, [malformed], 1) from None
                    errors.append(malformed)
                    continue
                # Spaces join the cells: the row is blank exactly when the
                # joined text is, and a space is neither a control character
                # nor unprintable.
                joined = " ".join(raw)
                if not joined.strip():
                    continue
                problem = check_shape(reader.line_num, raw, joined)
                if problem is not None:
                    if errors is None:
                        raise CsvImportError(self.path, [problem], 1)
                    errors.append(problem)
                    continue
                cells = dict(zip(columns, map(str.strip, raw), strict=True))
                yield Row(reader.line_num, cells, raw)


class _ShapeCheck:
    """Finds the first wrong field count, over-long cell or control character.

    Most rows are clean, so each row is first checked as a whole: when the
    joined cells are no longer than one cell may be and contain only
    printable characters (control characters are not printable), the row
    passes. Any other row goes through the cell-by-cell check that names
    the column.
    """

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def __call__(self, line: int, raw: list[str], joined: str) -> RowError | None:
        """Check `raw`, whose cells `joined` contains separated by spaces."""
        if len(raw) != len(self.columns):
            return RowError(
                line, None, f"expected {len(self.columns)} fields, found {len(raw)}"
            )
        if len(joined) <= MAX_CELL_LENGTH and joined.isprintable():
            return None
        return self._first_bad_cell(line, raw)

    def _first_bad_cell(self, line: int, raw: list[str]) -> RowError | None:
        for name, value in zip(self.columns, raw, strict=True):
            if len(value) > MAX_CELL_LENGTH:
                return RowError(
                    line,
                    name,
                    f"value too long: {len(value)} characters, at most "
                    f"{MAX_CELL_LENGTH}",
                )
            control = first_control_character(
                value, allow_whitespace=name in MULTILINE_COLUMNS
            )
            if control is not None:
                return RowError(
                    line,
                    name,
                    f"control character {control} is not allowed; remove it",
                )
        return None


def check_rejects_path(source: Path, rejects: Path | None) -> Path:
    """Return where rejected rows go; raise when that would overwrite the input."""
    target = rejects or source.with_name(source.name + ".rejected.csv")
    if target.resolve() == source.resolve():
        raise InvalidInputError(
            f"--rejects {target} is the file being imported; choose another file"
        )
    return target


class RejectsWriter:
    """Writes rejected rows, with their line and reasons, to a CSV file."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self._handle = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(["line", "errors", *header])
        self.count = 0

    def write(self, line: int, reasons: list[str], raw: list[str]) -> None:
        cells = [str(line), "; ".join(reasons), *raw]
        self._writer.writerow([neutralise_cell(cell) for cell in cells])
        self.count += 1

    def close(self) -> None:
        self._handle.close()


def collect_rows(
    source: CsvSource,
    convert: Callable[[Row], tuple[T | None, list[RowError]]],
    *,
    skip_invalid: bool,
    rejects_path: Path | None,
    check_references: Callable[[list[tuple[Row, T]]], list[RowError]] | None = None,
) -> tuple[list[tuple[Row, T]], int]:
    """Validate a whole file and return its valid rows and the rejected count.

    For files small enough to hold in memory (people, business entities).
    `check_references` validates the rows that parsed against each other and
    the database. Raises CsvImportError when a row is invalid, unless
    `skip_invalid`, in which case the rejected rows go to `rejects_path` with
    their reasons.
    """
    malformed: list[RowError] = []
    parsed: list[tuple[Row, T]] = []
    invalid: dict[int, tuple[list[RowError], list[str]]] = {}
    for row in source.rows(errors=malformed):
        value, errors = convert(row)
        if errors or value is None:
            located = [RowError(row.line, e.column, e.message) for e in errors]
            invalid[row.line] = (located, row.raw)
        else:
            parsed.append((row, value))
    for problem in malformed:
        invalid[problem.line] = ([problem], [])
    if check_references is not None:
        raw_by_line = {row.line: row.raw for row, _ in parsed}
        for error in check_references(parsed):
            errors, raw = invalid.setdefault(error.line, ([], raw_by_line[error.line]))
            errors.append(error)
    if not invalid:
        return parsed, 0
    if not skip_invalid:
        reported = [error for line in sorted(invalid) for error in invalid[line][0]]
        raise CsvImportError(source.path, reported, len(invalid))
    writer = RejectsWriter(check_rejects_path(source.path, rejects_path), source.header)
    try:
        for line in sorted(invalid):
            errors, raw = invalid[line]
            writer.write(line, [error.describe(source.path) for error in errors], raw)
    finally:
        writer.close()
    valid = [(row, value) for row, value in parsed if row.line not in invalid]
    return valid, len(invalid)
