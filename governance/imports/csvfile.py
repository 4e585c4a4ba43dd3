"""Reading CSV files row by row with errors that name the line and column.

Files are read as UTF-8 (a byte-order mark is allowed). Header names are
matched case-insensitively, with spaces and hyphens read as underscores, so
"External ID" and "external_id" name the same column. A file with an unknown
column is rejected: a misspelt header would otherwise drop its data silently.
"""

from __future__ import annotations

import csv
import hashlib
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
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
# Column names listed in a header error. Any further ones are only counted.
MAX_LISTED_COLUMNS = 10

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


def _listed(names: list[str]) -> str:
    """Join the first MAX_LISTED_COLUMNS names, cut to 40 characters each."""
    joined = ", ".join(
        name if len(name) <= 40 else name[:40] + "..."
        for name in names[:MAX_LISTED_COLUMNS]
    )
    more = len(names) - MAX_LISTED_COLUMNS
    return f"{joined} and {more} more" if more > 0 else joined


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
            # A pipe can be read only once, and opening a named pipe waits
            # for a writer, but an import reads its file several times.
            if not stat.S_ISREG(self.path.stat().st_mode):
                raise InvalidInputError(
                    f"{self.path} is not a regular file; an import reads its "
                    "file several times, so save the data to a file first"
                )
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
            problems.append(f"missing columns: {_listed(missing)}")
        if unknown:
            problems.append(f"unknown columns: {_listed(unknown)}")
        if duplicated:
            problems.append(f"repeated columns: {_listed(duplicated)}")
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
            if self.header and header != self.header:
                # Rows compared by a digest can stay the same while a new
                # header changes what each cell means.
                raise FileChangedError(self.path, 1)
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
    # samefile also catches a hard link, which resolves to another path.
    if target.resolve() == source.resolve() or (
        target.exists() and target.samefile(source)
    ):
        raise InvalidInputError(
            f"--rejects {target} is the file being imported; choose another file"
        )
    return target


class RejectsWriter:
    """Writes rejected rows, with their line and reasons, to a CSV file."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        try:
            self._handle = path.open("w", encoding="utf-8", newline="")
        except OSError as error:
            raise InvalidInputError(
                f"cannot write the rejects file {path}: {error.strerror}; "
                "choose another file with --rejects"
            ) from None
        self._writer = csv.writer(self._handle)
        self._writer.writerow(["line", "errors", *header])
        self.count = 0

    def write(self, line: int, reasons: list[str], raw: list[str]) -> None:
        cells = [str(line), "; ".join(reasons), *raw]
        self._writer.writerow([neutralise_cell(cell) for cell in cells])
        self.count += 1

    def close(self) -> None:
        self._handle.close()


def report_progress(
    progress: Progress | None, phase: str, done: int, added: int
) -> int:
    """Return `done` plus `added`, reporting each PROGRESS_INTERVAL multiple passed."""
    total = done + added
    if progress is not None and total // PROGRESS_INTERVAL > done // PROGRESS_INTERVAL:
        progress(phase, total)
    return total


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of `size` consecutive items; the last list may be shorter."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class ValidationErrors:
    """The errors of a validation pass, by line, with memory bounded by the need.

    Every invalid line number is stored, to count the rejected rows and to
    skip them when the file is read again. With `keep_all` the errors of every
    invalid line are stored, because the rejects file lists them. Otherwise
    only the MAX_REPORTED_ERRORS lowest lines keep their errors, since an
    error message shows no more. Errors may arrive out of line order, because
    a missing reference is found only at the end of the file.
    """

    def __init__(self, *, keep_all: bool) -> None:
        self.keep_all = keep_all
        self.lines: set[int] = set()
        self._errors: dict[int, list[RowError]] = {}
        self._highest_kept = 0

    def add(self, line: int, errors: list[RowError]) -> None:
        """Record `errors`, all found on `line`."""
        self.lines.add(line)
        recorded = self._errors.get(line)
        if recorded is not None:
            recorded.extend(errors)
            return
        full = len(self._errors) >= MAX_REPORTED_ERRORS
        if not self.keep_all and full and line > self._highest_kept:
            return
        self._errors[line] = list(errors)
        if self.keep_all or not full:
            self._highest_kept = max(self._highest_kept, line)
            return
        # The store is full, so the highest line goes. Every line stored from
        # now on is below it, so a dropped line never returns incomplete.
        del self._errors[self._highest_kept]
        self._highest_kept = max(self._errors)

    def __len__(self) -> int:
        return len(self.lines)

    def by_line(self) -> list[tuple[int, list[RowError]]]:
        """Return the kept errors grouped by line, in line order."""
        return sorted(self._errors.items())

    def check(self, source: CsvSource, rejects_path: Path | None) -> int:
        """Raise CsvImportError for any invalid row, unless `keep_all`.

        With `keep_all` (skip-invalid imports), the invalid rows go to the
        rejects file instead, and the number of them is returned.
        """
        if not self.lines:
            return 0
        if not self.keep_all:
            reported = [error for _, errors in self.by_line() for error in errors]
            raise CsvImportError(source.path, reported, len(self.lines))
        write_rejects(source, self.by_line(), rejects_path)
        return len(self.lines)


def write_rejects(
    source: CsvSource,
    invalid: list[tuple[int, list[RowError]]],
    rejects_path: Path | None,
) -> None:
    """Write the invalid rows, in line order, with their errors to the rejects file.

    The file is read again for the cells of each row. A malformed row has no
    cells, so it is written with its line and error only.
    """
    target = check_rejects_path(source.path, rejects_path)
    rows = source.rows(errors=[])
    # The header is known once the reader has started.
    first = next(rows, None)
    writer = RejectsWriter(target, source.header)
    pending = iter(invalid)
    current = next(pending, None)
    try:
        for row in chain([first] if first is not None else [], rows):
            while current is not None and current[0] <= row.line:
                line, errors = current
                raw = row.raw if line == row.line else []
                writer.write(line, [e.describe(source.path) for e in errors], raw)
                current = next(pending, None)
        while current is not None:
            line, errors = current
            writer.write(line, [e.describe(source.path) for e in errors], [])
            current = next(pending, None)
    finally:
        writer.close()


class RowDigest:
    """A hash of the rows read, to find a file that changed between two passes."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)

    def add(self, row: Row) -> None:
        # Rows with a NUL (a control character) are never yielded, so NUL
        # separates the cells unambiguously.
        self._hash.update("\0".join((str(row.line), *row.raw, "")).encode())

    def digest(self) -> bytes:
        return self._hash.digest()


class FileChangedError(InvalidInputError):
    """A file that differs from the one validated, with `outcome` stating what stays."""

    def __init__(
        self,
        path: Path,
        line: int | None = None,
        *,
        outcome: str = "nothing was imported",
    ) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(
            f"{where}: the file changed while it was being imported; {outcome} "
            "(import it again once nothing else writes to it)"
        )
        self.path = path
        self.line = line


def check_unchanged(source: CsvSource, expected: bytes) -> None:
    """Raise FileChangedError when the rows of `source` differ from `expected`."""
    digest = RowDigest()
    for row in source.rows(errors=[]):
        digest.add(row)
    if digest.digest() != expected:
        raise FileChangedError(source.path)


def reread_valid_rows(
    source: CsvSource,
    convert: Callable[[Row], tuple[T | None, list[RowError]]],
    invalid_lines: set[int],
    expected: bytes,
) -> Iterator[tuple[Row, T]]:
    """Read the file again and yield the rows that validation accepted.

    Raises FileChangedError at a row accepted before that no longer converts,
    and after the last row when the rows differ in any way from the `expected`
    digest of the validation pass.
    """
    digest = RowDigest()
    for row in source.rows(errors=[]):
        digest.add(row)
        if row.line in invalid_lines:
            continue
        value, errors = convert(row)
        if value is None or errors:
            raise FileChangedError(source.path, row.line)
        yield row, value
    if digest.digest() != expected:
        raise FileChangedError(source.path)
