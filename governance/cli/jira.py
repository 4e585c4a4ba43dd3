"""`steward jira check`: can Steward open and close tickets in the project?"""

from __future__ import annotations

import click

from connectors.errors import ConnectorAuthError, ConnectorPermissionError
from governance.cli.context import CliContext, pass_context
from governance.remediation.tickets import jira_config
from governance.textsafety import printable

# Exit status when the check found problems the settings can fix.
EXIT_PROBLEMS = 2


@click.group()
def jira() -> None:
    """Check the Jira connection that records remediations as tickets."""


@jira.command("check")
@pass_context
def check(state: CliContext) -> None:
    """Check the project, issue type, required fields and done transition.

    Prints one line per check. Exits with status 0 when Steward can create
    tickets, 2 with a `problem:` line per problem when not, and 3 when Jira
    could not be reached.
    """
    settings = state.settings.jira
    if settings.url is None:
        click.echo(
            "problem: Jira is not configured: set jira.url (STEWARD_JIRA__URL), "
            "jira.project (STEWARD_JIRA__PROJECT), and jira.user "
            "(STEWARD_JIRA__USER) with jira.api_token (STEWARD_JIRA__API_TOKEN) "
            "or jira.personal_access_token (STEWARD_JIRA__PERSONAL_ACCESS_TOKEN)"
        )
        click.get_current_context().exit(EXIT_PROBLEMS)
    if not settings.enabled:
        click.echo("note: jira.enabled is false; the worker sends no tickets")

    # Imported here so that other commands never load the jira library.
    from connectors.jira.check import (  # noqa: PLC0415
        Level,
        check_configuration,
    )
    from connectors.jira.client import JiraClient  # noqa: PLC0415

    config = jira_config(settings)
    client = JiraClient(config)
    try:
        findings = check_configuration(
            client,
            project=config.project,
            issue_type=config.issue_type,
            extra_fields=config.extra_fields,
            done_transition=settings.done_transition,
        )
    except (ConnectorAuthError, ConnectorPermissionError) as error:
        click.echo(f"problem: {printable(str(error))}")
        click.get_current_context().exit(EXIT_PROBLEMS)
    finally:
        client.close()

    for finding in findings:
        click.echo(f"{finding.level.value}: {printable(finding.message)}")
    if any(finding.level is Level.PROBLEM for finding in findings):
        click.get_current_context().exit(EXIT_PROBLEMS)
