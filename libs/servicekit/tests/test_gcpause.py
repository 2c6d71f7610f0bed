"""servicekit.gcpause: one counted pause of the cyclic collector for the whole process, and young
collections while it lasts (moved here from customer-service's import, which uses it with the event
consumer, product-service's bulk writes and sync-service's resync pages)."""

from __future__ import annotations

import gc
import weakref

import pytest

from servicekit import gcpause
from servicekit.gcpause import collect_young, cyclic_gc_paused


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_the_pause_nests_resumes_on_errors_and_leaves_a_pause_it_did_not_make() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer job still runs
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("chunk failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # paused by someone else: still theirs
    finally:
        gc.enable()


def test_collect_young_frees_cycles_while_the_collector_is_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcpause, "YOUNG_EVERY_S", 0.0)
    with cyclic_gc_paused():
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        del a, b
        assert alive() is not None  # a cycle: reference counting alone does not free it
        collect_young()
        assert alive() is None
