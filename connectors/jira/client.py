"""Steward's Jira client: the `jira` library with Steward's retries and errors.

The library's session (jira.resilientsession.ResilientSession, jira 3.10)
retries 429 and 503 responses and connection errors by sleeping in the calling
thread, up to 60 seconds a time. That would block the worker and hide
throttling from it, so the client is built with `max_retries=0`, which sends
each request once: every failure reaches the caller as a connector error,
and the outbox's backoff, Retry-After handling and attempt count apply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from jira import JIRA

from connectors.errors import ConnectorRequestError
from connectors.jira.config import JiraConfig
from connectors.jira.errors import CONNECTOR, TRANSLATED, translate
from connectors.tickets import TicketDraft

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Fields Steward sets on every ticket; `extra_fields` may not replace them.
STEWARD_FIELDS = frozenset({"project", "issuetype", "summary", "description", "labels"})

Document = dict[str, Any]


class JiraClient:
    """A ticketing system backed by one Jira project; see `TicketSystem`.

    The connection is opened on first use (the library reads serverInfo to
    learn the deployment type), so building a client costs nothing.
    """

    name = CONNECTOR

    def __init__(self, config: JiraConfig) -> None:
        self.config = config
        self._jira: JIRA | None = None

    # Connection and requests

    def _connect(self) -> JIRA:
        options: dict[str, Any] = {"verify": self.config.tls_verify()}
        if self.config.personal_access_token is not None:
            return JIRA(
                server=self.config.url,
                options=options,
                token_auth=self.config.personal_access_token.get_secret_value(),
                max_retries=0,
                timeout=self.config.timeout_seconds,
            )
        basic_auth = None
        if self.config.user is not None and self.config.api_token is not None:
            basic_auth = (self.config.user, self.config.api_token.get_secret_value())
        return JIRA(
            server=self.config.url,
            options=options,
            basic_auth=basic_auth,
            max_retries=0,
            timeout=self.config.timeout_seconds,
        )

    def _call(self, action: str, operation: Callable[[JIRA], T]) -> T:
        try:
            if self._jira is None:
                self._jira = self._connect()
            return operation(self._jira)
        except TRANSLATED as error:
            # `from None`: a chained JIRAError would print response headers.
            raise translate(error, action=action) from None

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, action: str
    ) -> Any:
        """Return the JSON of a GET request to /rest/api/2/`path`.

        The library's own create-metadata methods raise on Jira Cloud and on
        Data Center before 8.4 without contacting the server, so `steward
        jira check` requests the metadata directly through this method.
        """
        # NOTE: `_get_json` is private to the jira library (3.10); it adds
        # the base URL, the session's authentication and its error handling.
        return self._call(action, lambda jira: jira._get_json(path, params=params))

    # TicketSystem

    def create(self, draft: TicketDraft) -> str:
        """Open an issue and return its key; see `TicketSystem.create`."""
        fields: Document = dict(self.config.extra_fields)
        fields.update(
            project={"key": self.config.project},
            issuetype={"name": self.config.issue_type},
            summary=draft.summary,
            description=draft.description,
            labels=[*self.config.labels, draft.label],
        )
        issue = self._call(
            f"creating the Jira issue for {draft.label}",
            lambda jira: jira.create_issue(fields=fields, prefetch=False),
        )
        key = str(issue.key)
        logger.info("Jira issue %s created for %s", key, draft.label)
        return key

    def find(self, label: str) -> list[str]:
        """Return the keys of the project's issues carrying `label`, oldest first."""
        jql = (
            f'project = "{self.config.project}" AND labels = "{label}" '
            "ORDER BY created ASC"
        )
        return self.search(jql, action=f"searching Jira for {label}")

    def search(self, jql: str, *, action: str, limit: int = 20) -> list[str]:
        """Return the keys of the first `limit` issues matching `jql`."""
        result = self._call(
            action,
            lambda jira: jira.search_issues(
                jql, maxResults=limit, fields="created", json_result=True
            ),
        )
        issues = result.get("issues", []) if isinstance(result, dict) else []
        return [str(issue["key"]) for issue in issues]

    def status(self, key: str) -> str:
        """Return the name of the issue's status."""
        issue = self._call(
            f"reading the status of {key}",
            lambda jira: jira.issue(key, fields="status"),
        )
        return str(issue.raw["fields"]["status"]["name"])

    def has_comment(self, key: str, marker: str) -> bool:
        """Return whether a comment on the issue contains `marker`."""
        comments = self._call(
            f"reading the comments of {key}", lambda jira: jira.comments(key)
        )
        return any(marker in str(comment.raw.get("body", "")) for comment in comments)

    def add_comment(self, key: str, body: str) -> None:
        """Add a comment to the issue."""
        self._call(f"commenting on {key}", lambda jira: jira.add_comment(key, body))

    def transition(self, key: str, name: str) -> None:
        """Apply the transition called `name` (case-insensitive) to the issue.

        Raises ConnectorRequestError naming the available transitions when
        the issue's current status offers none of that name.
        """
        transitions = self._transitions(key)
        names = [str(item.get("name", "")) for item in transitions]
        chosen = next(
            (
                item
                for item in transitions
                if str(item.get("name", "")).casefold() == name.casefold()
            ),
            None,
        )
        if chosen is None:
            raise ConnectorRequestError(
                f"transition {name!r} is not available on {key}; it offers: "
                f"{', '.join(names) or 'none'} (check jira.done_transition)",
                connector=CONNECTOR,
            )
        transition_id = str(chosen["id"])
        self._call(
            f"moving {key} through {name!r}",
            lambda jira: jira.transition_issue(key, transition_id),
        )
        logger.info("Jira issue %s moved through %r", key, name)

    def _transitions(self, key: str) -> list[Document]:
        transitions: list[Document] = self._call(
            f"reading the transitions of {key}", lambda jira: jira.transitions(key)
        )
        return transitions

    # Checks

    def transition_names(self, key: str) -> list[str]:
        """Return the names of the transitions the issue's status offers."""
        return [str(item.get("name", "")) for item in self._transitions(key)]

    def myself(self) -> Document:
        """Return the account Steward is authenticated as."""
        document: Document = self._call(
            "reading Steward's Jira account", lambda jira: jira.myself()
        )
        return document

    def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._jira is not None:
            self._jira.close()  # type: ignore[no-untyped-call]
            self._jira = None
