"""Importing identity exports: validation, snapshots, rejects and the guard."""

from __future__ import annotations

import contextlib
import csv
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.discovery.models import DiscoveryRun, RunStatus
from governance.discovery.service import Reconciler
from governance.errors import ConfirmationRequiredError, InvalidInputError
from governance.identity.models import Identity, RiskTier
from governance.imports import identities as identities_module
from governance.imports.csvfile import CsvImportError, FileChangedError
from governance.imports.identities import import_identities
from governance.lifecycle import IdentityState
from tests.factories import make_person

ACTOR = Actor.person("importer@example.com")
HEADER = [
    "kind",
    "external_id",
    "name",
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
]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def row(number: int, **cells: str) -> list[str]:
    values = {
        "kind": "api_key",
        "external_id": f"sk-{number}",
        "name": f"key {number}",
        "description": "",
        "owner_email": "",
        "tier": "",
        "application": "",
        "project": "",
        "vendor": "",
        "created": "2025-01-15",
        "last_used": "",
        "managed": "no",
        "metadata": "",
    }
    values.update(cells)
    return [values[column] for column in HEADER]


def counts(app: Steward) -> tuple[int, int]:
    with app.sessions() as session:
        identities = session.scalar(sa.select(sa.func.count()).select_from(Identity))
        events = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    return identities or 0, events or 0


@pytest.fixture
def directory(session: Session) -> None:
    make_person(session, "alice@example.com")
    session.add(BusinessEntity(type=EntityType.VENDOR, key="acme", name="Acme"))
    session.add(BusinessEntity(type=EntityType.APPLICATION, key="crm", name="CRM"))
    session.commit()


def test_valid_file_imported(app: Steward, directory: None, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "saas.csv",
        [
            row(
                1,
                owner_email="Alice@example.com",
                tier="privileged",
                vendor="acme",
                application="crm",
                last_used="2026-11-30T10:00:00Z",
                managed="yes",
                metadata='{"scopes": "repo,admin:org", "workspace": "eng"}',
            ),
            row(2, last_used="never", metadata="team=data; region=eu"),
        ],
    )
    result = import_identities(app, path, source="github-tokens", actor=ACTOR)
    assert result.reconcile.new == 2
    with app.sessions() as session:
        first = session.scalars(
            sa.select(Identity).where(Identity.external_id == "sk-1")
        ).one()
        assert first.source == "github-tokens"
        assert first.tier is RiskTier.PRIVILEGED
        assert first.state is IdentityState.OWNED
        assert first.managed is True
        assert first.last_used_at is not None
        assert first.last_used_at.day == 30
        assert first.attributes == {"scopes": "repo,admin:org", "workspace": "eng"}
        assert sorted(entity.key for entity in first.entities) == ["acme", "crm"]
        second = session.scalars(
            sa.select(Identity).where(Identity.external_id == "sk-2")
        ).one()
        assert second.never_used is True
        assert second.state is IdentityState.ORPHANED
        assert second.attributes == {"team": "data", "region": "eu"}


def test_invalid_row_changes_nothing(
    app: Steward, directory: None, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "saas.csv",
        [
            row(1),
            row(2, tier="admin"),
            row(3, created="31/12/2025", owner_email="not-an-email"),
            row(4, vendor="nobody"),
            row(1),
        ],
    )
    with pytest.raises(CsvImportError) as raised:
        import_identities(app, path, source="saas", actor=ACTOR)
    message = str(raised.value)
    assert "4 invalid rows; nothing was imported" in message
    assert f"{path}, line 3, column tier: expected privileged or standard" in message
    assert f"{path}, line 4, column created: expected an ISO 8601 date" in message
    assert f"{path}, line 4, column owner_email: expected an email address" in message
    assert f"{path}, line 5, column vendor: no vendor with key 'nobody'" in message
    assert (
        "line 6, column external_id: duplicate external id 'sk-1', first on line 2"
        in message
    )
    assert counts(app) == (0, 0)
    with app.sessions() as session:
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED


def test_skip_invalid_writes_rejects(
    app: Steward, directory: None, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "saas.csv", [row(1), row(2, tier="admin"), row(3)])
    rejects = tmp_path / "rejected.csv"
    result = import_identities(
        app, path, source="saas", actor=ACTOR, skip_invalid=True, rejects_path=rejects
    )
    assert result.reconcile.new == 2
    assert result.rejected == 1
    with rejects.open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.reader(handle))
    assert rejected[0][:3] == ["line", "errors", "kind"]
    assert rejected[1][0] == "3"
    assert "column tier: expected privileged or standard" in rejected[1][1]
    assert rejected[1][3] == "sk-2"


def test_rejected_row_never_goes(app: Steward, directory: None, tmp_path: Path) -> None:
    import_identities(
        app, write_csv(tmp_path / "a.csv", [row(1), row(2)]), source="saas", actor=ACTOR
    )
    second = write_csv(tmp_path / "b.csv", [row(1), row(2, created="yesterday")])
    result = import_identities(
        app,
        second,
        source="saas",
        actor=ACTOR,
        skip_invalid=True,
        rejects_path=tmp_path / "r.csv",
    )
    assert result.reconcile.gone == 0
    with app.sessions() as session:
        states = set(session.scalars(sa.select(Identity.state)))
    assert states == {IdentityState.ORPHANED}


def test_unchanged_reimport_writes_only_run(
    app: Steward, directory: None, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "saas.csv",
        [row(n, owner_email="alice@example.com") for n in range(20)],
    )
    import_identities(app, path, source="saas", actor=ACTOR)
    before = counts(app)
    result = import_identities(app, path, source="saas", actor=ACTOR)
    assert result.reconcile.unchanged == 20
    assert counts(app) == before


def test_missing_rows_go_and_guard_applies(
    app: Steward, directory: None, tmp_path: Path
) -> None:
    import_identities(
        app,
        write_csv(tmp_path / "full.csv", [row(n) for n in range(10)]),
        source="saas",
        actor=ACTOR,
    )
    small = write_csv(tmp_path / "small.csv", [row(n) for n in range(9)])
    assert import_identities(app, small, source="saas", actor=ACTOR).reconcile.gone == 1

    truncated = write_csv(tmp_path / "truncated.csv", [row(0)])
    before = counts(app)
    with pytest.raises(ConfirmationRequiredError, match="8 of 9"):
        import_identities(app, truncated, source="saas", actor=ACTOR)
    assert counts(app) == before
    result = import_identities(app, truncated, source="saas", actor=ACTOR, confirm=True)
    assert result.reconcile.gone == 8


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "the file is empty"),
        ("kind,external_id\n", "missing columns: name"),
        ("kind,external_id,name,colour\n", "unknown columns: colour"),
        ("kind,external_id,name,name\n", "repeated columns: name"),
    ],
)
def test_bad_header_rejected(
    app: Steward, tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=expected):
        import_identities(app, path, source="saas", actor=ACTOR)
    assert counts(app) == (0, 0)


def test_malformed_rows_reported(app: Steward, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    long_name = "x" * 70_000
    path.write_text(
        "kind,external_id,name\n"
        "api_key,a,ok\n"
        "api_key,b\n"
        f"api_key,c,{long_name}\n"
        'api_key,d,"unterminated\n',
        encoding="utf-8",
    )
    with pytest.raises(CsvImportError) as raised:
        import_identities(app, path, source="saas", actor=ACTOR)
    message = str(raised.value)
    assert "line 3: expected 3 fields, found 2" in message
    assert "line 4, column name: value too long" in message
    assert counts(app) == (0, 0)


def test_latin1_file_names_bad_line(app: Steward, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        "kind,external_id,name\napi_key,a,caf\u00e9\napi_key,b,ok\n".encode("latin-1")
    )
    with pytest.raises(InvalidInputError) as raised:
        import_identities(app, path, source="saas", actor=ACTOR)
    message = str(raised.value)
    assert message.startswith(f"{path}, line 2: not UTF-8")
    assert "byte 0xe9 at position 14 of the line" in message
    assert "save the file as UTF-8" in message
    assert "codec" not in message
    assert counts(app) == (0, 0)


def test_one_invalid_row_singular(app: Steward, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("kind,external_id,name\napi_key,a\n", encoding="utf-8")
    with pytest.raises(CsvImportError) as raised:
        import_identities(app, path, source="saas", actor=ACTOR)
    assert "1 invalid row; nothing was imported" in str(raised.value)


def test_secret_looking_metadata_rejected(app: Steward, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [row(1, metadata='{"client_secret": "abc"}')])
    with pytest.raises(CsvImportError, match="looks like a secret"):
        import_identities(app, path, source="saas", actor=ACTOR)


def test_invalid_source_name(app: Steward, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [row(1)])
    with pytest.raises(InvalidInputError, match="invalid source name 'Bad Name'"):
        import_identities(app, path, source="Bad Name", actor=ACTOR)


def test_progress_reported(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("governance.imports.identities.PROGRESS_INTERVAL", 4)
    path = write_csv(tmp_path / "s.csv", [row(n) for n in range(10)])
    reports: list[tuple[str, int]] = []
    import_identities(
        app,
        path,
        source="saas",
        actor=ACTOR,
        progress=lambda phase, count: reports.append((phase, count)),
    )
    assert ("validated", 4) in reports
    assert ("validated", 8) in reports
    assert ("imported", 10) in reports


def test_control_characters_rejected(app: Steward, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "s.csv",
        [
            row(1, name="\x1b[31mRED\x1b[0m"),
            row(2, name="fake\n99  saas  api_key  spoofed"),
            row(3, external_id="nul\x00x"),
            row(4, description="line one\nline two\twith a tab"),
        ],
    )
    with pytest.raises(CsvImportError) as raised:
        import_identities(app, path, source="saas", actor=ACTOR)
    message = str(raised.value)
    assert "line 2, column name: control character U+001B is not allowed" in message
    assert "column name: control character U+000A is not allowed" in message
    assert "column external_id: control character U+0000 is not allowed" in message
    assert "3 invalid rows" in message
    assert counts(app) == (0, 0)


def test_rejects_neutralise_formulas(app: Steward, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "s.csv", [row(1, name="=cmd|' /C calc'!A0", tier="boss")]
    )
    rejects = tmp_path / "out.csv"
    import_identities(
        app, path, source="saas", actor=ACTOR, skip_invalid=True, rejects_path=rejects
    )
    with rejects.open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.reader(handle))
    assert rejected[1][4] == "'=cmd|' /C calc'!A0"


def test_rejects_path_not_writable(app: Steward, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [row(1), row(2, tier="boss")])
    rejects = tmp_path / "missing" / "out.csv"
    with pytest.raises(InvalidInputError, match="cannot write the rejects file"):
        import_identities(
            app,
            path,
            source="saas",
            actor=ACTOR,
            skip_invalid=True,
            rejects_path=rejects,
        )
    assert counts(app) == (0, 0)
    with app.sessions() as session:
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED


def test_rejects_cannot_overwrite_input(app: Steward, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [row(1), row(2, tier="boss")])
    before = path.read_bytes()
    with pytest.raises(InvalidInputError, match="is the file being imported"):
        import_identities(
            app, path, source="saas", actor=ACTOR, skip_invalid=True, rejects_path=path
        )
    assert path.read_bytes() == before
    result = import_identities(app, path, source="saas", actor=ACTOR, skip_invalid=True)
    assert result.rejects_path == tmp_path / "s.csv.rejected.csv"


def test_interrupted_import_keeps_committed_batches(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("governance.imports.identities.IMPORT_BATCH_SIZE", 3)
    monkeypatch.setattr("governance.imports.identities.PROGRESS_INTERVAL", 1)
    path = write_csv(tmp_path / "s.csv", [row(n) for n in range(10)])

    def interrupt(phase: str, count: int) -> None:
        if phase == "imported" and count >= 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_identities(app, path, source="saas", actor=ACTOR, progress=interrupt)
    assert counts(app) == (6, 6)
    with app.sessions() as session:
        verified = verify_database(session)
        assert verified.finding is None
        assert verified.events_checked == 6
        run = session.scalars(sa.select(DiscoveryRun)).one()
        assert run.status is RunStatus.FAILED
        assert run.error == "interrupted (KeyboardInterrupt)"
        assert run.new_count == 6


def test_file_changed_between_readings(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("governance.imports.identities.IMPORT_BATCH_SIZE", 4)
    path = write_csv(tmp_path / "s.csv", [row(n) for n in range(10)])
    import_identities(app, path, source="saas", actor=ACTOR)
    before = counts(app)
    validate = identities_module._validate
    replacement: dict[str, list[list[str]]] = {}

    def validate_then_edit(*args: Any, **kwargs: Any) -> Any:
        validated = validate(*args, **kwargs)
        write_csv(path, replacement["rows"])
        return validated

    monkeypatch.setattr(identities_module, "_validate", validate_then_edit)
    cases = [
        # The last row, read with the last batch, becomes invalid.
        ([row(n) for n in range(9)] + [row(9, tier="boss")], ", line 11: "),
        # A row of the last batch is renamed but stays valid.
        ([row(n) for n in range(9)] + [row(9, name="renamed")], ".csv: the"),
        # A row of the last batch is removed, which would mark it gone.
        ([row(n) for n in range(9)], ".csv: the"),
        # A row with an external id not validated is added.
        ([row(n) for n in range(10)] + [row(10)], ", line 12: "),
    ]
    for rows, where in cases:
        write_csv(path, [row(n) for n in range(10)])
        replacement["rows"] = rows
        with pytest.raises(FileChangedError, match="the file changed") as raised:
            import_identities(app, path, source="saas", actor=ACTOR)
        assert where in str(raised.value)
        assert "nothing was imported" not in str(raised.value)
        assert "no identity was marked gone" in str(raised.value)
        assert counts(app) == before
        with app.sessions() as session:
            names = session.scalars(sa.select(Identity.name).order_by(Identity.id))
            assert list(names) == [f"key {n}" for n in range(10)]
            states = session.scalars(sa.select(Identity.state).distinct())
            assert IdentityState.GONE not in list(states)
            run = session.scalars(
                sa.select(DiscoveryRun).order_by(DiscoveryRun.id.desc())
            ).first()
            assert run is not None
            assert run.status is RunStatus.FAILED


def test_concurrent_imports_of_one_source(
    app: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "s.csv", [row(n) for n in range(10)])
    apply_batch = Reconciler._apply_batch
    # Both runs read the stored identities together, unless one waits for
    # the other to finish, which breaks the barrier.
    barrier = threading.Barrier(2, timeout=2)

    def apply_in_step(self: Reconciler, *args: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        apply_batch(self, *args)

    monkeypatch.setattr(Reconciler, "_apply_batch", apply_in_step)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(import_identities, app, path, source="saas", actor=ACTOR)
            for _ in range(2)
        ]
        results = [run.result(timeout=60).reconcile for run in runs]
    assert sorted(result.new for result in results) == [0, 10]
    assert sorted(result.unchanged for result in results) == [0, 10]
    assert counts(app) == (10, 10)
