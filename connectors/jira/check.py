"""Checking that Steward can open and close tickets in the configured project.

The create metadata comes from `issue/createmeta/{project}/issuetypes` and
`.../issuetypes/{id}` (Jira Cloud, and Data Center 8.4 and later). When the
server returns 404 there, the check requests the older `issue/createmeta?
expand=projects.issuetypes.fields`, which Data Center 9 removed. Jira Cloud names
the page items `issueTypes` and `fields`, Data Center `values`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connectors.errors import ConnectorNotFoundError
from connectors.jira.client import STEWARD_FIELDS, JiraClient

PAGE_SIZE = 50
# Stops a server that never reports its last page from looping forever.
MAX_PAGES = 100


class Level(StrEnum):
    """Severity of one finding of the check."""

    OK = "ok"
    NOTE = "note"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    """One result line of the check."""

    level: Level
    message: str


@dataclass(frozen=True)
class CreateField:
    """A field of the create screen of one issue type."""

    field_id: str
    name: str
    required: bool
    has_default: bool


@dataclass
class CreateMetadata:
    """The server's create metadata for one project."""

    project_found: bool
    issue_types: dict[str, str] = field(default_factory=dict)
    fields: dict[str, list[CreateField]] = field(default_factory=dict)
    endpoint: str = ""


def _page_items(page: Any) -> list[Any]:
    if not isinstance(page, dict):
        return []
    for key in ("values", "issueTypes", "fields"):
        items = page.get(key)
        if isinstance(items, list):
            return items
    return []


def _read_pages(client: JiraClient, path: str, *, action: str) -> list[Any]:
    items: list[Any] = []
    for _ in range(MAX_PAGES):
        page = client.get_json(
            path, {"startAt": len(items), "maxResults": PAGE_SIZE}, action=action
        )
        batch = _page_items(page)
        items.extend(batch)
        total = page.get("total") if isinstance(page, dict) else None
        last = isinstance(page, dict) and bool(page.get("isLast"))
        if not batch or last or (isinstance(total, int) and len(items) >= total):
            break
    return items


def _create_field(field_id: str, document: Mapping[str, Any]) -> CreateField:
    return CreateField(
        field_id=field_id,
        name=str(document.get("name", field_id)),
        required=bool(document.get("required")),
        has_default=bool(document.get("hasDefaultValue")),
    )


def read_create_metadata(
    client: JiraClient, project: str, issue_type: str
) -> CreateMetadata:
    """Return the project's issue types and the fields of `issue_type`."""
    action = f"reading the create metadata of {project}"
    try:
        types = _read_pages(
            client, f"issue/createmeta/{project}/issuetypes", action=action
        )
    except ConnectorNotFoundError:
        return _read_legacy_metadata(client, project, action=action)
    metadata = CreateMetadata(
        project_found=True,
        issue_types={str(item["name"]): str(item["id"]) for item in types},
        endpoint="createmeta/{project}/issuetypes",
    )
    type_name = _find_name(metadata.issue_types, issue_type)
    if type_name is not None:
        type_id = metadata.issue_types[type_name]
        fields = _read_pages(
            client, f"issue/createmeta/{project}/issuetypes/{type_id}", action=action
        )
        metadata.fields[type_name] = [
            _create_field(str(item.get("fieldId") or item.get("key")), item)
            for item in fields
        ]
    return metadata


def _read_legacy_metadata(
    client: JiraClient, project: str, *, action: str
) -> CreateMetadata:
    try:
        document = client.get_json(
            "issue/createmeta",
            {"projectKeys": project, "expand": "projects.issuetypes.fields"},
            action=action,
        )
    except ConnectorNotFoundError:
        return CreateMetadata(project_found=False, endpoint="none")
    projects = document.get("projects") if isinstance(document, dict) else None
    matching = [
        item
        for item in projects or []
        if str(item.get("key", "")).upper() == project.upper()
    ]
    if not matching:
        return CreateMetadata(project_found=False, endpoint="createmeta")
    metadata = CreateMetadata(project_found=True, endpoint="createmeta")
    for item in matching[0].get("issuetypes") or []:
        name = str(item["name"])
        metadata.issue_types[name] = str(item["id"])
        fields = item.get("fields") or {}
        metadata.fields[name] = [
            _create_field(str(field_id), document)
            for field_id, document in fields.items()
        ]
    return metadata


def _find_name(names: Mapping[str, str], requested: str) -> str | None:
    for name in names:
        if name.casefold() == requested.casefold():
            return name
    return None


def check_fields(
    fields: list[CreateField], extra_fields: Mapping[str, Any], issue_type: str
) -> list[Finding]:
    """Return a problem for each field Steward needs or lacks on the create screen."""
    findings: list[Finding] = []
    on_screen = {item.field_id for item in fields}
    for needed in sorted(STEWARD_FIELDS - {"project", "issuetype"}):
        if needed not in on_screen:
            findings.append(
                Finding(
                    Level.PROBLEM,
                    f"field {needed} is not on the create screen of {issue_type}; "
                    "Steward sets it on every ticket",
                )
            )
    for item in fields:
        filled = item.field_id in STEWARD_FIELDS or item.field_id in extra_fields
        if item.required and not filled and not item.has_default:
            findings.append(
                Finding(
                    Level.PROBLEM,
                    f"required field {item.name} ({item.field_id}) of {issue_type} "
                    "has no default: set it in jira.extra_fields",
                )
            )
    for name in sorted(set(extra_fields) - on_screen):
        findings.append(
            Finding(
                Level.PROBLEM,
                f"jira.extra_fields names {name}, which is not on the create screen "
                f"of {issue_type}",
            )
        )
    if not findings:
        findings.append(
            Finding(
                Level.OK,
                f"every required field of {issue_type} is set by Steward, "
                "jira.extra_fields or a default",
            )
        )
    return findings


def check_transition(
    client: JiraClient,
    *,
    project: str,
    issue_type: str,
    transition: str,
) -> Finding:
    """Check the done transition on the newest issue of the type not yet done.

    Jira offers transitions per issue and status, so without such an issue
    the transition can only be checked when Steward first uses it.
    """
    jql = (
        f'project = "{project}" AND issuetype = "{issue_type}" '
        "AND statusCategory != Done ORDER BY created DESC"
    )
    keys = client.search(jql, action=f"searching {project} for an open issue", limit=1)
    if not keys:
        return Finding(
            Level.NOTE,
            f"transition {transition!r} not checked: {project} has no open "
            f"{issue_type} to read transitions from; Steward checks it at first use",
        )
    names = client.transition_names(keys[0])
    if any(name.casefold() == transition.casefold() for name in names):
        return Finding(Level.OK, f"transition {transition!r} is offered on {keys[0]}")
    return Finding(
        Level.PROBLEM,
        f"transition {transition!r} is not offered on {keys[0]}, which offers: "
        f"{', '.join(names) or 'none'}; set jira.done_transition",
    )


def check_configuration(
    client: JiraClient,
    *,
    project: str,
    issue_type: str,
    extra_fields: Mapping[str, Any],
    done_transition: str,
) -> list[Finding]:
    """Return the findings of every check, in the order they were made."""
    account = client.myself()
    account_name = (
        account.get("emailAddress") or account.get("displayName") or "unknown"
    )
    findings = [Finding(Level.OK, f"authenticated as {account_name}")]

    metadata = read_create_metadata(client, project, issue_type)
    if not metadata.project_found:
        findings.append(
            Finding(
                Level.PROBLEM,
                f"project {project} not found, or Steward's account may not create "
                "issues in it",
            )
        )
        return findings
    findings.append(Finding(Level.OK, f"project {project} exists"))

    type_name = _find_name(metadata.issue_types, issue_type)
    if type_name is None:
        offered = ", ".join(sorted(metadata.issue_types)) or "none"
        findings.append(
            Finding(
                Level.PROBLEM,
                f"issue type {issue_type!r} not found in {project}; it offers: "
                f"{offered}",
            )
        )
        return findings
    findings.append(Finding(Level.OK, f"issue type {type_name} exists in {project}"))
    findings.extend(
        check_fields(metadata.fields.get(type_name, []), extra_fields, type_name)
    )
    findings.append(
        check_transition(
            client, project=project, issue_type=type_name, transition=done_transition
        )
    )
    return findings
