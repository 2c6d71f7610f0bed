"""Recording finished pushes: one transaction for the outcomes of every push that finished meanwhile.

A push's outcome (the listings the channel acknowledged, those it did not answer for or that failed, and
the delivery row) was a transaction of its own. With a dozen pushes in flight over several channels
those transactions queued for the database's one writer (SQLite) behind each other and behind the
consumer's, each holding it for several trips to the database thread. Here a push hands its outcome to
`OutcomeWriter` and waits for it to be committed; the writer takes every outcome handed in since its last
round and writes them together (each kind of statement once, as executemany), so the cost of a round is
shared by the pushes in it. Every write is the same compare-and-set as before (`deliveries`), so grouping
changes nothing about which outcome wins a race. A failed round fails each of its pushes, as a failed
transaction of its own would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from servicekit.db import Database
from sync_service.push import deliveries
from sync_service.push.deliveries import Held, Pending, Sent
from sync_service.push.models import Delivery

log = logging.getLogger(__name__)

DELIVERIES = Delivery.__table__  # type: ignore[attr-defined]


@dataclass
class Outcome:
    """What one push left to record."""

    channel_id: str
    now: datetime
    answered: list[tuple[Sent, Held, str | None]]
    """(listing as pushed, the state the channel holds, its state_hash)"""
    failed: list[tuple[Sent, str]]
    delivery: dict[str, Any]
    """The delivery row's values (`deliveries.delivery_row`)"""
    confirmed: list[Pending] = field(default_factory=list)
    """The listings (as pushed, with their desired state as pushed) the channel held already (`Sent.confirm`)
    whose answer echoed them: written only for those that moved meanwhile (`deliveries.confirm_many`)"""
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class OutcomeWriter:
    """Writes the outcomes handed in, a round (one transaction) at a time."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._waiting: list[Outcome] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def record(self, outcome: Outcome) -> None:
        """Hand in a push's outcome and wait until it is committed (or its round failed: raises)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="push-outcomes")
        self._waiting.append(outcome)
        self._wake.set()
        await asyncio.shield(outcome.done)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            round_, self._waiting = self._waiting, []
            if round_:
                try:
                    await self._write(round_)
                except Exception as exc:
                    log.warning("recording %d push outcomes failed: %s", len(round_), exc)
                    for outcome in round_:
                        if not outcome.done.done():
                            outcome.done.set_exception(exc)
                else:
                    for outcome in round_:
                        if not outcome.done.done():
                            outcome.done.set_result(None)
            if self._closing and not self._waiting:
                return

    async def _write(self, round_: list[Outcome]) -> None:
        async with self.database.session() as session:
            moved = await deliveries.confirm_many(
                session,
                confirmed=[(o.channel_id, sent, text, o.now) for o in round_ for sent, text in o.confirmed],
            )
            await deliveries.acknowledge_many(
                session,
                answers=[
                    (o.channel_id, sent, held, digest, o.now)
                    for o in round_
                    for sent, held, digest in o.answered
                ]
                + moved,
            )
            await deliveries.fail_many(
                session,
                failures=[(o.channel_id, sent, error, o.now) for o in round_ for sent, error in o.failed],
            )
            await session.execute(insert(DELIVERIES), [o.delivery for o in round_])

    async def close(self) -> None:
        """Write what was handed in (the round under way ends as it would), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
