"""The consumer pauses the cyclic garbage collector while it handles a fetched batch, and gives it back
as it found it: on when the last overlapping batch ends (also when one fails), off if someone else had
turned it off."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator

import pytest

from servicekit import gcpause
from servicekit.events.consumer import _no_cyclic_gc


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_during_a_batch_and_resumed_after_even_when_it_fails() -> None:
    gc.enable()
    with _no_cyclic_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _no_cyclic_gc():
        raise RuntimeError("handler failed")
    assert gc.isenabled()


async def overlapping_batches(while_first_still_runs: Callable[[], None] = lambda: None) -> None:
    """A batch that starts and ends while another one runs; `while_first_still_runs` is called inside the
    first batch after the second ended."""
    first_in, second_done = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        with _no_cyclic_gc():
            first_in.set()
            await second_done.wait()
            while_first_still_runs()

    async def second() -> None:
        await first_in.wait()
        with _no_cyclic_gc():
            pass
        second_done.set()

    await asyncio.gather(first(), second())


async def test_overlapping_batches_resume_it_when_the_last_one_ends() -> None:
    gc.enable()
    paused: list[bool] = []
    await overlapping_batches(lambda: paused.append(not gc.isenabled()))
    assert paused == [True]  # the second batch ended: still paused for the first
    assert gc.isenabled()


def test_left_off_when_it_was_off() -> None:
    gc.disable()
    with _no_cyclic_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


async def test_batches_that_keep_overlapping_still_collect_the_young_generations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc.enable()
    monkeypatch.setattr(gcpause, "YOUNG_EVERY_S", 0.0)
    collected: list[int] = []
    monkeypatch.setattr(gcpause.gc, "collect", lambda generation=2: collected.append(generation) or 0)
    await overlapping_batches()
    assert collected == [1]  # the second batch ended while the first still held the pause
    assert gc.isenabled()
