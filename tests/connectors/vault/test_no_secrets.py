"""No secret value or token id reaches the database, the audit export or logs.

The test seeds every kind of credential with a marker string in its secret
value and runs discovery and revocation with DEBUG logging captured. Then it
searches every table, the audit export and the log records for the marker and
for each token id, secret-id and role id it created.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import IdentityRef, RevocationOutcome
from connectors.vault.connector import create
from governance.app import create_app
from governance.audit.export import iter_events, write_export
from governance.audit.service import Actor
from governance.discovery.models import RunStatus
from governance.discovery.runner import discover_sources
from governance.identity.models import Identity
from governance.models import Base
from governance.settings import Settings
from tests.factories import make_person
from tests.openbao import OpenBao, token_of, unique

MARKER = "MARKER-9f3c1d7e-do-not-store"


def seed(openbao: OpenBao) -> dict[str, Any]:
    """Create one of each credential kind; return what Steward must not keep."""
    root = openbao.root
    role = unique("marker-app")
    root.auth.approle.create_or_update_approle(role, token_policies=["default"])
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret = root.auth.approle.generate_secret_id(
        role, metadata={"owner": "owner@example.com", "note": "rotates monthly"}
    )["data"]
    token, accessor = token_of(
        root.auth.token.create(
            policies=["default"], meta={"owner": "owner@example.com"}, ttl="1h"
        )
    )
    login = root.auth.approle.login(role_id, secret["secret_id"], use_token=False)
    login_token = login["auth"]["client_token"]
    folder = unique("marker")
    root.secrets.kv.v2.create_or_update_secret(
        f"{folder}/v2", secret={"password": MARKER}
    )
    root.secrets.kv.v2.update_metadata(
        f"{folder}/v2", custom_metadata={"owner": "owner@example.com"}
    )
    root.secrets.kv.v1.create_or_update_secret(
        f"{folder}/v1", secret={"password": MARKER}, mount_point="kv"
    )
    return {
        "role": role,
        "accessor": accessor,
        "secret_id_accessor": secret["secret_id_accessor"],
        "folder": folder,
        "forbidden": {
            "marker": MARKER,
            "token": token,
            "login token": login_token,
            "root token": openbao.root_token,
            "secret-id": secret["secret_id"],
            "role id": role_id,
        },
    }


def dump_database(url: str) -> str:
    engine = sa.create_engine(url)
    parts = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                parts.append(f"{table.name}: {tuple(row)!r}")
    engine.dispose()
    return "\n".join(parts)


def test_no_secret_stored_or_logged(
    database_url: str, openbao: OpenBao, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seeded = seed(openbao)
    options = openbao.steward_login()
    settings = Settings(
        database_url=database_url,
        connectors={"vault-main": {"type": "vault", **options}},  # type: ignore[dict-item]
    )
    app = create_app(settings)
    try:
        with app.session() as session:
            make_person(session, "owner@example.com")
        outcomes = discover_sources(app, actor=Actor.system("test"))
        assert [outcome.status for outcome in outcomes] == [RunStatus.SUCCEEDED]

        with app.session() as session:
            found = {
                identity.external_id: (identity.kind, identity.owner_id)
                for identity in session.scalars(sa.select(Identity))
            }
        assert found[seeded["accessor"]][1] is not None
        assert found[seeded["secret_id_accessor"]][0] == "approle_secret_id"
        assert f"secret/{seeded['folder']}/v2" in found
        assert f"kv/{seeded['folder']}/v1" in found

        connector = create("vault-main", options)
        try:
            revoked = [
                connector.revoke(
                    IdentityRef("vault-main", "vault_token", seeded["accessor"])
                ),
                connector.revoke(
                    IdentityRef(
                        "vault-main",
                        "approle_secret_id",
                        seeded["secret_id_accessor"],
                        {"mount": "approle", "role": seeded["role"]},
                    )
                ),
            ]
        finally:
            connector.close()
        assert [result.outcome for result in revoked] == [RevocationOutcome.REVOKED] * 2
        # The shared server holds few identities, so two revocations can
        # exceed the guard's share; the guard is tested elsewhere.
        rerun = discover_sources(app, actor=Actor.system("test"), confirm=True)
        assert rerun[0].status is RunStatus.SUCCEEDED

        export = io.StringIO()
        with app.session() as session:
            write_export(iter_events(session), export, "jsonl")
    finally:
        app.close()

    database = dump_database(database_url)
    logs = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    assert seeded["accessor"] in database
    assert "identity.gone" in export.getvalue()
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    for label, value in seeded["forbidden"].items():
        assert value not in database, f"{label} stored in the database"
        assert value not in export.getvalue(), f"{label} in the audit export"
        assert value not in logs, f"{label} in the logs"
        assert value not in caplog.text, f"{label} in the formatted logs"
