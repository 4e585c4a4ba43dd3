"""Interactive governance flows: the listeners behind Steward's buttons and events."""
