"""`steward jira check` against the Jira stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from governance.cli.main import cli
from tests.support.jira_api import (
    API_TOKEN,
    USER,
    FieldMeta,
    Issue,
    JiraStandIn,
    default_fields,
)

TEAM = FieldMeta("customfield_10010", "Team", required=True)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)


@pytest.fixture
def jira_api() -> Iterator[JiraStandIn]:
    with JiraStandIn() as api:
        yield api


def check(api: JiraStandIn | None, **settings: str) -> Result:
    environment = {}
    if api is not None:
        environment = {
            "STEWARD_JIRA__URL": api.url,
            "STEWARD_JIRA__USER": USER,
            "STEWARD_JIRA__API_TOKEN": API_TOKEN,
            "STEWARD_JIRA__PROJECT": "SEC",
            "STEWARD_JIRA__TIMEOUT_SECONDS": "5",
        }
    environment.update(
        {f"STEWARD_JIRA__{name.upper()}": value for name, value in settings.items()}
    )
    return CliRunner().invoke(
        cli, ["jira", "check"], env=environment, catch_exceptions=False
    )


def problems(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("problem:")]


def test_valid_configuration(jira_api: JiraStandIn) -> None:
    result = check(jira_api)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok: authenticated as {USER}",
        "ok: project SEC exists",
        "ok: issue type Task exists in SEC",
        "ok: every required field of Task is set by Steward, jira.extra_fields "
        "or a default",
        "note: transition 'Done' not checked: SEC has no open Task to read "
        "transitions from; Steward checks it at first use",
    ]
    assert jira_api.calls_to("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes")
    assert jira_api.calls_to("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes/10001")
    assert jira_api.issues == {}


@pytest.mark.parametrize("deployment", ["Server", "Cloud"])
def test_required_custom_field(deployment: str) -> None:
    with JiraStandIn(
        deployment=deployment,  # type: ignore[arg-type]
        projects={"SEC": {"Task": default_fields(TEAM)}},
    ) as api:
        missing = check(api)
        given = check(api, extra_fields='{"customfield_10010": {"value": "Security"}}')
    assert missing.exit_code == 2
    assert problems(missing) == [
        "problem: required field Team (customfield_10010) of Task has no default: "
        "set it in jira.extra_fields"
    ]
    assert given.exit_code == 0, given.output


def test_legacy_create_metadata() -> None:
    with JiraStandIn(
        createmeta="legacy", projects={"SEC": {"Task": default_fields(TEAM)}}
    ) as api:
        result = check(api)
        assert api.calls_to("GET", "/rest/api/2/issue/createmeta")
    assert result.exit_code == 2
    assert "ok: project SEC exists" in result.output
    assert problems(result) == [
        "problem: required field Team (customfield_10010) of Task has no default: "
        "set it in jira.extra_fields"
    ]


@pytest.mark.parametrize("createmeta", ["new", "legacy"])
def test_unknown_project(createmeta: str) -> None:
    with JiraStandIn(createmeta=createmeta) as api:  # type: ignore[arg-type]
        result = check(api, project="NOPE")
    assert result.exit_code == 2
    assert problems(result) == [
        "problem: project NOPE not found, or Steward's account may not create "
        "issues in it"
    ]


def test_unknown_issue_type_and_extra_field(jira_api: JiraStandIn) -> None:
    result = check(jira_api, issue_type="Incident")
    assert result.exit_code == 2
    assert problems(result) == [
        "problem: issue type 'Incident' not found in SEC; it offers: Task"
    ]
    off_screen = check(jira_api, extra_fields='{"customfield_999": "x"}')
    assert off_screen.exit_code == 2
    assert problems(off_screen) == [
        "problem: jira.extra_fields names customfield_999, which is not on the "
        "create screen of Task"
    ]


def test_labels_missing_from_screen() -> None:
    fields = [item for item in default_fields() if item.field_id != "labels"]
    with JiraStandIn(projects={"SEC": {"Task": fields}}) as api:
        result = check(api)
    assert result.exit_code == 2
    assert problems(result) == [
        "problem: field labels is not on the create screen of Task; Steward sets "
        "it on every ticket"
    ]


def test_done_transition_checked_on_open_issue(jira_api: JiraStandIn) -> None:
    valid = check(jira_api)
    assert valid.exit_code == 0
    jira_api.issues.clear()
    # A person's issue in the project shows which transitions it offers.
    jira_api.issues["SEC-1"] = Issue(
        id="10001", key="SEC-1", project="SEC", issue_type="Task", fields={}
    )
    offered = check(jira_api)
    assert offered.exit_code == 0
    assert "ok: transition 'Done' is offered on SEC-1" in offered.output
    wrong = check(jira_api, done_transition="Resolve")
    assert wrong.exit_code == 2
    assert problems(wrong) == [
        "problem: transition 'Resolve' is not offered on SEC-1, which offers: "
        "Start Progress, Done; set jira.done_transition"
    ]


def test_not_configured() -> None:
    result = check(None)
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith("problem: Jira is not configured: set jira.url")
    for variable in (
        "STEWARD_JIRA__URL",
        "STEWARD_JIRA__PROJECT",
        "STEWARD_JIRA__USER",
        "STEWARD_JIRA__API_TOKEN",
        "STEWARD_JIRA__PERSONAL_ACCESS_TOKEN",
    ):
        assert f"({variable})" in line


def test_rejected_credentials(jira_api: JiraStandIn) -> None:
    result = check(jira_api, api_token="wrong-token")
    assert result.exit_code == 2
    (line,) = problems(result)
    assert "HTTP 401" in line
    assert "wrong-token" not in result.output


def test_unreachable_jira() -> None:
    with JiraStandIn() as api:
        url = api.url
    result = CliRunner().invoke(
        cli,
        ["jira", "check"],
        env={
            "STEWARD_JIRA__URL": url,
            "STEWARD_JIRA__PERSONAL_ACCESS_TOKEN": "pat",
            "STEWARD_JIRA__PROJECT": "SEC",
        },
    )
    assert result.exit_code == 3
    assert "connector error (jira)" in result.output
