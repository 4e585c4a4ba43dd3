"""The `steward` command line, run in-process and as the installed script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor, record
from governance.cli.main import cli
from governance.identity.models import RiskTier
from governance.lifecycle import IdentityState
from tests.factories import make_identity, make_person


def run(database_url: str, *arguments: str, **env: str) -> Result:
    runner = CliRunner()
    environment = {"STEWARD_DATABASE_URL": database_url, **env}
    return runner.invoke(cli, list(arguments), env=environment, catch_exceptions=False)


@pytest.fixture
def inventory(session: Session) -> None:
    alice = make_person(session, "alice@example.com")
    make_identity(
        session,
        name="payments-deployer",
        external_id="acc-1",
        owner=alice,
        tier=RiskTier.PRIVILEGED,
    )
    make_identity(
        session, name="legacy-sync", external_id="acc-2", state=IdentityState.ORPHANED
    )
    make_identity(
        session,
        name="crm-export",
        source="saas-keys",
        kind="api_key",
        external_id="arn:aws:iam::123:user/x",
        owner=alice,
    )
    session.commit()


def test_nhi_list_filters(database_url: str, inventory: None) -> None:
    result = run(database_url, "nhi", "list", "--json")
    assert result.exit_code == 0
    names = [row["name"] for row in json.loads(result.output)]
    assert names == ["payments-deployer", "legacy-sync", "crm-export"]

    def names_for(*options: str) -> list[str]:
        output = run(database_url, "nhi", "list", "--json", *options).output
        return [row["name"] for row in json.loads(output)]

    assert names_for("--state", "orphaned") == ["legacy-sync"]
    assert names_for("--owner", "ALICE@example.com") == [
        "payments-deployer",
        "crm-export",
    ]
    assert names_for("--source", "saas-keys") == ["crm-export"]
    assert names_for("--tier", "privileged") == ["payments-deployer"]
    assert names_for("--tier", "privileged", "--state", "orphaned") == []


def test_nhi_list_table(database_url: str, inventory: None) -> None:
    result = run(database_url, "nhi", "list")
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "ID",
        "SOURCE",
        "KIND",
        "NAME",
        "TIER",
        "STATE",
        "OWNER",
    ]
    assert "legacy-sync" in lines[3]
    assert lines[3].split()[-1] == "-"
    assert lines[-1] == "3 identities"


def test_nhi_show_by_reference(database_url: str, inventory: None) -> None:
    result = run(
        database_url, "nhi", "show", "saas-keys:arn:aws:iam::123:user/x", "--json"
    )
    assert result.exit_code == 0
    detail = json.loads(result.output)
    assert detail["name"] == "crm-export"
    assert detail["owner"] == "alice@example.com"

    by_id = json.loads(
        run(database_url, "nhi", "show", str(detail["id"]), "--json").output
    )
    assert by_id["external_id"] == "arn:aws:iam::123:user/x"


def test_nhi_show_unknown(database_url: str, inventory: None) -> None:
    result = run(database_url, "nhi", "show", "vault-main:nope")
    assert result.exit_code == 2
    assert "identity not found: 'vault-main:nope'" in result.output


def test_invalid_choice_rejected(database_url: str) -> None:
    result = run(database_url, "nhi", "list", "--state", "happy")
    assert result.exit_code == 2
    assert "Invalid value for '--state'" in result.output


def test_audit_verify_and_export(
    database_url: str, app: Steward, tmp_path: Path
) -> None:
    with app.session() as session:
        for number in range(3):
            record(
                session,
                actor=Actor.person("a@example.com"),
                action="test",
                object_type="identity",
                object_id=str(number),
            )
    result = run(database_url, "audit", "verify")
    assert result.exit_code == 0
    assert "checked 3 events" in result.output
    head = result.output.split("head ")[1].split()[0]

    export_path = tmp_path / "trail.csv"
    exported = run(
        database_url, "audit", "export", "--format", "csv", "--output", str(export_path)
    )
    assert exported.exit_code == 0
    assert f"head {head}" in exported.output
    offline = run(
        database_url,
        "audit",
        "verify",
        "--file",
        str(export_path),
        "--expect-head",
        head,
    )
    assert offline.exit_code == 0
    assert "chain intact" in offline.output

    with app.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_event WHERE seq = 3")
    truncated = run(database_url, "audit", "verify", "--expect-head", head)
    assert truncated.exit_code == 1
    assert "TAMPERED (truncated) at event 3" in truncated.output


def test_audit_verify_rejects_bad_head(database_url: str) -> None:
    result = run(database_url, "audit", "verify", "--expect-head", "12:abc")
    assert result.exit_code == 2
    assert "SEQ:HASH" in result.output


def test_config_show_masks_credentials(tmp_path: Path) -> None:
    url = "postgresql+psycopg://steward:topsecret-marker@db.internal:5432/steward"
    result = run(url, "config", "show", STEWARD_DATABASE_PASSWORD="other-marker")
    assert result.exit_code == 0
    assert "topsecret-marker" not in result.output
    assert "other-marker" not in result.output
    assert "steward:***@db.internal" in result.output
    assert "review.privileged_interval_days = 90" in result.output

    as_json = json.loads(run(url, "config", "show", "--json").output)
    assert as_json["review"]["standard_interval_days"] == 365


def test_invalid_setting_stops_start_up() -> None:
    result = run(
        "sqlite:///x.db", "nhi", "list", STEWARD_REVIEW__PRIVILEGED_INTERVAL_DAYS="-3"
    )
    assert result.exit_code == 2
    assert "configuration error" in result.output
    assert "STEWARD_REVIEW__PRIVILEGED_INTERVAL_DAYS" in result.output


def test_installed_script_upgrades_database(tmp_path: Path) -> None:
    environment = {**os.environ, "STEWARD_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    script = Path(sys.executable).with_name("steward")
    upgraded = subprocess.run(
        [str(script), "db", "upgrade"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert "(was empty)" in upgraded.stdout
    current = subprocess.run(
        [str(script), "db", "current"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "(current)" in current.stdout


def test_missing_database_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    result = run(f"sqlite:///{path}", "nhi", "list")
    assert result.exit_code == 2
    assert "not found: run `steward db upgrade`" in result.output
    assert not path.exists()


def test_unmigrated_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    result = run(f"sqlite:///{path}", "nhi", "list")
    assert result.exit_code == 2
    assert "schema is at revision none" in result.output
    assert "run `steward db upgrade`" in result.output


def test_table_escapes_control_characters(database_url: str, session: Session) -> None:
    make_identity(session, name="\x1b]0;pwned\x07evil", external_id="esc-1")
    session.commit()
    result = run(database_url, "nhi", "list")
    assert "\x1b" not in result.output
    assert "\\x1b]0;pwned\\x07evil" in result.output
    shown = run(database_url, "nhi", "show", "vault-main:esc-1")
    assert "\x1b" not in shown.output


def test_query_password_masked() -> None:
    url = "postgresql+psycopg://steward@db.internal/steward?password=qs-marker&sslmode=require"
    result = run(url, "config", "show")
    assert "qs-marker" not in result.output
    assert "sslmode=require" in result.output


def test_unreachable_database_one_line() -> None:
    url = "postgresql+psycopg://steward:pw-marker@127.0.0.1:1/none?connect_timeout=2"
    result = run(url, "nhi", "list")
    assert result.exit_code == 3
    assert result.output.startswith("database error: ")
    assert "pw-marker" not in result.output
    assert "Traceback" not in result.output


def test_verify_rejects_binary_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(bytes(range(128, 256)))
    result = run("sqlite:///unused.db", "audit", "verify", "--file", str(junk))
    assert result.exit_code == 2
    assert "is not a UTF-8 text file" in result.output


def test_pause_and_resume(database_url: str) -> None:
    admin = {
        "STEWARD_SECURITY__ADMINS": "sec@example.com",
        "STEWARD_ACTOR": "sec@example.com",
    }
    assert (
        run(database_url, "remediation", "pause", **admin).output
        == "remediation paused\n"
    )
    again = run(database_url, "remediation", "pause", **admin)
    assert again.output == "remediation was already paused\n"
    assert (
        run(database_url, "remediation", "resume", **admin).output
        == "remediation resumed\n"
    )
    refused = run(database_url, "remediation", "pause", STEWARD_ACTOR="bob@example.com")
    assert refused.exit_code == 2
    assert "only security admins may" in refused.output


def test_nhi_show_invalid_id(database_url: str, inventory: None) -> None:
    for reference in ["99999999999999999999999", "\uff11", "\u0661"]:
        result = run(database_url, "nhi", "show", reference)
        assert result.exit_code == 2, result.output
        assert f"identity not found: {reference!r}" in result.output


def test_import_people_reports_progress(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("governance.imports.csvfile.PROGRESS_INTERVAL", 2)
    monkeypatch.setattr("governance.imports.people.BATCH_SIZE", 2)
    path = tmp_path / "people.csv"
    path.write_text(
        "email,display_name,manager_email\n"
        "ann@example.com,Ann,lead@example.com\n"
        "bob@example.com,Bob,lead@example.com\n"
        "lead@example.com,Lead,\n",
        encoding="utf-8",
    )
    result = run(
        database_url, "import", "people", str(path), "--actor", "hr@example.com"
    )
    assert result.exit_code == 0
    assert result.stderr.splitlines() == ["validated 2 rows", "imported 2 rows"]
    assert result.stdout.splitlines()[0] == (
        "people: 3 created, 0 updated, 0 unchanged, 0 deactivated, 0 rejected"
    )
