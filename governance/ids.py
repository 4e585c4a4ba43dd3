"""Database ids typed or sent by people: ASCII digits that fit the database.

`str.isdigit` and `int` accept any Unicode digit (the fullwidth "12" is
12), and SQLite cannot bind an integer beyond 64 bits as a parameter, so
ids read from buttons, commands and the CLI are parsed here instead.
"""

from __future__ import annotations

import re

# 18 digits stay below 2**63, the largest integer SQLite and PostgreSQL bind.
MAX_ID_DIGITS = 18
_ID = re.compile(rf"[0-9]{{1,{MAX_ID_DIGITS}}}")


def parse_database_id(text: str) -> int | None:
    """Return the id `text` spells, or None unless it is 1 to 18 ASCII digits."""
    if not _ID.fullmatch(text):
        return None
    return int(text)
