"""CSV imports of people, business entities and identities."""
