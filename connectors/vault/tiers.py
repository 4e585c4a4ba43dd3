"""Risk tiers from Vault ACL policies.

A policy is parsed into (path pattern, capabilities) rules, from HCL or JSON.
The parser reads `path "…" { capabilities = […] }` blocks and skips every
other attribute and block (allowed_parameters, required_parameters and so on),
which do not grant capabilities.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from connectors.base import Tier
from connectors.vault.config import TierRules

PathRule = tuple[str, frozenset[str]]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*|//[^\n]*|/\*.*?\*/)
    | (?P<heredoc><<-?(?P<tag>[A-Za-z_]+)\n.*?\n\s*(?P=tag))
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<punct>[{}\[\]=,:])
    | (?P<word>[^\s{}\[\]=,:"\#]+)
    """,
    re.VERBOSE | re.DOTALL,
)


class PolicyParseError(ValueError):
    """A policy text is neither valid HCL nor valid JSON."""


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise PolicyParseError(
                f"unexpected character {text[position]!r} at offset {position}"
            )
        position = match.end()
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "tag":
            kind = "heredoc"
        value = match.group(0)
        if kind == "string":
            value = json.loads(value)
        yield str(kind), value


class _HclReader:
    def __init__(self, text: str) -> None:
        self.tokens = list(_tokens(text))
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise PolicyParseError("unexpected end of policy")
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        kind, found = self.take()
        if found != value or kind not in {"punct"}:
            raise PolicyParseError(f"expected {value!r}, found {found!r}")

    def value(self) -> object:
        kind, lexeme = self.take()
        if lexeme == "[" and kind == "punct":
            items: list[object] = []
            while True:
                next_token = self.peek()
                if next_token == ("punct", "]"):
                    self.take()
                    return items
                items.append(self.value())
                if self.peek() == ("punct", ","):
                    self.take()
        if lexeme == "{" and kind == "punct":
            return self.body()
        return lexeme

    def body(self) -> dict[str, list[object]]:
        """Read `key = value` pairs and nested blocks up to the closing brace."""
        entries: dict[str, list[object]] = {}
        while True:
            token = self.peek()
            if token is None:
                raise PolicyParseError("missing closing brace")
            if token == ("punct", "}"):
                self.take()
                return entries
            entries.setdefault(self.take()[1], []).append(self.entry())

    def entry(self) -> object:
        labels: list[str] = []
        while True:
            kind, lexeme = self.take()
            if kind == "punct" and lexeme in {"=", ":"}:
                return self.value()
            if kind == "punct" and lexeme == "{":
                block = self.body()
                return (tuple(labels), block)
            labels.append(lexeme)

    def document(self) -> dict[str, list[object]]:
        entries: dict[str, list[object]] = {}
        while self.peek() is not None:
            entries.setdefault(self.take()[1], []).append(self.entry())
        return entries


def _strings(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(item.strip() for item in value.split(","))
    if isinstance(value, list):
        return frozenset(str(item) for item in value)
    return frozenset()


def parse_policy(text: str) -> list[PathRule]:
    """Return the (path pattern, capabilities) rules of an HCL or JSON policy."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except json.JSONDecodeError:
            document = None
        if isinstance(document, dict):
            paths = document.get("path") or {}
            json_rules: list[PathRule] = []
            for pattern, block in paths.items():
                listed = block.get("capabilities") if isinstance(block, dict) else []
                json_rules.append((str(pattern), _strings(listed)))
            return sorted(json_rules, key=lambda rule: rule[0])
    rules: list[PathRule] = []
    for entry in _HclReader(text).document().get("path", []):
        if not isinstance(entry, tuple) or len(entry[0]) != 1:
            raise PolicyParseError('expected path "PATTERN" { ... }')
        labels, block = entry
        capabilities: frozenset[str] = frozenset()
        for value in block.get("capabilities", []):
            capabilities |= _strings(value)
        rules.append((str(labels[0]), capabilities))
    return sorted(rules, key=lambda rule: rule[0])


def pattern_reaches(pattern: str, prefix: str) -> bool:
    """Return whether a Vault path pattern can match some path under `prefix`.

    Vault patterns end in an optional `*` (any suffix) and may contain `+`
    (exactly one path segment).
    """
    i = j = 0
    while i < len(pattern):
        if j >= len(prefix):
            return True
        character = pattern[i]
        if character == "*":
            return True
        if character == "+":
            while j < len(prefix) and prefix[j] != "/":
                j += 1
            i += 1
            continue
        if character != prefix[j]:
            return False
        i += 1
        j += 1
    return j >= len(prefix)


@dataclass(frozen=True)
class TierDecision:
    """A tier and the reason stored with it."""

    tier: Tier
    reason: str


def privileged_grant(rules: Iterable[PathRule], tier_rules: TierRules) -> str | None:
    """Return a description of the strongest privileged grant in `rules`, or None.

    A privileged capability on any path is reported before a write under a
    privileged path. A rule that denies grants nothing.
    """
    granting = [(pattern, caps) for pattern, caps in rules if "deny" not in caps]
    special = set(tier_rules.privileged_capabilities)
    for pattern, capabilities in granting:
        granted = sorted(capabilities & special)
        if granted:
            return f"grants {', '.join(granted)} on {pattern!r}"
    writes = set(tier_rules.write_capabilities)
    for pattern, capabilities in granting:
        written = sorted(capabilities & writes)
        if not written:
            continue
        for prefix in tier_rules.privileged_paths:
            if pattern_reaches(pattern, prefix):
                return f"grants {', '.join(written)} on {pattern!r} (under {prefix})"
    return None


def decide_tier(
    policies: Iterable[str],
    grants: dict[str, str | None],
    tier_rules: TierRules,
) -> TierDecision:
    """Return the tier of a credential from its policy names.

    `grants` maps each known policy to its privileged grant (see
    `privileged_grant`); a policy missing from it does not exist and grants
    nothing.
    """
    names = sorted(set(policies))
    for name in names:
        if name in tier_rules.privileged_policies:
            return TierDecision("privileged", f"policy {name!r} is privileged by name")
    for name in names:
        if name in tier_rules.ignored_policies:
            continue
        grant = grants.get(name)
        if grant:
            return TierDecision("privileged", f"policy {name!r} {grant}")
    shown = ", ".join(names) if names else "none"
    return TierDecision(
        "standard",
        f"policies ({shown}) grant no {'/'.join(tier_rules.privileged_capabilities)}"
        f" and no writes under {', '.join(tier_rules.privileged_paths)}",
    )
