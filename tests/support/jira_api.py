"""A loopback stand-in of the Jira REST API (version 2), for the real `jira` client.

It serves what Steward's client calls: serverInfo, myself, field, the create
metadata (per project and issue type, and the older `issue/createmeta`),
issue create and get, JQL search (`/search`, and `/search/jql` as Jira Cloud
does), comments and transitions. Every request is recorded as a `Call`.

Faults are scripted with `fail(...)`. The next request matching a method
and a path gets a response with a given status (400 with field errors, 429
with Retry-After, 5xx). Or it is carried out and then responded to late
(`delay`, which makes a client with a short timeout give up) or not at all
(`drop`, which closes the connection), so the client cannot tell whether it
took effect.

Issues move through "To Do", "In Progress" and "Done", and `set_status`
plays a person moving one. The server listens on 127.0.0.1 on a free port.
Use it as a context manager so that it stops.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

API = "/rest/api/2"
DONE = "Done"
STATUSES = ("To Do", "In Progress", DONE)
# Maximum time a delayed response is held before the stand-in stops sending it.
MAX_HOLD_SECONDS = 10.0

# Credentials the stand-in accepts by default (test values only).
USER = "steward@example.com"
API_TOKEN = "jira-api-token-1"

FaultKind = Literal["respond", "delay", "drop"]


@dataclass(frozen=True)
class Call:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    raw_body: str
    authorization: str | None
    fault: str | None = None


@dataclass
class Fault:
    """A scripted response to the next request matching `method` and `path`.

    `path` is a regular expression matched against the whole path. With kind
    `respond` the request is not carried out, but with `delay` and `drop` it is.
    """

    method: str
    path: str
    kind: FaultKind = "respond"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldMeta:
    """A field of an issue type's create screen."""

    field_id: str
    name: str
    required: bool = False
    has_default: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "fieldId": self.field_id,
            "key": self.field_id,
            "name": self.name,
            "required": self.required,
            "hasDefaultValue": self.has_default,
            "operations": ["set"],
            "schema": {"type": "string"},
        }


def default_fields(*extra: FieldMeta) -> list[FieldMeta]:
    """Return the create screen of a plain Task, plus `extra` fields."""
    return [
        FieldMeta("project", "Project", required=True),
        FieldMeta("issuetype", "Issue Type", required=True),
        FieldMeta("summary", "Summary", required=True),
        FieldMeta("description", "Description"),
        FieldMeta("labels", "Labels"),
        FieldMeta("reporter", "Reporter", required=True, has_default=True),
        *extra,
    ]


@dataclass
class Issue:
    """An issue the stand-in holds."""

    id: str
    key: str
    project: str
    issue_type: str
    fields: dict[str, Any]
    status: str = "To Do"
    comments: list[dict[str, Any]] = field(default_factory=list)

    def document(self, base_url: str) -> dict[str, Any]:
        fields = dict(self.fields)
        fields["project"] = {"key": self.project}
        fields["issuetype"] = {"name": self.issue_type}
        fields["status"] = {
            "name": self.status,
            "statusCategory": {"key": "done" if self.status == DONE else "new"},
        }
        return {
            "id": self.id,
            "key": self.key,
            "self": f"{base_url}{API}/issue/{self.id}",
            "fields": fields,
        }


class _ErrorResponse(Exception):
    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class JiraStandIn:
    """The stand-in server and the state it holds: projects, issues and calls."""

    def __init__(
        self,
        *,
        deployment: Literal["Server", "Cloud"] = "Server",
        createmeta: Literal["new", "legacy"] = "new",
        projects: dict[str, dict[str, list[FieldMeta]]] | None = None,
        user: str = USER,
        api_token: str | None = API_TOKEN,
        bearer_token: str | None = None,
    ) -> None:
        self.deployment = deployment
        self.createmeta = createmeta
        self.projects = projects or {"SEC": {"Task": default_fields()}}
        self.user = user
        self.api_token = api_token
        self.bearer_token = bearer_token
        self.issues: dict[str, Issue] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Life cycle

    def __enter__(self) -> JiraStandIn:
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # A short poll interval makes shutdown quick.
            kwargs={"poll_interval": 0.05},
            name="jira-stand-in",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        assert self._server is not None, "the stand-in is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # Scripting and inspection

    def fail(self, method: str, path: str, **fault: Any) -> None:
        """Script the response to the next request matching `method` and `path`."""
        with self._lock:
            self.faults.append(Fault(method, path, **fault))

    def set_status(self, key: str, status: str) -> None:
        """Move an issue, as a person in Jira would."""
        with self._lock:
            self.issues[key].status = status

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        """Return the recorded calls whose path matches `pattern` entirely."""
        return [
            call
            for call in self.calls
            if call.method == method and re.fullmatch(pattern, call.path)
        ]

    def bodies(self) -> Iterator[str]:
        """Yield the raw body of every recorded request."""
        for call in self.calls:
            yield call.raw_body

    # Requests

    def _authorized(self, header: str | None) -> bool:
        if self.bearer_token is not None:
            return header == f"Bearer {self.bearer_token}"
        if self.api_token is None:
            return True
        expected = base64.b64encode(f"{self.user}:{self.api_token}".encode()).decode()
        return header == f"Basic {expected}"

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.method == method and re.fullmatch(fault.path, path):
                return self.faults.pop(index)
        return None

    def handle(
        self, method: str, target: str, raw_body: str, authorization: str | None
    ) -> tuple[Fault | None, int, Any, dict[str, str]]:
        """Carry out one request and return its fault and the response to send."""
        parts = urlsplit(target)
        path = parts.path
        query = parse_qs(parts.query)
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        with self._lock:
            fault = self._take_fault(method, path)
            self.calls.append(
                Call(
                    method,
                    path,
                    query,
                    body,
                    raw_body,
                    authorization,
                    fault.kind if fault else None,
                )
            )
            if fault is not None and fault.kind == "respond":
                return fault, fault.status, fault.body, fault.headers
            if not self._authorized(authorization):
                return fault, 401, {"errorMessages": ["not authenticated"]}, {}
            try:
                status, document = self._route(method, path, query, body)
            except _ErrorResponse as error:
                return fault, error.status, error.body, error.headers
        return fault, status, document, {}

    def hold(self) -> None:
        """Wait before responding to a delayed request, until released or stopped."""
        self._release.wait(MAX_HOLD_SECONDS)

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if not path.startswith(API + "/"):
            raise _ErrorResponse(404, {"errorMessages": [f"no resource {path}"]})
        route = path[len(API) + 1 :]

        if method == "GET" and route == "serverInfo":
            return 200, self._server_info()
        if method == "GET" and route == "myself":
            return 200, {
                "name": "steward",
                "emailAddress": self.user,
                "displayName": "Steward",
            }
        if method == "GET" and route == "field":
            return 200, self._fields()

        if method == "GET" and route == "issue/createmeta":
            return 200, self._legacy_createmeta(query)
        match = re.fullmatch(r"issue/createmeta/([^/]+)/issuetypes(?:/([^/]+))?", route)
        if method == "GET" and match:
            return 200, self._createmeta(match.group(1), match.group(2), query)

        if method == "POST" and route == "issue":
            return 201, self._create(body)
        if method == "GET" and route in ("search", "search/jql"):
            return 200, self._search(route, query)

        match = re.fullmatch(r"issue/([^/]+)(?:/(comment|transitions))?", route)
        if match:
            issue = self._issue(match.group(1))
            if match.group(2) is None and method == "GET":
                return 200, issue.document(self.url)
            if match.group(2) == "comment":
                return self._comment(method, issue, body)
            if match.group(2) == "transitions":
                return self._transition(method, issue, body)
        raise _ErrorResponse(404, {"errorMessages": [f"no resource {method} {path}"]})

    def _server_info(self) -> dict[str, Any]:
        version = [1001, 0, 0] if self.deployment == "Cloud" else [9, 12, 0]
        return {
            "baseUrl": self.url,
            "version": ".".join(str(part) for part in version),
            "versionNumbers": version,
            "deploymentType": self.deployment,
            "buildNumber": 1,
            "serverTitle": "Jira stand-in",
        }

    def _fields(self) -> list[dict[str, Any]]:
        seen: dict[str, FieldMeta] = {}
        for types in self.projects.values():
            for fields in types.values():
                for item in fields:
                    seen.setdefault(item.field_id, item)
        seen.setdefault("status", FieldMeta("status", "Status"))
        seen.setdefault("created", FieldMeta("created", "Created"))
        return [
            {
                "id": item.field_id,
                "name": item.name,
                "custom": item.field_id.startswith("customfield_"),
                "clauseNames": [item.field_id],
            }
            for item in seen.values()
        ]

    def _project(self, key: str) -> dict[str, list[FieldMeta]]:
        project = self.projects.get(key)
        if project is None:
            raise _ErrorResponse(404, {"errorMessages": [f"project {key} not found"]})
        return project

    @staticmethod
    def _type_id(project: dict[str, list[FieldMeta]], name: str) -> str:
        return str(10001 + list(project).index(name))

    def _createmeta(
        self, key: str, type_id: str | None, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        if self.createmeta != "new":
            raise _ErrorResponse(404, None)
        project = self._project(key)
        if type_id is None:
            items = [
                {"id": self._type_id(project, name), "name": name, "subtask": False}
                for name in project
            ]
            items_key = "issueTypes"
        else:
            names = [
                name for name in project if self._type_id(project, name) == type_id
            ]
            if not names:
                raise _ErrorResponse(
                    404, {"errorMessages": [f"issue type {type_id} not found"]}
                )
            items = [item.document() for item in project[names[0]]]
            items_key = "fields"
        start = int(query.get("startAt", ["0"])[0])
        size = int(query.get("maxResults", ["50"])[0])
        page = items[start : start + size]
        document: dict[str, Any] = {
            "startAt": start,
            "maxResults": size,
            "total": len(items),
        }
        if self.deployment == "Cloud":
            document[items_key] = page
        else:
            document["values"] = page
            document["isLast"] = start + size >= len(items)
        return document

    def _legacy_createmeta(self, query: dict[str, list[str]]) -> dict[str, Any]:
        if self.createmeta != "legacy":
            raise _ErrorResponse(404, None)
        requested = ",".join(query.get("projectKeys", [])).split(",")
        projects = []
        for key in requested:
            project = self.projects.get(key)
            if project is None:
                continue
            projects.append(
                {
                    "id": str(10000 + list(self.projects).index(key)),
                    "key": key,
                    "issuetypes": [
                        {
                            "id": self._type_id(project, name),
                            "name": name,
                            "fields": {
                                item.field_id: item.document() for item in fields
                            },
                        }
                        for name, fields in project.items()
                    ],
                }
            )
        return {"expand": "projects", "projects": projects}

    def _check_create(self, fields: dict[str, Any]) -> tuple[str, str]:
        """Return the project key and issue type name, or raise a 400 as Jira does."""
        key = str((fields.get("project") or {}).get("key", ""))
        project = self.projects.get(key)
        if project is None:
            raise _ErrorResponse(
                400,
                {
                    "errorMessages": [],
                    "errors": {"project": "valid project is required"},
                },
            )
        type_name = str((fields.get("issuetype") or {}).get("name", ""))
        if type_name not in project:
            raise _ErrorResponse(
                400,
                {
                    "errorMessages": [],
                    "errors": {"issuetype": "valid issue type is required"},
                },
            )

        screen = {item.field_id: item for item in project[type_name]}
        errors: dict[str, str] = {}
        for name in fields:
            if name not in screen:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate "
                    "screen, or unknown."
                )
        for item in screen.values():
            if item.required and not item.has_default and not fields.get(item.field_id):
                errors[item.field_id] = f"{item.name} is required."
        if errors:
            raise _ErrorResponse(400, {"errorMessages": [], "errors": errors})
        return key, type_name

    def _create(self, body: Any) -> dict[str, Any]:
        fields = dict((body or {}).get("fields") or {})
        key, type_name = self._check_create(fields)

        number = sum(1 for issue in self.issues.values() if issue.project == key) + 1
        issue = Issue(
            id=str(10000 + len(self.issues) + 1),
            key=f"{key}-{number}",
            project=key,
            issue_type=type_name,
            fields={
                name: value
                for name, value in fields.items()
                if name not in ("project", "issuetype")
            },
        )
        self.issues[issue.key] = issue
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.url}{API}/issue/{issue.id}",
        }

    def _issue(self, key: str) -> Issue:
        issue = self.issues.get(key) or next(
            (item for item in self.issues.values() if item.id == key), None
        )
        if issue is None:
            raise _ErrorResponse(
                404, {"errorMessages": ["Issue Does Not Exist"], "errors": {}}
            )
        return issue

    def _matches(self, issue: Issue, clause: str) -> bool:
        match = re.fullmatch(r'\s*(\w+)\s*(!=|=)\s*"?([^"]*?)"?\s*', clause)
        if match is None:
            raise _ErrorResponse(
                400, {"errorMessages": [f"unsupported JQL clause {clause!r}"]}
            )
        name, operator, value = match.groups()
        if name == "project":
            actual: list[str] = [issue.project]
        elif name == "labels":
            actual = list(issue.fields.get("labels") or [])
        elif name == "issuetype":
            actual = [issue.issue_type]
        elif name == "statusCategory":
            actual = ["Done" if issue.status == DONE else "To Do"]
        else:
            raise _ErrorResponse(
                400, {"errorMessages": [f"unsupported JQL field {name!r}"]}
            )
        found = value in actual
        return found if operator == "=" else not found

    def _search(self, route: str, query: dict[str, list[str]]) -> dict[str, Any]:
        jql = query.get("jql", [""])[0]
        parts = re.split(r"(?i)\s+order\s+by\s+", jql, maxsplit=1)
        condition = parts[0]
        order = parts[1] if len(parts) > 1 else "created ASC"
        clauses = [
            part for part in re.split(r"(?i)\s+and\s+", condition) if part.strip()
        ]
        issues = [
            issue
            for issue in self.issues.values()
            if all(self._matches(issue, clause) for clause in clauses)
        ]
        if re.fullmatch(r"(?i)created\s+desc", order.strip()):
            issues.reverse()
        size = int(query.get("maxResults", ["50"])[0])
        page = [issue.document(self.url) for issue in issues[:size]]
        if route == "search/jql":
            return {"issues": page, "isLast": True}
        return {"startAt": 0, "maxResults": size, "total": len(issues), "issues": page}

    def _comment(self, method: str, issue: Issue, body: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, {
                "startAt": 0,
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "comments": issue.comments,
            }
        if method == "POST":
            comment = {
                "id": str(len(issue.comments) + 1),
                "body": (body or {}).get("body", ""),
            }
            issue.comments.append(comment)
            return 201, comment
        raise _ErrorResponse(405, None)

    def _transitions(self, issue: Issue) -> list[dict[str, Any]]:
        if issue.status == DONE:
            return [{"id": "41", "name": "Reopen", "to": {"name": "To Do"}}]
        return [
            {"id": "21", "name": "Start Progress", "to": {"name": "In Progress"}},
            {"id": "31", "name": "Done", "to": {"name": DONE}},
        ]

    def _transition(self, method: str, issue: Issue, body: Any) -> tuple[int, Any]:
        offered = self._transitions(issue)
        if method == "GET":
            return 200, {"expand": "transitions", "transitions": offered}
        if method == "POST":
            requested = str(((body or {}).get("transition") or {}).get("id", ""))
            chosen = next((item for item in offered if item["id"] == requested), None)
            if chosen is None:
                raise _ErrorResponse(
                    400,
                    {
                        "errorMessages": [f"transition {requested} is not valid"],
                        "errors": {},
                    },
                )
            issue.status = str(chosen["to"]["name"])
            return 204, None
        raise _ErrorResponse(405, None)


class _Handler(BaseHTTPRequestHandler):
    stand_in: JiraStandIn
    # HTTP/1.0 closes each connection after its response, so a dropped or held
    # connection never poisons the client's connection pool.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length).decode() if length else ""
        fault, status, body, headers = self.stand_in.handle(
            self.command, self.path, raw_body, self.headers.get("Authorization")
        )
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return
        if fault is not None and fault.kind == "delay":
            self.stand_in.hold()
        payload = b"" if body is None else json.dumps(body).encode()
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if payload:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up waiting for a delayed response.
            pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()
