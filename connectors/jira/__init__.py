"""Jira: Steward's ticketing system, reached through the `jira` client library.

Import `connectors.jira.client` only where Jira is used: it loads the library.
"""
