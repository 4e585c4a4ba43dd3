"""Fixtures of the Vault/OpenBao connector tests."""

from __future__ import annotations

from tests.openbao import openbao

__all__ = ["openbao"]
