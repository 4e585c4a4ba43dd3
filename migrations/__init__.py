"""Alembic environment and schema versions for SQLite and PostgreSQL."""
