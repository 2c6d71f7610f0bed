"""Holding back a SKU that changes in a burst, so a channel sees it once or twice, not once per change.

The worker's queue already folds changes that come before a SKU's push leaves. A burst that lasts longer
than a push (a SKU repriced 100 times in a second) would still be pushed every time a push returned — a
dozen times a second. Here the first change of a SKU goes at once (a lone change pays no delay); a change
that comes while the SKU is in flight or within `window` seconds of its last push is held. A held SKU goes,
with its latest state, once it has not changed for `quiet` seconds and no newer event is known to be
waiting (the consumer has read all it knows of), and in any case once it has been held for `window`
seconds. A burst is then delivered about once per `window` while it lasts, its last state always goes,
and no change waits longer than `window` for its push to start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class BurstHold:
    """Which changed SKUs a channel worker may queue now, and which it holds for a while."""

    def __init__(self, window: float, quiet: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.quiet = quiet
        self.clock = clock
        self.sent_at: dict[str, float] = {}  # SKU -> when its last push took it
        self.held: dict[str, tuple[float, float]] = {}  # SKU -> (first held, last change)
        self._pruned_at = clock()

    def changed(self, skus: Iterable[str], in_flight: set[str]) -> list[str]:
        """Record that `skus` changed; the ones to queue now (the others are held)."""
        if self.window <= 0:
            return list(skus)
        now = self.clock()
        ready: list[str] = []
        for sku in skus:
            held = self.held.get(sku)
            if held is not None:
                self.held[sku] = (held[0], now)
            elif sku in in_flight or now - self.sent_at.get(sku, -self.window) < self.window:
                self.held[sku] = (now, now)
            else:
                ready.append(sku)
        return ready

    def taken(self, skus: Iterable[str]) -> None:
        """`skus` leave in a push now."""
        if self.window <= 0:
            return
        now = self.clock()
        for sku in skus:
            self.sent_at[sku] = now
        if now - self._pruned_at >= self.window:
            self._pruned_at = now
            self.sent_at = {sku: at for sku, at in self.sent_at.items() if now - at < self.window}

    def due(self, behind: bool = False) -> tuple[list[str], float | None]:
        """The held SKUs whose time has come (they leave the hold), and the seconds until the next one
        may be due (None: nothing held). `behind`: newer events are known to be waiting to be read."""
        if not self.held:
            return [], None
        now = self.clock()
        released: list[str] = []
        next_in: float | None = None
        for sku, (first, last) in self.held.items():
            at = first + self.window if behind else min(last + self.quiet, first + self.window)
            if at <= now:
                released.append(sku)
            elif next_in is None or at - now < next_in:
                next_in = at - now
        for sku in released:
            del self.held[sku]
        if behind and next_in is not None:  # some SKU is still held
            # Look again soon: the consumer may catch up before the next SKU's hold ends.
            next_in = min(next_in, max(self.quiet, 0.01))
        return released, next_in
