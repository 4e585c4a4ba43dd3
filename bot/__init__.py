"""Steward's Slack surface: turns Slack payloads into calls of the core."""
