"""The vault connector as the remediation worker's revoker."""

from __future__ import annotations

import random
from collections.abc import Iterator

import hvac
import pytest
import sqlalchemy as sa
from hvac import exceptions as hvac_errors

from connectors.vault.connector import VaultConnector, create
from governance.app import Steward
from governance.audit.service import Actor
from governance.discovery.service import Reconciler
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.service import queue_revocation
from governance.remediation.worker import RemediationWorker
from tests.openbao import OpenBao, unique

ADMIN = Actor.person("security@example.com")


@pytest.fixture
def connector(openbao: OpenBao) -> Iterator[VaultConnector]:
    started = create("vault-main", openbao.steward_login())
    yield started
    started.close()


def test_worker_revokes_in_openbao(
    app: Steward, openbao: OpenBao, connector: VaultConnector
) -> None:
    role = unique("billing")
    openbao.root.auth.approle.create_or_update_approle(role, token_policies=["default"])
    role_id = openbao.root.auth.approle.read_role_id(role)["data"]["role_id"]
    created = openbao.root.auth.approle.generate_secret_id(role)["data"]
    kv_path = unique("billing-db")
    openbao.root.secrets.kv.v2.create_or_update_secret(
        path=kv_path, secret={"password": "stored-copy"}, mount_point="secret"
    )
    records = list(connector.discover())
    Reconciler(app, "vault-main", method="test", actor=Actor.system("test")).run(
        lambda: records
    )

    with app.session() as session:
        by_external = {
            row.external_id: row
            for row in session.scalars(
                sa.select(Identity).where(Identity.source == "vault-main")
            )
        }
        secret_id = by_external[created["secret_id_accessor"]]
        [kv_entry] = [
            row for row in by_external.values() if row.external_id.endswith(kv_path)
        ]
        for identity in (secret_id, kv_entry):
            queue_revocation(
                session,
                identity,
                actor=ADMIN,
                action="test.revoke",
                reason="test",
                dedupe_key=f"test:{identity.id}",
            )
        ids = (secret_id.id, kv_entry.id)

    worker = RemediationWorker(
        app,
        {"vault-main": connector},
        worker_id="w1",
        rng=random.Random(3),  # noqa: S311
    )
    stats = worker.run_once()
    assert stats.outcomes == {"revoked": 1, "manual": 1}

    login = hvac.Client(url=openbao.url)
    with pytest.raises(hvac_errors.InvalidRequest):
        login.auth.approle.login(role_id, created["secret_id"], use_token=False)
    with app.sessions() as session:
        assert session.get_one(Identity, ids[0]).state is IdentityState.REVOKED
        kv_state = session.get_one(Identity, ids[1]).state
        assert kv_state is IdentityState.REVOCATION_PENDING
        manual = session.scalars(
            sa.select(Remediation).where(
                Remediation.identity_id == ids[1],
                Remediation.kind == RemediationKind.REVOKE,
            )
        ).one()
        assert manual.status is RemediationStatus.OPEN
        assert manual.outcome
    # A second pass finds nothing left to do.
    assert worker.run_once().taken == 0
