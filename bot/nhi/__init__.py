"""The /nhi slash command: parsing its text and building its replies."""
