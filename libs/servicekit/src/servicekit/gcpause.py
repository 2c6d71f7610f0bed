"""Pausing Python's cyclic garbage collector around work that makes many short-lived objects.

A consumer's fetched batch, an import job's chunks, a resync page's states, a bulk export: tens of
thousands of objects that live until the work commits. With the collector running they outlive young
collections, get promoted, and set off full collections that walk the whole process heap (every imported
module's objects); measured on the activity consumer, a third of its CPU per event, and 14% of a customer
import's at 30,000 rows. Paused, the objects are freed by reference counting as they would be anyway.

The pause is one for the whole process, counted: it ends when the last piece of work that took it ends
(also when one fails), and a collector that something else had turned off is left off. `collect_young`
collects the young generations (0 and 1, cheap: the old generation is not walked) when they have not been
collected for `YOUNG_EVERY_S` while paused, so cycles made by the process's other tasks meanwhile do not
pile up while overlapping work keeps the pause. Thread-safe (import files are parsed in worker threads).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

YOUNG_EVERY_S = 1.0

_lock = threading.Lock()
_pauses = 0  # pieces of work of this process running with the collector paused by this module
_young_collected_at = 0.0  # when the pause began, or the young generations were last collected


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No automatic cyclic garbage collection inside the block (see the module's docstring)."""
    global _pauses, _young_collected_at
    with _lock:
        if _pauses == 0 and not gc.isenabled():
            mine = False  # paused by someone else: leave it to them
        else:
            mine = True
            if _pauses == 0:
                _young_collected_at = time.monotonic()
            _pauses += 1
            gc.disable()
    try:
        yield
    finally:
        if mine:
            with _lock:
                _pauses -= 1
                if _pauses == 0:
                    gc.enable()


def collect_young() -> None:
    """While the collector is paused by `cyclic_gc_paused`: collect generations 0 and 1 when they were
    last collected at least YOUNG_EVERY_S ago. Call it between chunks of long work, or when a piece of
    work ends while others keep the pause."""
    global _young_collected_at
    if _pauses and time.monotonic() - _young_collected_at >= YOUNG_EVERY_S:
        gc.collect(1)
        _young_collected_at = time.monotonic()
