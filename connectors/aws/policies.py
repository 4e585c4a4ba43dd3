"""Risk tier and scope summary of an IAM user from its policies.

Only Allow statements count. Resources and conditions are not evaluated, so
a statement limited to one resource still counts: the rule errs towards
privileged, which costs a shorter review cycle rather than a missed admin.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal
from urllib.parse import unquote

from connectors.aws.config import TierRules
from connectors.base import Tier

# Max findings named in a tier reason; the reason ends with the count of the
# rest.
MAX_REASONS = 5


@dataclass(frozen=True)
class AttachedPolicy:
    """One policy that applies to a user, directly or through a group.

    `document` is None when the policy's document could not be read; the
    policy then counts by its name only.
    """

    name: str
    kind: Literal["managed", "inline"]
    via: str
    arn: str | None = None
    document: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} policy {self.name} ({self.via})"


def parse_document(
    document: str | Mapping[str, Any] | None,
) -> Mapping[str, Any] | None:
    """Return a policy document as a mapping.

    botocore decodes the URL-encoded JSON of IAM policy documents into
    dictionaries; a string is decoded here for callers that bypass it.
    """
    if document is None or isinstance(document, Mapping):
        return document
    decoded = json.loads(unquote(document))
    return decoded if isinstance(decoded, dict) else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _allow_statements(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in statements:
        if isinstance(statement, Mapping) and statement.get("Effect") == "Allow":
            yield statement


def _is_read_only(action_name: str, rules: TierRules) -> bool:
    # A pattern is read-only when everything before its first wildcard starts
    # with a read-only prefix: "Get*" is, "*User" and "Put*" are not.
    literal = action_name.split("*", 1)[0].split("?", 1)[0].lower()
    return any(
        literal.startswith(prefix.lower()) for prefix in rules.read_only_prefixes
    )


def _sensitive_services(service_pattern: str, rules: TierRules) -> list[str]:
    return [
        service
        for service in rules.write_sensitive_services
        if fnmatchcase(service, service_pattern.lower())
    ]


def _action_findings(action: str, rules: TierRules) -> Iterator[str]:
    if action == "*":
        if rules.wildcard_actions:
            yield 'allows every action ("*")'
        elif rules.write_sensitive_services:
            yield 'allows every action ("*"), including writes'
        return
    service, _, name = action.partition(":")
    if name == "*" and rules.wildcard_actions:
        yield f"allows every {service} action ({action})"
        return
    for sensitive in _sensitive_services(service, rules):
        if not _is_read_only(name, rules):
            yield f"allows {sensitive} write action {action}"
            return


def _not_action_findings(excluded: list[str], rules: TierRules) -> Iterator[str]:
    listed = ", ".join(sorted(excluded))
    if rules.wildcard_actions:
        yield f"allows every action except {listed} (NotAction)"
        return
    lowered = {item.lower() for item in excluded}
    for service in rules.write_sensitive_services:
        if "*" not in lowered and f"{service}:*" not in lowered:
            yield f"allows {service} write actions through NotAction"
            return


def policy_findings(policy: AttachedPolicy, rules: TierRules) -> list[str]:
    """Return why `policy` makes its user privileged; empty when it does not."""
    findings: list[str] = []
    privileged_names = {name.lower() for name in rules.privileged_policies}
    if policy.kind == "managed" and policy.name.lower() in privileged_names:
        findings.append(f"{policy.label} is privileged by name")
    if policy.document is None:
        return findings
    for statement in _allow_statements(policy.document):
        if "NotAction" in statement:
            excluded = _as_list(statement["NotAction"])
            findings.extend(
                f"{policy.label} {text}"
                for text in _not_action_findings(excluded, rules)
            )
        for action in _as_list(statement.get("Action")):
            findings.extend(
                f"{policy.label} {text}" for text in _action_findings(action, rules)
            )
    return sorted(set(findings))


def assess(policies: Sequence[AttachedPolicy], rules: TierRules) -> tuple[Tier, str]:
    """Return the risk tier of a user with `policies`, and the reason."""
    findings = sorted(
        {text for policy in policies for text in policy_findings(policy, rules)}
    )
    if findings:
        named = "; ".join(findings[:MAX_REASONS])
        more = len(findings) - MAX_REASONS
        suffix = f"; and {more} more" if more > 0 else ""
        return "privileged", f"privileged: {named}{suffix}"
    unread = sorted(policy.name for policy in policies if policy.document is None)
    if unread:
        return "standard", (
            "standard: no privileged policy found, but the documents of "
            f"{', '.join(unread)} could not be read"
        )
    if not policies:
        return "standard", "standard: no policies attached"
    return "standard", "standard: no admin policy, wildcard action or sensitive write"


def scope_summary(policies: Iterable[AttachedPolicy]) -> str:
    """Summarise which policies apply, grouped by where they are attached."""
    groups: dict[str, list[str]] = {}
    for policy in policies:
        groups.setdefault(policy.via, []).append(f"{policy.name} ({policy.kind})")
    if not groups:
        return "no policies attached"
    parts = []
    for via in sorted(groups, key=lambda item: (item != "user", item)):
        parts.append(f"{via}: {', '.join(sorted(groups[via]))}")
    return "; ".join(parts)
