"""Console mode: Steward's Slack flows in a terminal, without a workspace."""
