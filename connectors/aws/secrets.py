"""Secrets Manager secrets: listing per region, then turning them into identities.

Discovery calls ListSecrets only, so it reads metadata and tags and never a
secret value. Secrets scheduled for deletion are listed too: they still exist
until their recovery window ends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.aws.config import AwsOptions
from connectors.aws.errors import translated
from connectors.aws.tags import tag_map, tagged_fields
from connectors.base import AttributeValue, DiscoveredIdentity

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = logging.getLogger(__name__)

SECRET_KIND = "secretsmanager_secret"  # noqa: S105 (a kind name)


def fetch_secrets(
    client: SecretsManagerClient, *, connector: str, region: str
) -> list[Mapping[str, Any]]:
    """List every secret of one region, to the last page."""
    secrets: list[Mapping[str, Any]] = []
    paginator = client.get_paginator("list_secrets")
    with translated(connector, f"ListSecrets in {region}"):
        for page in paginator.paginate(IncludePlannedDeletion=True):
            secrets.extend(page.get("SecretList", []))
    logger.debug(
        "Secrets Manager of %s in %s: %s secrets", connector, region, len(secrets)
    )
    return secrets


def _day(value: datetime | None) -> datetime | None:
    # Secrets Manager truncates the last access date to midnight; keeping the
    # date only makes the value independent of time zones and of the SDK.
    if value is None:
        return None
    day = value.astimezone(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _summary(secret: Mapping[str, Any], region: str) -> str:
    parts = [f"Secrets Manager secret in {region}"]
    if secret.get("RotationEnabled"):
        days = secret.get("RotationRules", {}).get("AutomaticallyAfterDays")
        parts.append(f"rotated every {days} days" if days else "rotation on")
    else:
        parts.append("rotation off")
    if secret.get("OwningService"):
        parts.append(f"managed by {secret['OwningService']}")
    if secret.get("DeletedDate") is not None:
        parts.append(f"deletion scheduled ({_iso(secret['DeletedDate'])})")
    return "; ".join(parts)


def secret_identity(
    secret: Mapping[str, Any], options: AwsOptions, region: str
) -> DiscoveredIdentity:
    """Turn one ListSecrets entry into an identity."""
    arn = str(secret["ARN"])
    tags = tag_map(secret.get("Tags"))
    tagged = tagged_fields(tags, options.tags)
    last_accessed = _day(secret.get("LastAccessedDate"))
    rotation_days = secret.get("RotationRules", {}).get("AutomaticallyAfterDays")
    attributes: dict[str, AttributeValue] = {
        "account_id": arn.split(":")[4],
        "region": region,
        "rotation_enabled": bool(secret.get("RotationEnabled", False)),
        "rotation_days": int(rotation_days) if rotation_days else None,
        "last_rotated_at": _iso(secret.get("LastRotatedDate")),
        "deletion_scheduled": secret.get("DeletedDate") is not None,
        "deletion_date": _iso(secret.get("DeletedDate")),
        "owning_service": secret.get("OwningService"),
        "primary_region": secret.get("PrimaryRegion"),
    }
    if tagged.owner_tag is not None:
        attributes["owner_tag"] = tagged.owner_tag
    return DiscoveredIdentity(
        kind=SECRET_KIND,
        external_id=arn,
        name=str(secret["Name"]),
        description=str(secret.get("Description") or ""),
        owner_email=tagged.owner_email,
        scope_summary=_summary(secret, region),
        managed=True,
        created_at=secret.get("CreatedDate"),
        last_used_at=last_accessed,
        never_used=last_accessed is None,
        application=tagged.application,
        project=tagged.project,
        vendor=tagged.vendor,
        attributes=attributes,
    )


def secret_identities(
    secrets: list[Mapping[str, Any]], options: AwsOptions, region: str
) -> list[DiscoveredIdentity]:
    """Turn one region's secrets into identities, sorted by ARN."""
    identities = [secret_identity(secret, options, region) for secret in secrets]
    return sorted(identities, key=lambda identity: identity.external_id)
