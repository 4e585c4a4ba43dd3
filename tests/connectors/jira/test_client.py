"""Steward's Jira client against the stand-in, with the real `jira` library."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.errors import (
    ConnectorAuthError,
    ConnectorOutcomeUnknownError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorUnavailableError,
)
from connectors.jira.client import JiraClient
from connectors.jira.config import JiraConfig
from connectors.tickets import TicketDraft, TicketSystem
from tests.support.jira_api import API_TOKEN, USER, FieldMeta, JiraStandIn

ISSUE_PATH = "/rest/api/2/issue"
DRAFT = TicketDraft(summary="Revoke", description="text", label="steward-remediation-7")


@pytest.fixture
def jira_api() -> Iterator[JiraStandIn]:
    with JiraStandIn() as api:
        yield api


def client_for(api: JiraStandIn, **options: Any) -> JiraClient:
    config: dict[str, Any] = {
        "url": api.url,
        "project": "SEC",
        "user": USER,
        "api_token": SecretStr(API_TOKEN),
        "timeout_seconds": 5.0,
    }
    config.update(options)
    return JiraClient(JiraConfig(**config))


def test_client_is_a_ticket_system(jira_api: JiraStandIn) -> None:
    assert isinstance(client_for(jira_api), TicketSystem)


def test_create_sets_labels_and_extra_fields(jira_api: JiraStandIn) -> None:
    jira_api.projects["SEC"]["Task"].append(
        FieldMeta("customfield_10010", "Team", required=True)
    )
    client = client_for(
        jira_api,
        labels=("steward", "nhi"),
        extra_fields={"customfield_10010": {"value": "Security"}},
    )
    try:
        assert client.create(DRAFT) == "SEC-1"
        assert client.create(DRAFT) == "SEC-2"
        assert client.find("steward-remediation-7") == ["SEC-1", "SEC-2"]
        assert client.find("steward-remediation-8") == []
    finally:
        client.close()
    fields = jira_api.issues["SEC-1"].fields
    assert fields["labels"] == ["steward", "nhi", "steward-remediation-7"]
    assert fields["customfield_10010"] == {"value": "Security"}
    (create, _) = jira_api.calls_to("POST", ISSUE_PATH)
    assert create.body["fields"]["project"] == {"key": "SEC"}
    assert create.body["fields"]["issuetype"] == {"name": "Task"}


def test_bearer_token(jira_api: JiraStandIn) -> None:
    jira_api.bearer_token = "pat-value-1"
    client = client_for(
        jira_api,
        user=None,
        api_token=None,
        personal_access_token=SecretStr("pat-value-1"),
    )
    try:
        assert client.create(DRAFT) == "SEC-1"
    finally:
        client.close()
    assert {call.authorization for call in jira_api.calls} == {"Bearer pat-value-1"}


def test_rejected_credentials(jira_api: JiraStandIn) -> None:
    client = client_for(jira_api, api_token=SecretStr("wrong"))
    with pytest.raises(ConnectorAuthError, match="HTTP 401"):
        client.create(DRAFT)
    assert jira_api.issues == {}


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, ConnectorRateLimitedError), (503, ConnectorUnavailableError)],
)
def test_library_retries_nothing(
    jira_api: JiraStandIn, status: int, expected: type[Exception]
) -> None:
    # ResilientSession would sleep and resend these unless max_retries is 0.
    jira_api.fail("POST", ISSUE_PATH, status=status, headers={"Retry-After": "5"})
    client = client_for(jira_api)
    try:
        with pytest.raises(expected):
            client.create(DRAFT)
    finally:
        client.close()
    assert len(jira_api.calls_to("POST", ISSUE_PATH)) == 1
    assert jira_api.issues == {}


def test_refused_connection_is_not_unknown() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = JiraClient(
        JiraConfig(url=f"http://127.0.0.1:{port}", project="SEC", timeout_seconds=2)
    )
    with pytest.raises(ConnectorUnavailableError) as raised:
        client.create(DRAFT)
    assert not isinstance(raised.value, ConnectorOutcomeUnknownError)


def test_comment_and_transition(jira_api: JiraStandIn) -> None:
    client = client_for(jira_api)
    try:
        key = client.create(DRAFT)
        assert not client.has_comment(key, "steward-remediation-7 verified")
        client.add_comment(key, "closing\n\nsteward-remediation-7 verified")
        assert client.has_comment(key, "steward-remediation-7 verified")
        client.transition(key, "done")
        assert client.status(key) == "Done"
        with pytest.raises(ConnectorRequestError, match="it offers: Reopen"):
            client.transition(key, "Done")
    finally:
        client.close()
