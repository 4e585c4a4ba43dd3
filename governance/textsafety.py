"""Keeping imported text harmless in terminals and spreadsheets."""

from __future__ import annotations

import re

# C0 and C1 control characters and DEL: terminal escape sequences start with
# them, and a newline in a name can print as an extra table row.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Line breaks and tabs are kept in long free text such as descriptions.
CONTROL_EXCEPT_WHITESPACE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CSV_ESCAPE = "'"


def first_control_character(
    value: str, *, allow_whitespace: bool = False
) -> str | None:
    """Return the first control character in `value` as U+XXXX, or None."""
    pattern = CONTROL_EXCEPT_WHITESPACE if allow_whitespace else CONTROL_CHARACTERS
    match = pattern.search(value)
    return None if match is None else f"U+{ord(match.group()):04X}"


def printable(value: str) -> str:
    """Return `value` with control characters shown as escapes, for terminals."""
    return CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], value)


def neutralise_cell(value: str) -> str:
    """Return a CSV cell a spreadsheet will not run as a formula.

    A cell starting with a formula trigger, or with an apostrophe, gets one
    leading apostrophe; readers of Steward's files drop it again.
    """
    if value.startswith((*FORMULA_TRIGGERS, CSV_ESCAPE)):
        return CSV_ESCAPE + value
    return value


def restore_cell(value: str) -> str:
    """Undo `neutralise_cell`."""
    return value[1:] if value.startswith(CSV_ESCAPE) else value
