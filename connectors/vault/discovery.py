"""Discovery of Vault/OpenBao identities, split into fetching and transforming.

`VaultFetcher` makes the HTTP calls and returns Vault's own documents; the
`*_identity` functions turn one document into a DiscoveredIdentity without
any I/O. The transform keeps no field that moves with time alone (a token's
remaining ttl, its renewal time, a secret-id's last update), and it sorts
every list, so an unchanged server yields identical records on every run.

What is read: token metadata through lookup-accessor, AppRole role settings,
secret-id metadata through secret-id-accessor/lookup, KV version 2 metadata
through <mount>/metadata, and KV version 1 paths through LIST. KV values
(<mount>/data and version 1 reads) are never requested, and token ids are
never requested or kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from connectors.base import AttributeValue, DiscoveredIdentity
from connectors.errors import (
    ConnectorNotFoundError,
    ConnectorPermissionError,
    ConnectorRequestError,
)
from connectors.vault.client import Document, VaultSession
from connectors.vault.config import VaultOptions
from connectors.vault.tiers import (
    PolicyParseError,
    TierDecision,
    decide_tier,
    parse_policy,
    privileged_grant,
)

logger = logging.getLogger(__name__)

KIND_TOKEN = "vault_token"  # noqa: S105 (a kind name, not a secret)
KIND_ROLE = "approle_role"
KIND_SECRET_ID = "approle_secret_id"  # noqa: S105 (a kind name)
KIND_KV2 = "kv2_secret"
KIND_KV1 = "kv1_secret"

# Metadata keys copied into DiscoveredIdentity's entity fields.
ENTITY_KEYS = ("application", "project", "vendor")

# Vault writes this for "no expiry" in secret-id and KV timestamps.
_ZERO_TIME = "0001-01-01T00:00:00Z"
_FRACTION = re.compile(r"\.(\d+)")

Item = TypeVar("Item")
Result = TypeVar("Result")


def parse_time(value: object) -> datetime | None:
    """Return an aware datetime from Vault's RFC 3339 text or Unix seconds.

    Vault's zero time and empty values mean "none" and return None.
    """
    if value is None or value in ("", _ZERO_TIME, 0):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).replace("Z", "+00:00")
    # Vault prints nanoseconds; datetime keeps at most microseconds.
    text = _FRACTION.sub(lambda match: "." + match.group(1)[:6].ljust(6, "0"), text)
    return datetime.fromisoformat(text).astimezone(UTC)


def _iso(value: object) -> str | None:
    moment = parse_time(value)
    return moment.isoformat() if moment is not None else None


def _owner(metadata: Mapping[str, Any]) -> str | None:
    owner = str(metadata.get("owner") or "").strip()
    return owner if "@" in owner else None


def _entities(metadata: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        key: (str(metadata[key]) if metadata.get(key) else None) for key in ENTITY_KEYS
    }


def _metadata_attributes(
    prefix: str, metadata: Mapping[str, Any] | None
) -> dict[str, AttributeValue]:
    return {
        f"{prefix}.{key}": str(value) for key, value in sorted((metadata or {}).items())
    }


def _sorted_strings(values: object) -> list[str]:
    if not values:
        return []
    if isinstance(values, str):
        return sorted(item.strip() for item in values.split(",") if item.strip())
    return sorted(str(item) for item in values)  # type: ignore[attr-defined]


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0


# Transforms: one Vault document in, one identity out


def token_identity(data: Document, tier: TierDecision) -> DiscoveredIdentity:
    """Return the identity of a token from its lookup-accessor document."""
    accessor = str(data["accessor"])
    metadata = data.get("meta") or {}
    policies = _sorted_strings(data.get("policies"))
    identity_policies = _sorted_strings(data.get("identity_policies"))
    creation_ttl = _int(data.get("creation_ttl"))
    explicit_max_ttl = _int(data.get("explicit_max_ttl"))
    period = _int(data.get("period"))
    renewable = bool(data.get("renewable"))
    created = parse_time(data.get("creation_time"))
    # A renewable token's expire_time moves with every renewal, so only a
    # fixed limit is reported: the explicit max TTL, or the TTL of a token
    # that cannot be renewed. A TTL of 0 means the token never expires.
    expires_at = None
    if created is not None and explicit_max_ttl > 0:
        expires_at = _iso(created.timestamp() + explicit_max_ttl)
    elif created is not None and not renewable and creation_ttl > 0:
        expires_at = _iso(created.timestamp() + creation_ttl)
    token_type = str(data.get("type") or "service")
    path = str(data.get("path") or "")
    display_name = str(data.get("display_name") or "token")
    attributes: dict[str, AttributeValue] = {
        "display_name": display_name,
        "type": token_type,
        "path": path,
        "policies": policies,
        "identity_policies": identity_policies,
        "orphan": bool(data.get("orphan")),
        "renewable": renewable,
        "ttl_seconds": creation_ttl,
        "explicit_max_ttl_seconds": explicit_max_ttl,
        "period_seconds": period,
        "never_expires": creation_ttl == 0 and explicit_max_ttl == 0,
        "expires_at": expires_at,
        "num_uses": _int(data.get("num_uses")),
        "entity_id": str(data.get("entity_id") or "") or None,
        **_metadata_attributes("meta", metadata),
    }
    return DiscoveredIdentity(
        kind=KIND_TOKEN,
        external_id=accessor,
        name=display_name,
        description=f"{token_type} token created through {path or 'unknown path'}",
        owner_email=_owner(metadata),
        tier=tier.tier,
        tier_reason=tier.reason,
        scope_summary="policies: " + ", ".join(sorted({*policies, *identity_policies})),
        created_at=created,
        attributes=attributes,
        **_entities(metadata),
    )


def role_policies(role: Document) -> list[str]:
    """Return the policies a role's tokens receive, including `default`."""
    policies = set(_sorted_strings(role.get("token_policies")))
    policies |= set(_sorted_strings(role.get("policies")))
    if not role.get("token_no_default_policy"):
        policies.add("default")
    return sorted(policies)


def role_identity(
    mount: str, name: str, role: Document, tier: TierDecision
) -> DiscoveredIdentity:
    """Return the identity of an AppRole role from its settings."""
    policies = role_policies(role)
    bind_secret_id = bool(role.get("bind_secret_id", True))
    attributes: dict[str, AttributeValue] = {
        "mount": mount,
        "role": name,
        "policies": policies,
        "bind_secret_id": bind_secret_id,
        "secret_id_bound_cidrs": _sorted_strings(role.get("secret_id_bound_cidrs")),
        "token_bound_cidrs": _sorted_strings(role.get("token_bound_cidrs")),
        "secret_id_num_uses": _int(role.get("secret_id_num_uses")),
        "secret_id_ttl_seconds": _int(role.get("secret_id_ttl")),
        "token_ttl_seconds": _int(role.get("token_ttl")),
        "token_max_ttl_seconds": _int(role.get("token_max_ttl")),
        "token_period_seconds": _int(role.get("token_period")),
        "token_type": str(role.get("token_type") or "default"),
    }
    login = "secret-id" if bind_secret_id else "role-id only (no secret-id)"
    return DiscoveredIdentity(
        kind=KIND_ROLE,
        external_id=f"auth/{mount}/role/{name}",
        name=name,
        description=f"AppRole role at auth/{mount}; login needs {login}",
        tier=tier.tier,
        tier_reason=tier.reason,
        scope_summary="policies: " + ", ".join(policies),
        attributes=attributes,
    )


def secret_id_identity(
    mount: str, role_name: str, role: Document, data: Document, tier: TierDecision
) -> DiscoveredIdentity:
    """Return the identity of a secret-id from its secret-id-accessor lookup."""
    accessor = str(data["secret_id_accessor"])
    metadata = data.get("metadata") or {}
    ttl = _int(data.get("secret_id_ttl"))
    policies = role_policies(role)
    attributes: dict[str, AttributeValue] = {
        "mount": mount,
        "role": role_name,
        "policies": policies,
        "num_uses": _int(data.get("secret_id_num_uses")),
        "ttl_seconds": ttl,
        # A TTL of 0 means the secret-id never expires.
        "never_expires": ttl == 0,
        "expires_at": _iso(data.get("expiration_time")),
        "cidr_list": _sorted_strings(data.get("cidr_list")),
        "token_bound_cidrs": _sorted_strings(data.get("token_bound_cidrs")),
        **_metadata_attributes("metadata", metadata),
    }
    return DiscoveredIdentity(
        kind=KIND_SECRET_ID,
        external_id=accessor,
        name=f"{role_name} secret-id {accessor[:8]}",
        description=f"secret-id of AppRole role {role_name!r} at auth/{mount}",
        owner_email=_owner(metadata),
        tier=tier.tier,
        tier_reason=tier.reason,
        scope_summary="policies: " + ", ".join(policies),
        created_at=parse_time(data.get("creation_time")),
        attributes=attributes,
        **_entities(metadata),
    )


def kv2_identity(mount: str, path: str, metadata: Document) -> DiscoveredIdentity:
    """Return the identity of a KV version 2 entry from its metadata."""
    custom = metadata.get("custom_metadata") or {}
    versions = metadata.get("versions") or {}
    current = _int(metadata.get("current_version"))
    current_entry = versions.get(str(current)) or {}
    attributes: dict[str, AttributeValue] = {
        "mount": mount,
        "path": path,
        "kv_version": 2,
        "current_version": current,
        "oldest_version": _int(metadata.get("oldest_version")),
        "version_count": len(versions),
        "max_versions": _int(metadata.get("max_versions")),
        "delete_version_after": str(metadata.get("delete_version_after") or "0s"),
        "updated_at": _iso(metadata.get("updated_time")),
        "current_version_deleted": bool(parse_time(current_entry.get("deletion_time"))),
        "current_version_destroyed": bool(current_entry.get("destroyed")),
        **_metadata_attributes("custom_metadata", custom),
    }
    return DiscoveredIdentity(
        kind=KIND_KV2,
        external_id=f"{mount}/{path}",
        name=f"{mount}/{path}",
        description=f"KV version 2 entry {path!r} in mount {mount!r}",
        owner_email=_owner(custom),
        scope_summary="stored secret (copy)",
        created_at=parse_time(metadata.get("created_time")),
        attributes=attributes,
        **_entities(custom),
    )


def kv1_identity(mount: str, path: str) -> DiscoveredIdentity:
    """Return the identity of a KV version 1 entry, known by its path only."""
    return DiscoveredIdentity(
        kind=KIND_KV1,
        external_id=f"{mount}/{path}",
        name=f"{mount}/{path}",
        description=f"KV version 1 entry {path!r} in mount {mount!r}",
        scope_summary="stored secret (copy)",
        attributes={"mount": mount, "path": path, "kv_version": 1},
    )


# Fetching


def _with_policy_hint(
    error: ConnectorPermissionError, path: str, option: str
) -> ConnectorPermissionError:
    return ConnectorPermissionError(
        f"{error}; Steward's policy must allow list on {path} (see "
        f"deploy/vault/steward-policy.hcl), or the {option} option must leave "
        "this mount out",
        connector=error.connector,
    )


@dataclass(frozen=True)
class KvMount:
    """A KV secrets engine mount and its version."""

    path: str
    version: int


class VaultFetcher:
    """Reads metadata from one server for one discovery run."""

    def __init__(self, session: VaultSession, options: VaultOptions) -> None:
        self.session = session
        self.options = options
        self._grants: dict[str, str | None] = {}
        self._missing_policies: set[str] = set()
        self.skipped = 0

    def parallel(
        self, function: Callable[[Item], Result], items: Iterable[Item]
    ) -> Iterator[Result]:
        """Apply `function` to `items` on the lookup workers, keeping their order."""
        workers = self.options.lookup_workers
        if workers == 1:
            yield from map(function, items)
            return
        with ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="vault-lookup"
        ) as pool:
            yield from pool.map(function, items)

    # Mounts

    def approle_mounts(self) -> list[str]:
        if self.options.approle_mounts is not None:
            return self.options.approle_mounts
        mounts = self.session.read("sys/auth", action="list auth mounts")
        return sorted(
            path.strip("/")
            for path, mount in mounts.items()
            if isinstance(mount, dict) and mount.get("type") == "approle"
        )

    def kv_mounts(self) -> list[KvMount]:
        mounts = self.session.read("sys/mounts", action="list secrets engine mounts")
        found = {}
        for path, mount in mounts.items():
            if not isinstance(mount, dict) or mount.get("type") not in {
                "kv",
                "generic",
            }:
                continue
            options = mount.get("options") or {}
            version = 2 if str(options.get("version") or "1") == "2" else 1
            found[path.strip("/")] = KvMount(path.strip("/"), version)
        if self.options.kv_mounts is None:
            return [found[name] for name in sorted(found)]
        missing = sorted(set(self.options.kv_mounts) - set(found))
        if missing:
            raise ConnectorNotFoundError(
                f"configured kv_mounts not found on the server: {', '.join(missing)}",
                connector=self.session.name,
            )
        return [found[name] for name in self.options.kv_mounts]

    # Policies and tiers

    def _grant(self, name: str) -> str | None:
        if name in self._grants:
            return self._grants[name]
        try:
            data = self.session.read(
                f"sys/policies/acl/{name}", action=f"read policy {name!r}"
            )
        except ConnectorNotFoundError:
            # A policy that does not exist grants nothing.
            self._grants[name] = None
            self._missing_policies.add(name)
            return None
        try:
            grant = privileged_grant(
                parse_policy(str(data.get("policy") or "")), self.options.tiers
            )
        except PolicyParseError as error:
            # An unreadable policy is treated as privileged so that it is
            # reviewed more often rather than less.
            grant = f"could not be parsed ({error}); treated as privileged"
            logger.warning("vault policy %s could not be parsed: %s", name, error)
        self._grants[name] = grant
        return grant

    def tier(self, policies: Iterable[str]) -> TierDecision:
        names = sorted(set(policies))
        rules = self.options.tiers
        grants = {
            name: self._grant(name)
            for name in names
            if name not in rules.privileged_policies
            and name not in rules.ignored_policies
        }
        return decide_tier(names, grants, rules)

    # Tokens

    def token_accessors(self) -> list[str]:
        return sorted(
            self.session.list_keys(
                "auth/token/accessors", action="list token accessors"
            )
        )

    def lookup_token(self, accessor: str) -> Document | None:
        try:
            data = self.session.read_post(
                "auth/token/lookup-accessor",
                {"accessor": accessor},
                action="look up token accessor",
            )
        except (ConnectorNotFoundError, ConnectorRequestError):
            # Vault returns 400 "invalid accessor" for a token revoked since
            # the listing; it is no longer part of the snapshot.
            self.skipped += 1
            logger.debug("token accessor %s vanished during discovery", accessor)
            return None
        return data

    # AppRole

    def roles(self, mount: str) -> list[str]:
        try:
            keys = self.session.list_keys(
                f"auth/{mount}/role", action=f"list AppRole roles at auth/{mount}"
            )
        except ConnectorPermissionError as error:
            hint = _with_policy_hint(error, f"auth/{mount}/role", "approle_mounts")
            raise hint from error
        return sorted(keys)

    def role(self, mount: str, name: str) -> Document | None:
        try:
            return self.session.read(
                f"auth/{mount}/role/{name}", action=f"read AppRole role {name!r}"
            )
        except ConnectorNotFoundError:
            self.skipped += 1
            return None

    def secret_id_accessors(self, mount: str, role: str) -> list[str]:
        try:
            keys = self.session.list_keys(
                f"auth/{mount}/role/{role}/secret-id",
                action=f"list secret-ids of AppRole role {role!r}",
            )
        except ConnectorRequestError:
            # Vault returns 400 when the role was deleted since the listing.
            self.skipped += 1
            return []
        return sorted(keys)

    def lookup_secret_id(self, mount: str, role: str, accessor: str) -> Document | None:
        try:
            return self.session.read_post(
                f"auth/{mount}/role/{role}/secret-id-accessor/lookup",
                {"secret_id_accessor": accessor},
                action="look up secret-id accessor",
            )
        except (ConnectorNotFoundError, ConnectorRequestError):
            self.skipped += 1
            logger.debug("secret-id accessor %s vanished during discovery", accessor)
            return None

    # KV

    def kv_paths(self, mount: KvMount) -> list[str]:
        """Return every entry path of a KV mount, walking folders depth first."""
        base = f"{mount.path}/metadata" if mount.version == 2 else mount.path
        paths: list[str] = []
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                keys = self.session.list_keys(
                    f"{base}/{folder}", action=f"list KV entries in {mount.path!r}"
                )
            except ConnectorPermissionError as error:
                raise _with_policy_hint(error, f"{base}/*", "kv_mounts") from error
            for key in keys:
                if key.endswith("/"):
                    folders.append(folder + key)
                else:
                    paths.append(folder + key)
        return sorted(paths)

    def kv2_metadata(self, mount: str, path: str) -> Document | None:
        try:
            return self.session.read(
                f"{mount}/metadata/{path}", action="read KV metadata"
            )
        except ConnectorNotFoundError:
            self.skipped += 1
            return None


def discover(
    session: VaultSession, options: VaultOptions
) -> Iterator[DiscoveredIdentity]:
    """Yield every identity of the server, ordered by kind, mount and name."""
    fetcher = VaultFetcher(session, options)
    if options.discover_tokens:
        yield from _discover_tokens(fetcher)
    if options.discover_approle:
        for mount in fetcher.approle_mounts():
            yield from _discover_approle(fetcher, mount)
    if options.discover_kv:
        for kv_mount in fetcher.kv_mounts():
            yield from _discover_kv(fetcher, kv_mount)
    logger.info(
        "vault connector %s discovery finished; %s objects vanished while listing",
        session.name,
        fetcher.skipped,
    )


def _discover_tokens(fetcher: VaultFetcher) -> Iterator[DiscoveredIdentity]:
    accessors = fetcher.token_accessors()
    own = fetcher.session.accessor
    if own is not None and fetcher.options.auth_method != "token":
        # The login token of this run is revoked when the run ends.
        accessors = [accessor for accessor in accessors if accessor != own]
    for data in fetcher.parallel(fetcher.lookup_token, accessors):
        if data is None:
            continue
        policies = [
            *_sorted_strings(data.get("policies")),
            *_sorted_strings(data.get("identity_policies")),
        ]
        yield token_identity(data, fetcher.tier(policies))


def _discover_approle(
    fetcher: VaultFetcher, mount: str
) -> Iterator[DiscoveredIdentity]:
    for name in fetcher.roles(mount):
        role = fetcher.role(mount, name)
        if role is None:
            continue
        tier = fetcher.tier(role_policies(role))
        yield role_identity(mount, name, role, tier)
        accessors = fetcher.secret_id_accessors(mount, name)

        def lookup(accessor: str, role_name: str = name) -> Document | None:
            return fetcher.lookup_secret_id(mount, role_name, accessor)

        for data in fetcher.parallel(lookup, accessors):
            if data is not None:
                yield secret_id_identity(mount, name, role, data, tier)


def _discover_kv(fetcher: VaultFetcher, mount: KvMount) -> Iterator[DiscoveredIdentity]:
    paths = fetcher.kv_paths(mount)
    if mount.version == 1:
        for path in paths:
            yield kv1_identity(mount.path, path)
        return

    def read(path: str) -> tuple[str, Document | None]:
        return path, fetcher.kv2_metadata(mount.path, path)

    for path, metadata in fetcher.parallel(read, paths):
        if metadata is not None:
            yield kv2_identity(mount.path, path, metadata)
