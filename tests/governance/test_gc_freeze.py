"""Freezing the garbage collector's view of long-lived objects during bulk work."""

from __future__ import annotations

import gc

import pytest

from governance.gc_freeze import frozen_gc


def test_freeze_ends_with_outer_block() -> None:
    assert gc.get_freeze_count() == 0
    with frozen_gc():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with frozen_gc():
            assert gc.get_freeze_count() >= frozen
        assert gc.get_freeze_count() >= frozen
    assert gc.get_freeze_count() == 0


def test_freeze_ends_on_error() -> None:
    with pytest.raises(RuntimeError), frozen_gc():
        raise RuntimeError("import failed")
    assert gc.get_freeze_count() == 0
