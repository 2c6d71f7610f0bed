"""BurstHold: which changed SKUs a channel worker pushes now and which it holds (a clock of our own)."""

from __future__ import annotations

import itertools

from sync_service.push.coalesce import BurstHold


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_burst(hold: BurstHold, clock: Clock, changes: int, every: float, push_takes: float) -> list[float]:
    """One SKU changed `changes` times, `every` seconds apart; a worker that pushes what is ready or due
    (a push is in flight for `push_takes` seconds). The times pushes left."""
    pushes: list[float] = []
    in_flight_until = -1.0
    queued = False
    end = clock.now + changes * every + 5.0
    next_change, done = clock.now, 0
    while clock.now <= end:
        in_flight = {"SKU"} if clock.now < in_flight_until else set()
        if done < changes and clock.now >= next_change:
            queued = queued or bool(hold.changed(["SKU"], in_flight))
            done += 1
            next_change += every
        released, _ = hold.due()
        queued = queued or bool(released)
        if queued and not in_flight:
            hold.taken(["SKU"])
            pushes.append(clock.now)
            in_flight_until = clock.now + push_takes
            queued = False
        clock.now = round(clock.now + 0.001, 6)
    return pushes


def test_a_lone_change_goes_at_once_and_one_long_after_its_push_too() -> None:
    clock = Clock()
    hold = BurstHold(window=1.0, quiet=0.05, clock=clock)
    assert hold.changed(["A", "B"], in_flight=set()) == ["A", "B"]
    hold.taken(["A", "B"])
    clock.now += 1.5
    assert hold.changed(["A"], in_flight=set()) == ["A"]
    assert hold.due() == ([], None)


def test_a_change_soon_after_a_push_is_held_until_the_changes_stop() -> None:
    clock = Clock()
    hold = BurstHold(window=1.0, quiet=0.05, clock=clock)
    hold.taken(["A"])
    clock.now += 0.2
    assert hold.changed(["A"], in_flight=set()) == []
    released, next_in = hold.due()
    assert released == []
    assert next_in is not None
    assert abs(next_in - 0.05) < 1e-9
    clock.now += 0.03
    assert hold.changed(["A"], in_flight=set()) == []  # changed again: the quiet time starts over
    clock.now += 0.03
    assert hold.due()[0] == []
    clock.now += 0.03
    assert hold.due() == (["A"], None)


def test_a_sku_in_flight_is_held_even_long_after_its_push_left() -> None:
    clock = Clock()
    hold = BurstHold(window=1.0, quiet=0.05, clock=clock)
    hold.taken(["A"])
    clock.now += 5.0
    assert hold.changed(["A"], in_flight={"A"}) == []
    assert "A" in hold.held


def test_one_sku_changed_100_times_in_a_second_is_pushed_twice() -> None:
    clock = Clock()
    hold = BurstHold(window=1.0, quiet=0.05, clock=clock)
    pushes = run_burst(hold, clock, 100, 0.0098, push_takes=0.03)
    assert len(pushes) == 2
    assert pushes[1] - pushes[0] <= 1.0 + 0.02  # at most a window after the first change it held


def test_a_longer_burst_is_pushed_about_once_per_window_and_its_last_state_goes() -> None:
    clock = Clock()
    started = clock.now
    hold = BurstHold(window=1.0, quiet=0.05, clock=clock)
    pushes = run_burst(hold, clock, 300, 0.01, push_takes=0.03)
    last_change = started + 299 * 0.01
    assert 3 <= len(pushes) <= 1 + 3 + 1
    assert pushes[-1] >= last_change  # the final state leaves after the last change
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(pushes[1:]))


def test_without_a_window_every_change_is_ready_at_once() -> None:
    clock = Clock()
    hold = BurstHold(window=0.0, quiet=0.05, clock=clock)
    hold.taken(["A"])
    assert hold.changed(["A"], in_flight={"A"}) == ["A"]
    assert hold.held == {}


def test_while_newer_events_wait_to_be_read_a_held_sku_stays_held_up_to_the_window() -> None:
    clock = Clock()
    hold = BurstHold(window=1.0, quiet=0.05, clock=clock)
    hold.taken(["A"])
    assert hold.changed(["A"], in_flight={"A"}) == []
    clock.now += 0.5  # past the quiet time
    released, next_in = hold.due(behind=True)
    assert released == []
    assert next_in is not None
    assert next_in <= 0.05
    assert hold.due(behind=False) == (["A"], None)  # caught up: it goes
    hold.taken(["A"])
    assert hold.changed(["A"], in_flight=set()) == []
    clock.now += 1.0
    assert hold.due(behind=True) == (["A"], None)  # held for the whole window: it goes anyway
