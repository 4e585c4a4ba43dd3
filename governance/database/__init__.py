"""Database plumbing: the declarative base, column types, engines and sessions."""

from governance.database.base import Base
from governance.database.engine import create_database_engine, session_scope

__all__ = ["Base", "create_database_engine", "session_scope"]
