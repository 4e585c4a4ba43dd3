"""Benchmark AWS access key discovery on moto against the raw boto3 calls.

Creates an in-process moto account with `--keys` access keys (two per IAM
user), then times, in the same run:

- raw: the boto3 calls discovery makes (GetAccountAuthorizationDetails,
  ListAccessKeys per user, GetAccessKeyLastUsed per key), one after another
  and without building identities;
- connector: `AwsConnector.snapshot()` with each `--workers` value.

Run from the repository root:

    .venv/bin/python benchmarks/aws_discovery.py --keys 10000 --workers 1,4

Every request stays in the process: moto intercepts it before it is sent,
and the credentials are fake. The numbers measure Steward and botocore
overhead plus moto's own cost per call, not AWS latency or AWS rate limits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "benchmark",
        "AWS_SECRET_ACCESS_KEY": "benchmark",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }
)
for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(name, None)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from connectors.aws.connector import create  # noqa: E402

KEYS_PER_USER = 2


def populate(keys: int) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    for number in range(keys // KEYS_PER_USER):
        name = f"service-{number:05}"
        iam.create_user(
            UserName=name, Tags=[{"Key": "Owner", "Value": "team@example.com"}]
        )
        for _ in range(KEYS_PER_USER):
            iam.create_access_key(UserName=name)


def raw_calls() -> int:
    iam = boto3.client("iam", region_name="us-east-1")
    users: list[str] = []
    details = iam.get_paginator("get_account_authorization_details")
    for page in details.paginate(Filter=["User", "Group", "LocalManagedPolicy"]):
        users.extend(user["UserName"] for user in page["UserDetailList"])
    key_ids: list[str] = []
    listing = iam.get_paginator("list_access_keys")
    for user in users:
        for page in listing.paginate(UserName=user):
            key_ids.extend(key["AccessKeyId"] for key in page["AccessKeyMetadata"])
    for key_id in key_ids:
        iam.get_access_key_last_used(AccessKeyId=key_id)
    return len(key_ids)


def connector_run(workers: int) -> int:
    connector = create(
        "benchmark",
        {
            "regions": ["us-east-1"],
            "discover_secrets": False,
            "lookup_workers": workers,
        },
    )
    try:
        return len(connector.snapshot())
    finally:
        connector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000, help="access keys")
    parser.add_argument(
        "--workers", default="1,4", help="comma-separated lookup_workers values"
    )
    arguments = parser.parse_args()
    worker_counts = [int(item) for item in arguments.workers.split(",")]

    with mock_aws():
        started = time.perf_counter()
        populate(arguments.keys)
        print(f"setup: {arguments.keys} keys in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        count = raw_calls()
        elapsed = time.perf_counter() - started
        print(
            f"raw boto3 calls: {count} keys in {elapsed:.1f} s, {count / elapsed:.0f}/s"
        )

        for workers in worker_counts:
            started = time.perf_counter()
            count = connector_run(workers)
            elapsed = time.perf_counter() - started
            print(
                f"connector, {workers} workers: {count} identities in "
                f"{elapsed:.1f} s, {count / elapsed:.0f}/s"
            )


if __name__ == "__main__":
    main()
