"""Importing identities from CSV exports of SaaS keys, OAuth grants and
legacy service accounts.

Columns (header names are case-insensitive; [optional]):
    kind, external_id, name, [description], [owner_email], [tier],
    [application], [project], [vendor], [created], [last_used], [managed],
    [metadata]

`tier` is privileged or standard (empty: standard). `created` and
`last_used` are ISO 8601 dates or times (UTC when no zone is given);
`last_used` may be "never". `managed` is yes or no: whether a secrets manager
manages the credential. `metadata` contains non-secret details as a JSON object
or as key=value pairs separated by semicolons. Application, project and
vendor are keys of business entities imported before.

A file is a complete snapshot of its source: identities of the source that
the file does not contain move to `gone`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from connectors.base import DiscoveredIdentity
from governance.app import Steward
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.discovery.models import RunStatus, run_error
from governance.discovery.service import (
    Reconciler,
    ReconcileResult,
    check_source_name,
    key_digest,
)
from governance.gc_pause import paused_gc
from governance.imports.csvfile import (
    MAX_REPORTED_ERRORS,
    PROGRESS_INTERVAL,
    CsvImportError,
    CsvSource,
    FileChangedError,
    Progress,
    RejectsWriter,
    Row,
    RowDigest,
    RowError,
    check_rejects_path,
    check_unchanged,
    reread_valid_rows,
)
from governance.imports.values import (
    parse_bool,
    parse_metadata,
    parse_optional_email,
    parse_timestamp,
)

logger = logging.getLogger(__name__)

REQUIRED = ("kind", "external_id", "name")
OPTIONAL = (
    "description",
    "owner_email",
    "tier",
    "application",
    "project",
    "vendor",
    "created",
    "last_used",
    "managed",
    "metadata",
)
ALIASES = {
    "external": "external_id",
    "id": "external_id",
    "owner": "owner_email",
    "created_at": "created",
    "last_used_at": "last_used",
    "managed_by_secrets_manager": "managed",
}
# Rows applied per transaction. Larger batches write each touched index page
# to the SQLite write-ahead log fewer times: on 1,000,000 rows, 20,000 took
# 79 s against 86 s for 10,000 (benchmarks/import_identities.py, 2 CPUs).
# A batch holds the SQLite write lock for about 1.5 s, and peak memory grew by
# about 4 KB per row of batch size.
IMPORT_BATCH_SIZE = 20_000
# The outcome a FileChangedError states, since each batch commits on its own.
CHANGED_FILE_OUTCOME = (
    "no identity was marked gone, but the batches read before the change stay imported"
)
ENTITY_COLUMNS = (
    ("application", EntityType.APPLICATION),
    ("project", EntityType.PROJECT),
    ("vendor", EntityType.VENDOR),
)


@dataclass
class IdentityImportResult:
    """The reconciliation counts plus the rows rejected by validation."""

    reconcile: ReconcileResult
    rejected: int
    rejects_path: Path | None


class IdentityCsv:
    """Validates and converts rows of an identity export."""

    def __init__(self, path: Path, entity_keys: dict[EntityType, set[str]]) -> None:
        self.source = CsvSource(
            path, required=REQUIRED, optional=OPTIONAL, aliases=ALIASES
        )
        self.entity_keys = entity_keys

    def convert(
        self, cells: dict[str, str]
    ) -> tuple[DiscoveredIdentity | None, list[RowError]]:
        """Return the identity a row describes, or the errors found in it."""
        errors: list[tuple[str | None, str]] = []
        get = cells.get
        tier_text = get("tier", "").lower()
        if tier_text not in ("", "privileged", "standard"):
            errors.append(
                ("tier", f"expected privileged or standard, got {tier_text!r}")
            )
        last_used_text = get("last_used", "")
        never_used = last_used_text.lower() == "never"
        fields: dict[str, object] = {
            "kind": cells["kind"],
            "external_id": cells["external_id"],
            "name": cells["name"],
            "description": get("description", ""),
            "owner_email": _parse(errors, "owner_email", parse_optional_email, get),
            "tier": tier_text or None,
            "tier_reason": "set in the export" if tier_text else "",
            "created_at": _parse(errors, "created", parse_timestamp, get),
            "last_used_at": None
            if never_used
            else _parse(errors, "last_used", parse_timestamp, get),
            "never_used": never_used,
            "managed": _parse(errors, "managed", _parse_managed, get),
            "attributes": _parse(errors, "metadata", parse_metadata, get) or {},
        }
        for column, entity_type in ENTITY_COLUMNS:
            key = cells.get(column, "")
            if key and key not in self.entity_keys.get(entity_type, set()):
                errors.append(
                    (
                        column,
                        f"no {entity_type.value} with key {key!r}; import it first",
                    )
                )
            fields[column] = key or None
        for column in REQUIRED:
            if not cells[column]:
                errors.append((column, "missing value"))
        if errors:
            return None, [RowError(0, column, message) for column, message in errors]
        try:
            return DiscoveredIdentity.model_validate(fields), []
        except ValidationError as error:
            return None, [
                RowError(0, str(item["loc"][0]) if item["loc"] else None, item["msg"])
                for item in error.errors()
            ]


def _parse(
    errors: list[tuple[str | None, str]],
    column: str,
    parser: Callable[[str], Any],
    get: Callable[[str, str], str],
) -> Any:
    try:
        return parser(get(column, ""))
    except ValueError as error:
        errors.append((column, str(error)))
        return None


def _parse_managed(text: str) -> bool:
    return parse_bool(text, default=False)


def _entity_keys(app: Steward) -> dict[EntityType, set[str]]:
    keys: dict[EntityType, set[str]] = {}
    with app.sessions() as session:
        for entity_type, key in session.execute(
            sa.select(BusinessEntity.type, BusinessEntity.key)
        ):
            keys.setdefault(entity_type, set()).add(key)
    return keys


@paused_gc()
def import_identities(
    app: Steward,
    path: Path,
    *,
    source: str,
    actor: Actor,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    confirm: bool = False,
    progress: Progress | None = None,
) -> IdentityImportResult:
    """Import an identity export as the complete snapshot of `source`.

    The file is read twice and never held in memory: once to validate every
    row, once to apply the valid ones. With any invalid row and without
    `skip_invalid`, CsvImportError is raised and nothing changes but a failed
    run record.

    Raises FileChangedError when the file changes between the two readings,
    before any identity is marked gone. The batches committed before the
    change was read stay applied.
    """
    check_source_name(source)
    reader = IdentityCsv(path, _entity_keys(app))
    reconciler = Reconciler(
        app,
        source,
        method="csv",
        actor=actor,
        confirm=confirm,
        batch_size=IMPORT_BATCH_SIZE,
    )
    run_id = reconciler.start_run()

    try:
        validated = _validate(reader, skip_invalid, rejects_path, progress)
    except BaseException as error:
        reconciler.finish_run(run_id, RunStatus.FAILED, error=run_error(error))
        raise
    if validated.total_errors and not skip_invalid:
        failure = CsvImportError(path, validated.reported, validated.total_errors)
        reconciler.finish_run(
            run_id, RunStatus.FAILED, error=str(failure).splitlines()[0]
        )
        raise failure

    def snapshot() -> Iterator[DiscoveredIdentity]:
        rows = reread_valid_rows(
            reader.source,
            lambda row: reader.convert(row.cells),
            validated.invalid_lines,
            validated.digest.digest(),
        )
        try:
            for row, identity in rows:
                # An external id added since validation would escape the
                # duplicate check and be committed before the digest is
                # compared.
                if key_digest(identity.external_id) not in validated.seen:
                    raise FileChangedError(path, row.line)
                yield identity
        except FileChangedError as error:
            raise FileChangedError(
                path, error.line, outcome=CHANGED_FILE_OUTCOME
            ) from None

    def applied(count: int) -> None:
        if progress is not None and count % PROGRESS_INTERVAL < reconciler.batch_size:
            progress("imported", count)

    try:
        result = reconciler.run(
            snapshot, run_id=run_id, scanned=validated.seen, progress=applied
        )
    except FileChangedError:
        raise
    except Exception:
        # A changed file can break a constraint that validation checked,
        # such as a new repeated external id. Report the change as the cause.
        try:
            check_unchanged(reader.source, validated.digest.digest())
        except FileChangedError as error:
            raise FileChangedError(
                path, error.line, outcome=CHANGED_FILE_OUTCOME
            ) from None
        raise
    return IdentityImportResult(
        reconcile=result,
        rejected=validated.rejected,
        rejects_path=validated.rejects_path if validated.rejected else None,
    )


class _Validation:
    """State of the validation pass: seen ids, errors and the rejects file."""

    def __init__(
        self, source: CsvSource, skip_invalid: bool, rejects_path: Path | None
    ) -> None:
        path = source.path
        self.path = path
        self.source = source
        self.skip_invalid = skip_invalid
        self.rejects_path = check_rejects_path(path, rejects_path)
        self.seen: set[bytes] = set()
        self.first_line: dict[bytes, int] = {}
        self.reported: list[RowError] = []
        self.total_errors = 0
        self.invalid_lines: set[int] = set()
        self.digest = RowDigest()
        self.rejects: RejectsWriter | None = None

    def check_duplicate(self, external_id: str, line: int) -> RowError | None:
        if not external_id:
            return None
        digest = key_digest(external_id)
        if digest in self.seen:
            first = self.first_line.get(digest)
            where = f", first on line {first}" if first is not None else ""
            return RowError(
                0, "external_id", f"duplicate external id {external_id!r}{where}"
            )
        self.seen.add(digest)
        if len(self.first_line) < 100_000:
            self.first_line[digest] = line
        return None

    def reject(self, line: int, errors: list[RowError], raw: list[str]) -> None:
        located = [RowError(line, e.column, e.message) for e in errors]
        self.total_errors += 1
        self.invalid_lines.add(line)
        if len(self.reported) < MAX_REPORTED_ERRORS:
            self.reported.extend(located)
        if not self.skip_invalid:
            return
        if self.rejects is None:
            self.rejects = RejectsWriter(self.rejects_path, self.source.header)
        self.rejects.write(line, [e.describe(self.path) for e in located], raw)

    @property
    def rejected(self) -> int:
        return self.rejects.count if self.rejects is not None else 0

    def close(self) -> None:
        if self.rejects is not None:
            self.rejects.close()


def _validate(
    reader: IdentityCsv,
    skip_invalid: bool,
    rejects_path: Path | None,
    progress: Progress | None,
) -> _Validation:
    malformed: list[RowError] = []
    state = _Validation(reader.source, skip_invalid, rejects_path)
    try:
        for count, row in enumerate(reader.source.rows(errors=malformed), start=1):
            if progress is not None and count % PROGRESS_INTERVAL == 0:
                progress("validated", count)
            _check_row(reader, state, row)
        for problem in malformed:
            state.reject(problem.line, [problem], [])
    finally:
        state.close()
    # Identities on rejected rows stay in `seen`, so a typo in one row never
    # makes its identity look deleted.
    return state


def _check_row(reader: IdentityCsv, state: _Validation, row: Row) -> None:
    state.digest.add(row)
    _, errors = reader.convert(row.cells)
    duplicate = state.check_duplicate(row.cells.get("external_id", ""), row.line)
    if duplicate is not None:
        errors.append(duplicate)
    if errors:
        state.reject(row.line, errors, row.raw)
