"""Pausing the garbage collector during bulk work."""

from __future__ import annotations

import gc

import pytest

from governance.gc_pause import paused_gc


def test_pause_ends_with_outer_block() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
        assert gc.get_freeze_count() >= frozen
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_pause_ends_on_error() -> None:
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("import failed")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_pause_keeps_collector_off_if_it_was() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
