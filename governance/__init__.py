"""Steward's governance core: inventory, ownership, certification and lifecycle.

The core holds every rule. It imports no Slack code and no vendor SDK, so the
bot, the CLI and the scheduler share one implementation of each decision.
"""
