"""`steward discover` and `steward health` against a real OpenBao server.

Each test gets its own AppRole and KV mounts and a Steward AppRole bound to
the repository's policy rendered for those mounts, so the counts do not
depend on what other tests created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.cli.main import cli
from governance.discovery.models import DiscoveryRun, RunStatus
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from tests.factories import make_person
from tests.openbao import OpenBao, unique


@dataclass
class Scope:
    """One test's mounts on the shared server and its Steward config file."""

    approle: str
    kv2: str
    kv1: str
    config: Path
    options: dict[str, Any]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(item) for item in value) + "]"
    return json.dumps(value)


def write_config(path: Path, sources: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, options in sources.items():
        lines.append(f'[connectors."{name}"]')
        lines.append('type = "vault"')
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in options.items())
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def scope(openbao: OpenBao, tmp_path: Path) -> Iterator[Scope]:
    approle, kv2, kv1 = unique("ar"), unique("kvtwo"), unique("kvone")
    with openbao.scratch_mounts(approle=approle, kv2=kv2, kv1=kv1):
        options = {
            **openbao.steward_login(
                approle_mount=approle, kv2_mount=kv2, kv1_mount=kv1
            ),
            "approle_mounts": [approle],
            "kv_mounts": [kv2, kv1],
            "discover_tokens": False,
        }
        config = write_config(tmp_path / "steward.toml", {"vault-main": options})
        yield Scope(approle, kv2, kv1, config, options)


def run(database_url: str, config: Path, *arguments: str) -> Result:
    environment = {
        "STEWARD_DATABASE_URL": database_url,
        "STEWARD_CONFIG_FILE": str(config),
    }
    return CliRunner().invoke(
        cli, list(arguments), env=environment, catch_exceptions=False
    )


def seed_secret_ids(
    openbao: OpenBao, mount: str, role: str, count: int, owner: str | None = None
) -> list[str]:
    openbao.root.auth.approle.create_or_update_approle(
        role, token_policies=["default"], mount_point=mount
    )
    metadata = {"owner": owner} if owner else None
    return [
        openbao.root.auth.approle.generate_secret_id(
            role, metadata=metadata, mount_point=mount
        )["data"]["secret_id_accessor"]
        for _ in range(count)
    ]


def audit_count(app: Steward) -> int:
    with app.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0


def identity_states(app: Steward) -> dict[str, IdentityState]:
    with app.session() as session:
        rows = session.execute(sa.select(Identity.external_id, Identity.state))
        return {row.external_id: row.state for row in rows}


def last_runs(app: Steward) -> list[DiscoveryRun]:
    with app.session() as session:
        return list(session.scalars(sa.select(DiscoveryRun).order_by(DiscoveryRun.id)))


def test_discover_then_rerun_unchanged(
    database_url: str, app: Steward, openbao: OpenBao, scope: Scope
) -> None:
    with app.session() as session:
        make_person(session, "alice@example.com")
    owned = seed_secret_ids(openbao, scope.approle, "billing", 2, "alice@example.com")
    orphans = seed_secret_ids(openbao, scope.approle, "batch", 1)
    openbao.root.secrets.kv.v2.create_or_update_secret(
        "app/db", secret={"password": "x"}, mount_point=scope.kv2
    )

    first = run(database_url, scope.config, "discover", "--json")
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    assert document[0]["status"] == "succeeded"
    # Two roles, three secret-ids and one KV entry.
    assert document[0]["new"] == 6
    states = identity_states(app)
    assert all(states[accessor] is IdentityState.OWNED for accessor in owned)
    assert states[orphans[0]] is IdentityState.ORPHANED
    assert states[f"{scope.kv2}/app/db"] is IdentityState.ORPHANED

    events_before = audit_count(app)
    second = run(database_url, scope.config, "discover", "--json")
    assert second.exit_code == 0, second.output
    rerun = json.loads(second.stdout)[0]
    assert rerun["new"] == 0
    assert rerun["changed"] == 0
    assert rerun["unchanged"] == 6
    assert audit_count(app) == events_before
    runs = last_runs(app)
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 2


def test_deleted_secret_id_goes_gone(
    database_url: str, app: Steward, openbao: OpenBao, scope: Scope
) -> None:
    accessors = seed_secret_ids(openbao, scope.approle, "workers", 5)
    assert run(database_url, scope.config, "discover").exit_code == 0
    openbao.root.auth.approle.destroy_secret_id_accessor(
        "workers", accessors[0], mount_point=scope.approle
    )

    result = run(database_url, scope.config, "discover", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["gone"] == 1
    states = identity_states(app)
    assert states[accessors[0]] is IdentityState.GONE
    assert states[accessors[1]] is IdentityState.ORPHANED


def test_guard_blocks_mass_disappearance(
    database_url: str, app: Steward, openbao: OpenBao, scope: Scope
) -> None:
    accessors = seed_secret_ids(openbao, scope.approle, "fleet", 4)
    assert run(database_url, scope.config, "discover").exit_code == 0
    for accessor in accessors:
        openbao.root.auth.approle.destroy_secret_id_accessor(
            "fleet", accessor, mount_point=scope.approle
        )

    blocked = run(database_url, scope.config, "discover")

    assert blocked.exit_code == 1
    assert "blocked" in blocked.output
    assert "--confirm" in blocked.output
    states = identity_states(app)
    assert all(states[accessor] is IdentityState.ORPHANED for accessor in accessors)

    confirmed = run(database_url, scope.config, "discover", "--confirm", "--json")
    assert confirmed.exit_code == 0, confirmed.output
    assert json.loads(confirmed.stdout)[0]["gone"] == 4
    assert identity_states(app)[accessors[0]] is IdentityState.GONE


def test_failing_source_marks_nothing_gone(
    database_url: str, app: Steward, openbao: OpenBao, scope: Scope, tmp_path: Path
) -> None:
    accessors = seed_secret_ids(openbao, scope.approle, "jobs", 3)
    assert run(database_url, scope.config, "discover").exit_code == 0
    # The mount is still listed, but Steward may no longer read it: the
    # listing fails part-way, after the roles were read.
    denied = unique("denied")
    with openbao.scratch_mounts(kv2=denied):
        failing = {**scope.options, "kv_mounts": [scope.kv2, denied]}
        healthy = {**scope.options, "approle_mounts": [], "kv_mounts": [scope.kv1]}
        config = write_config(
            tmp_path / "failing.toml", {"vault-main": failing, "vault-other": healthy}
        )

        result = run(database_url, config, "discover")

    assert result.exit_code == 1
    assert "vault-main failed: listing failed" in result.output
    assert "permission denied" in result.output
    states = identity_states(app)
    assert all(states[accessor] is IdentityState.ORPHANED for accessor in accessors)
    runs = {run.source: run for run in last_runs(app)[1:]}
    assert runs["vault-main"].status is RunStatus.FAILED
    assert runs["vault-main"].gone_count == 0
    assert runs["vault-other"].status is RunStatus.SUCCEEDED


def test_unknown_source_rejected(database_url: str, scope: Scope) -> None:
    result = run(database_url, scope.config, "discover", "vault-nope")
    assert result.exit_code == 2
    assert "connector not configured: vault-nope" in result.output


def test_bad_option_fails_loudly(database_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad.toml", {"vault-main": {"url": "nope"}})
    result = run(database_url, config, "discover")
    assert result.exit_code == 3
    assert "connector error (vault-main)" in result.output
    assert "url: expected an http:// or https://" in result.output


def test_health_reports_checks(
    database_url: str, app: Steward, openbao: OpenBao, scope: Scope
) -> None:
    never_run = run(database_url, scope.config, "health", "--json")
    assert never_run.exit_code == 1
    checks = {check["name"]: check for check in json.loads(never_run.stdout)["checks"]}
    assert checks["database"]["ok"] is True
    assert checks["migrations"]["ok"] is True
    assert checks["connector vault-main"]["ok"] is True
    assert checks["discovery vault-main"]["ok"] is False

    assert run(database_url, scope.config, "discover").exit_code == 0
    healthy = run(database_url, scope.config, "health")
    assert healthy.exit_code == 0, healthy.output
    assert healthy.stdout.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert "run 1 succeeded" in healthy.output


def test_health_fails_for_bad_credentials(
    database_url: str, openbao: OpenBao, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "steward.toml",
        {"vault-main": {"url": openbao.url, "token": "wrong-token"}},
    )
    result = run(database_url, config, "health", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    checks = {check["name"]: check for check in document["checks"]}
    assert "permission denied" in checks["connector vault-main"]["detail"]
    assert "wrong-token" not in result.output
