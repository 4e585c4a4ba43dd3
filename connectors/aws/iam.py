"""IAM access keys: fetching from IAM, then turning them into identities.

Fetching costs one paginated GetAccountAuthorizationDetails (users with their
tags, groups and inline policies, groups, and customer managed policies with
their documents), GetPolicy and GetPolicyVersion once per attached AWS
managed policy, ListAccessKeys per user and GetAccessKeyLastUsed per key.
The per-user and per-key calls run on `lookup_workers` threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.aws.config import AwsOptions
from connectors.aws.errors import translated
from connectors.aws.policies import (
    AttachedPolicy,
    assess,
    parse_document,
    scope_summary,
)
from connectors.aws.tags import tag_map, tagged_fields
from connectors.base import AttributeValue, DiscoveredIdentity, Tier
from connectors.errors import ConnectorNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

logger = logging.getLogger(__name__)

ACCESS_KEY_KIND = "iam_access_key"
_NOT_AVAILABLE = "N/A"

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class IamUser:
    """An IAM user with the policies attached to it directly."""

    name: str
    arn: str
    tags: Mapping[str, str]
    groups: tuple[str, ...]
    policies: tuple[AttachedPolicy, ...]

    @property
    def account_id(self) -> str:
        return self.arn.split(":")[4]


@dataclass(frozen=True)
class AccessKey:
    """An access key's metadata; the secret is never fetched."""

    user_name: str
    key_id: str
    status: str
    created_at: datetime
    last_used_at: datetime | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None


@dataclass
class IamInventory:
    """Everything one account's IAM reports that discovery needs."""

    users: dict[str, IamUser] = field(default_factory=dict)
    group_policies: dict[str, tuple[AttachedPolicy, ...]] = field(default_factory=dict)
    keys: list[AccessKey] = field(default_factory=list)


def run_parallel(
    function: Callable[[Item], Result], items: Sequence[Item], workers: int
) -> list[Result]:
    """Apply `function` to every item on `workers` threads, keeping the order.

    The first exception is raised after the calls already running finish;
    calls not yet started are cancelled.
    """
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aws")
    try:
        return list(executor.map(function, items))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


class IamFetcher:
    """Reads one account's users, groups, policies and access keys."""

    def __init__(self, iam: IAMClient, *, connector: str, workers: int) -> None:
        self.iam = iam
        self.connector = connector
        self.workers = workers

    def fetch(self) -> IamInventory:
        inventory = IamInventory()
        users, groups, documents = self._authorization_details()
        attached = {
            policy.arn
            for policy in [*_all_policies(users), *_all_policies(groups)]
            if policy.kind == "managed" and policy.arn is not None
        }
        for arn in sorted(attached - documents.keys()):
            documents[arn] = self._managed_document(arn)
        for user in users:
            inventory.users[user["UserName"]] = _user(user, documents)
        for group in groups:
            inventory.group_policies[group["GroupName"]] = tuple(
                _policies(group, documents, via=f"group {group['GroupName']}")
            )
        names = sorted(inventory.users)
        key_lists = run_parallel(self._access_keys, names, self.workers)
        keys = [key for key_list in key_lists for key in key_list]
        used = run_parallel(self._last_used, keys, self.workers)
        inventory.keys = [key for key in used if key is not None]
        logger.debug(
            "IAM of %s: %s users, %s groups, %s access keys",
            self.connector,
            len(inventory.users),
            len(inventory.group_policies),
            len(inventory.keys),
        )
        return inventory

    def _authorization_details(
        self,
    ) -> tuple[list[Any], list[Any], dict[str, Mapping[str, Any] | None]]:
        users: list[Any] = []
        groups: list[Any] = []
        documents: dict[str, Mapping[str, Any] | None] = {}
        paginator = self.iam.get_paginator("get_account_authorization_details")
        with translated(self.connector, "GetAccountAuthorizationDetails"):
            for page in paginator.paginate(
                Filter=["User", "Group", "LocalManagedPolicy"]
            ):
                users.extend(page.get("UserDetailList", []))
                groups.extend(page.get("GroupDetailList", []))
                for policy in page.get("Policies", []):
                    documents[policy["Arn"]] = _default_document(policy)
        return users, groups, documents

    def _managed_document(self, arn: str) -> Mapping[str, Any] | None:
        try:
            with translated(self.connector, f"GetPolicy {arn}"):
                policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
            with translated(self.connector, f"GetPolicyVersion {arn}"):
                version = self.iam.get_policy_version(
                    PolicyArn=arn, VersionId=policy["DefaultVersionId"]
                )["PolicyVersion"]
        except ConnectorNotFoundError as error:
            logger.warning("policy document of %s not read: %s", arn, error)
            return None
        return parse_document(version.get("Document"))

    def _access_keys(self, user_name: str) -> list[AccessKey]:
        paginator = self.iam.get_paginator("list_access_keys")
        keys: list[AccessKey] = []
        try:
            with translated(self.connector, f"ListAccessKeys for user {user_name}"):
                for page in paginator.paginate(UserName=user_name):
                    for metadata in page["AccessKeyMetadata"]:
                        keys.append(
                            AccessKey(
                                user_name=user_name,
                                key_id=metadata["AccessKeyId"],
                                status=metadata["Status"],
                                created_at=metadata["CreateDate"],
                            )
                        )
        except ConnectorNotFoundError:
            # The user was deleted after the listing; its keys went with it.
            logger.info("user %s was deleted during discovery", user_name)
            return []
        return keys

    def _last_used(self, key: AccessKey) -> AccessKey | None:
        try:
            with translated(self.connector, f"GetAccessKeyLastUsed {key.key_id}"):
                response = self.iam.get_access_key_last_used(AccessKeyId=key.key_id)
        except ConnectorNotFoundError:
            logger.info("access key %s was deleted during discovery", key.key_id)
            return None
        last_used = response.get("AccessKeyLastUsed", {})
        service = last_used.get("ServiceName")
        region = last_used.get("Region")
        return AccessKey(
            user_name=key.user_name,
            key_id=key.key_id,
            status=key.status,
            created_at=key.created_at,
            last_used_at=last_used.get("LastUsedDate"),
            last_used_service=service if service != _NOT_AVAILABLE else None,
            last_used_region=region if region != _NOT_AVAILABLE else None,
        )


def _default_document(policy: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for version in policy.get("PolicyVersionList", []):
        if version.get("IsDefaultVersion"):
            return parse_document(version.get("Document"))
    return None


def _all_policies(details: Iterable[Mapping[str, Any]]) -> list[AttachedPolicy]:
    return [
        policy for detail in details for policy in _policies(detail, {}, via="user")
    ]


def _policies(
    detail: Mapping[str, Any],
    documents: Mapping[str, Mapping[str, Any] | None],
    *,
    via: str,
) -> list[AttachedPolicy]:
    policies = [
        AttachedPolicy(
            name=attached["PolicyName"],
            kind="managed",
            via=via,
            arn=attached["PolicyArn"],
            document=documents.get(attached["PolicyArn"]),
        )
        for attached in detail.get("AttachedManagedPolicies", [])
    ]
    inline = detail.get("UserPolicyList", detail.get("GroupPolicyList", []))
    policies.extend(
        AttachedPolicy(
            name=item["PolicyName"],
            kind="inline",
            via=via,
            document=parse_document(item.get("PolicyDocument")),
        )
        for item in inline
    )
    return sorted(policies, key=lambda policy: (policy.kind, policy.name))


def _user(
    detail: Mapping[str, Any], documents: Mapping[str, Mapping[str, Any] | None]
) -> IamUser:
    return IamUser(
        name=detail["UserName"],
        arn=detail["Arn"],
        tags=tag_map(detail.get("Tags")),
        groups=tuple(sorted(detail.get("GroupList", []))),
        policies=tuple(_policies(detail, documents, via="user")),
    )


def _effective_policies(user: IamUser, inventory: IamInventory) -> list[AttachedPolicy]:
    policies = list(user.policies)
    for group in user.groups:
        policies.extend(inventory.group_policies.get(group, ()))
    return policies


def access_key_identities(
    inventory: IamInventory, options: AwsOptions
) -> list[DiscoveredIdentity]:
    """Turn an account's access keys into identities, sorted by key id."""
    identities: list[DiscoveredIdentity] = []
    assessed: dict[str, tuple[Tier, str, str]] = {}
    for key in sorted(inventory.keys, key=lambda item: item.key_id):
        user = inventory.users[key.user_name]
        if user.name not in assessed:
            policies = _effective_policies(user, inventory)
            tier, reason = assess(policies, options.tiers)
            assessed[user.name] = (tier, reason, scope_summary(policies))
        tier, reason, summary = assessed[user.name]
        tagged = tagged_fields(user.tags, options.tags)
        attributes: dict[str, AttributeValue] = {
            "account_id": user.account_id,
            "user_name": user.name,
            "user_arn": user.arn,
            "status": key.status,
            "groups": list(user.groups),
            "last_used_service": key.last_used_service,
            "last_used_region": key.last_used_region,
        }
        if tagged.owner_tag is not None:
            attributes["owner_tag"] = tagged.owner_tag
        identities.append(
            DiscoveredIdentity(
                kind=ACCESS_KEY_KIND,
                external_id=key.key_id,
                name=f"{user.name}/{key.key_id}",
                description=(
                    f"IAM access key of user {user.name} in account {user.account_id}"
                ),
                owner_email=tagged.owner_email,
                tier=tier,
                tier_reason=reason,
                scope_summary=summary,
                managed=False,
                created_at=key.created_at,
                last_used_at=key.last_used_at,
                never_used=key.last_used_at is None,
                application=tagged.application,
                project=tagged.project,
                vendor=tagged.vendor,
                attributes=attributes,
            )
        )
    return identities
