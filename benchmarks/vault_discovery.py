"""Benchmark: Vault/OpenBao discovery against the bare hvac calls it makes.

Starts an OpenBao dev server on a free loopback port, seeds AppRole
secret-ids and tokens with a thread pool, then times two things on the same
server in the same run, each with the same token policy and worker count:

* baseline: the hvac LIST and look-up calls discovery needs, results dropped;
* steward: VaultConnector.discover(), materialised into a list.

Run from the repository root:

    .venv/bin/python benchmarks/vault_discovery.py --secret-ids 10000 --tokens 10000

It prints identities per second for both and Steward's overhead in percent.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hvac

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from connectors.vault.connector import create  # noqa: E402
from tests.openbao import OpenBao, start_openbao, steward_policy  # noqa: E402

ROLES = 10
SEED_WORKERS = 16


def _thread_client(server: OpenBao, token: str) -> Callable[[], hvac.Client]:
    local = threading.local()

    def client() -> hvac.Client:
        found: hvac.Client | None = getattr(local, "client", None)
        if found is None:
            found = hvac.Client(url=server.url, token=token)
            local.client = found
        return found

    return client


def _run_parallel(
    workers: int, function: Callable[[Any], Any], items: Iterable[Any]
) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(function, items):
            pass


def seed(server: OpenBao, secret_ids: int, tokens: int) -> None:
    """Create `secret_ids` secret-ids over ROLES roles and `tokens` tokens."""
    client = _thread_client(server, server.root_token)
    roles = [f"bench-{index}" for index in range(ROLES)]
    for role in roles:
        server.root.auth.approle.create_or_update_approle(
            role, token_policies=["default"]
        )

    def make_secret_id(index: int) -> None:
        client().adapter.post(
            f"/v1/auth/approle/role/{roles[index % ROLES]}/secret-id",
            json={"metadata": f'{{"owner": "owner{index % 50}@example.com"}}'},
        )

    def make_token(index: int) -> None:
        client().adapter.post(
            "/v1/auth/token/create",
            json={
                "policies": ["default"],
                "meta": {"owner": f"owner{index % 50}@example.com"},
                "ttl": "4h",
            },
        )

    started = time.monotonic()
    _run_parallel(SEED_WORKERS, make_secret_id, range(secret_ids))
    _run_parallel(SEED_WORKERS, make_token, range(tokens))
    print(
        f"seeded {secret_ids} secret-ids and {tokens} tokens "
        f"in {time.monotonic() - started:.1f}s"
    )


def baseline(server: OpenBao, token: str, workers: int) -> int:
    """Make discovery's hvac calls with nothing else; return the look-ups made."""
    client = _thread_client(server, token)
    main = client()
    count = 0
    accessors = main.adapter.list("/v1/auth/token/accessors")["data"]["keys"]

    def lookup_token(accessor: str) -> None:
        client().adapter.post(
            "/v1/auth/token/lookup-accessor", json={"accessor": accessor}
        )

    _run_parallel(workers, lookup_token, accessors)
    count += len(accessors)
    roles = main.adapter.list("/v1/auth/approle/role")["data"]["keys"]
    for role in roles:
        main.adapter.get(f"/v1/auth/approle/role/{role}")
        count += 1
        try:
            keys = main.adapter.list(f"/v1/auth/approle/role/{role}/secret-id")
        except hvac.exceptions.InvalidPath:
            continue
        secret_accessors = keys["data"]["keys"]

        def lookup_secret_id(accessor: str, role: str = role) -> None:
            client().adapter.post(
                f"/v1/auth/approle/role/{role}/secret-id-accessor/lookup",
                json={"secret_id_accessor": accessor},
            )

        _run_parallel(workers, lookup_secret_id, secret_accessors)
        count += len(secret_accessors)
    return count


def steward(server: OpenBao, token: str, workers: int) -> int:
    """Run Steward's discovery; return the identities it reported."""
    connector = create(
        "bench",
        {
            "url": server.url,
            "token": token,
            "lookup_workers": workers,
            "approle_mounts": ["approle"],
            "discover_kv": False,
        },
    )
    try:
        return len(list(connector.discover()))
    finally:
        connector.close()


def timed(function: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = function()
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret-ids", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4, help="look-up threads")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds")
    arguments = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as directory,
        start_openbao(Path(directory)) as server,
    ):
        server.enable_approle("approle")
        server.root.sys.create_or_update_acl_policy("steward", steward_policy())
        token = server.root.auth.token.create(policies=["steward"], ttl="24h")["auth"][
            "client_token"
        ]
        seed(server, arguments.secret_ids, arguments.tokens)
        best_base = best_steward = float("inf")
        base_count = steward_count = 0
        for round_number in range(1, arguments.repeat + 1):
            base_time, base_count = timed(
                lambda: baseline(server, token, arguments.workers)
            )
            steward_time, steward_count = timed(
                lambda: steward(server, token, arguments.workers)
            )
            print(
                f"round {round_number}: hvac calls {base_time:.2f}s, "
                f"steward {steward_time:.2f}s"
            )
            best_base = min(best_base, base_time)
            best_steward = min(best_steward, steward_time)
        print(f"cpus: {os.cpu_count()}, look-up workers: {arguments.workers}")
        print(
            f"hvac calls alone: {base_count} look-ups in {best_base:.2f}s = "
            f"{base_count / best_base:.0f} per second"
        )
        print(
            f"steward discovery: {steward_count} identities in {best_steward:.2f}s = "
            f"{steward_count / best_steward:.0f} per second"
        )
        print(f"steward overhead: {(best_steward / best_base - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
