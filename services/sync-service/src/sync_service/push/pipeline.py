"""The push pipeline: per channel a worker with its own queue, HTTP client, concurrency limit and circuit
breaker, so a slow or dead channel never delays the others.

Listings that became pending are queued by SKU (a set: a SKU changed again before its push left is pushed
once, with its latest state, read when the push is built). A push is a POST of up to `push_batch_size`
listings signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried
on a timeout, a 5xx, a 408/429 or an answer that is not a push answer, with exponential backoff and
±50 % jitter, up to `push_max_attempts`. The channel's answer (the state it now holds per SKU) becomes
the acknowledged state. After `circuit_failure_threshold` consecutive failed attempts the channel's
circuit opens for `circuit_open_seconds`; then one trial push decides whether it closes again. Pending
listings that are not queued (a restart, another replica's change, a paused channel enabled again) are
picked up by a sweep every `push_sweep_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

import aiohttp
from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlmodel import col
from standardwebhooks import Webhook

from servicekit.db import Database
from sync_service import metrics
from sync_service.channels import secrets
from sync_service.channels.models import Channel
from sync_service.channels.schemas import PUSHED_KINDS
from sync_service.common import new_id, utc_now
from sync_service.config import Settings
from sync_service.listings import service as listings
from sync_service.listings.compute import digest_of, state_json
from sync_service.listings.models import Listing
from sync_service.push import deliveries
from sync_service.push.coalesce import BurstHold
from sync_service.push.deliveries import HeldText, Pending, Sent
from sync_service.push.outcomes import Outcome, OutcomeWriter
from sync_service.reference_channel import PushAnswer

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 20 * 1024 * 1024
PREPARED_TTL_SECONDS = 1.0
"""How long a pending listing handed in already read (`ChannelWorker.add_prepared`) may be pushed as it was
read; older, it is read again (another replica may have changed it meanwhile without telling this one)."""
RETRYABLE_STATUSES = {408, 425, 429}


class CircuitBreaker:
    """closed -> (threshold consecutive failures) -> open -> (after open_seconds) half_open: one trial
    push; its success closes the circuit, its failure opens it again."""

    def __init__(self, threshold: int, open_seconds: float) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.failures = 0
        self.opened_at: float | None = None
        self.trial_running = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - self.opened_at >= self.open_seconds else "open"

    def wait_time(self) -> float:
        """Seconds before a push may start (0: now)."""
        if self.opened_at is None:
            return 0.0
        remaining = self.open_seconds - (time.monotonic() - self.opened_at)
        if remaining > 0:
            return remaining
        return 0.05 if self.trial_running else 0.0

    def begin(self) -> None:
        if self.opened_at is not None:
            self.trial_running = True

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.trial_running = False

    def failure(self) -> None:
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = time.monotonic()
        self.trial_running = False


class ChannelWorker:
    """Pushes one channel's pending listings."""

    def __init__(self, pipeline: PushPipeline, channel_id: str) -> None:
        settings = pipeline.settings
        self.pipeline = pipeline
        self.channel_id = channel_id
        self.code = channel_id
        self.queued: set[str] = set()
        self.in_flight: set[str] = set()
        # The queued SKUs not in flight, sorted in descending order (the next batch is taken from its end),
        # kept between batches instead of sorting the queue for each: None after anything joined the queue
        # (`_queue`) or a queued SKU left the flight; SKUs that left the queue since are skipped.
        self._order: list[str] | None = None
        self.hold = BurstHold(settings.push_coalesce_window_seconds, settings.push_coalesce_quiet_seconds)
        # Queued listings handed in already read (a resync reads them as it puts them back to pending), with
        # the monotonic time they were read: pushed as they are, without reading them again.
        self.prepared: dict[str, tuple[float, Pending]] = {}
        # The channel's row read with the latest of them (monotonic time, row): a push of prepared listings
        # only takes it while they are fresh, instead of reading it again.
        self.prepared_channel: tuple[float, Any] | None = None
        self.wake = asyncio.Event()
        self.taken = asyncio.Event()
        self.circuit = CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_open_seconds)
        # `slots`: POSTs in flight (the channel's concurrency limit); `ahead`: pushes read and waiting for a
        # slot or in flight, so the next push's listings are read while the channel answers the current ones.
        self.slots = asyncio.Semaphore(settings.push_concurrency)
        self.ahead = asyncio.Semaphore(2 * settings.push_concurrency)
        # aiohttp (its HTTP parser in C) rather than httpx: a 30 KB push costs about a third of the CPU
        # (bench/README.md, sync_propagation).
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.push_concurrency),
            timeout=aiohttp.ClientTimeout(total=settings.push_timeout_seconds),
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self.task = asyncio.create_task(self.run(), name=f"push-{channel_id}")

    def add(
        self,
        skus: Iterable[str],
        *,
        changed: bool = True,
        written: tuple[Any, list[Pending]] | None = None,
    ) -> None:
        """Queue SKUs. `changed`: their listings may have changed, so a listing handed in already read is
        read again, and a SKU changing in a burst is held back for a moment (`BurstHold`). A sweep, which
        only finds what is pending, passes False: what it finds is queued unless the hold has it.
        `written`: the channel's row (or None) and these listings as the committed recomputation wrote
        them; those queued now, neither queued nor in flight before, are pushed as written, without being
        read again (as `add_prepared`'s)."""
        skus = list(skus)
        if changed:
            if self.prepared:
                for sku in skus:
                    self.prepared.pop(sku, None)
            ready = self.hold.changed(skus, self.in_flight)
            if written is not None and ready:
                channel, rows = written
                wanted = set(ready)
                self.add_prepared([row for row in rows if row.sent.sku in wanted], channel)
        else:
            ready = [sku for sku in skus if sku not in self.hold.held]
        if ready:
            self._queue(ready)
            self.wake.set()
        elif self.hold.held:
            self.wake.set()  # the run loop recomputes when the next held SKU is due

    def add_prepared(self, rows: Iterable[Pending], channel: Any = None) -> None:
        """Queue pending listings read in the transaction that committed them (as `pending_listings` reads
        them): they are pushed without being read again, and with `channel` (the channel's row read in
        that transaction, if given) without reading the channel either. One queued or in flight already is
        queued by SKU only (read again when its push is built), since which of the two states is newer is
        not known; one the channel held (`Sent.confirm`) is then read again as held if it still is, so a
        resync pushes it even so."""
        read_at = time.monotonic()
        if channel is not None:
            self.prepared_channel = (read_at, channel)
        for row in rows:
            sku = row.sent.sku
            if sku not in self.queued and sku not in self.in_flight:
                self.prepared[sku] = (read_at, row)
            elif row.sent.confirm:
                self.prepared[sku] = (0.0, row)  # too old to be pushed as read: read again, as held
            self.queued.add(sku)
        self._order = None
        self.wake.set()

    async def wait_queue_below(self, size: int) -> None:
        """Return when fewer than `size` SKUs are queued: a producer of many listings (a resync) keeps
        pace with the pushes this way. Returns at once while the circuit is not closed (the queue would
        only drain at the pace of trial pushes) or the pipeline stops."""
        stop = self.pipeline.stop_event
        while len(self.queued) >= size and self.circuit.state == "closed" and not stop.is_set():
            self.taken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_wait_either(self.taken, stop), 1.0)

    async def run(self) -> None:
        stop = self.pipeline.stop_event
        while not stop.is_set():
            released, next_in = self.hold.due(self.pipeline.behind())
            if not released:
                await _wait_either(self.wake, stop, timeout=next_in)
                self.wake.clear()
                released, _ = self.hold.due(self.pipeline.behind())
            if released:
                metrics.BURST_HOLDS.labels(self.code).inc(len(released))
                self._queue(released)
            while self.queued and not stop.is_set():
                delay = self.circuit.wait_time()
                if delay > 0:
                    await _sleep(min(delay, 1.0), stop)
                    continue
                await self.ahead.acquire()
                batch = self._next_batch(self.pipeline.settings.push_batch_size)
                if not batch:
                    self.ahead.release()
                    break
                self.queued.difference_update(batch)
                self.in_flight.update(batch)
                self.hold.taken(batch)
                self.taken.set()
                self.circuit.begin()
                task = asyncio.create_task(self._push(batch))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    def _queue(self, skus: Iterable[str]) -> None:
        self.queued.update(skus)
        self._order = None

    def _next_batch(self, size: int) -> list[str]:
        """The next `size` queued SKUs not in flight, in SKU order (taken from `_order`)."""
        order = self._order
        if order is None:
            order = self._order = sorted(self.queued - self.in_flight, reverse=True)
        queued, in_flight = self.queued, self.in_flight
        batch: list[str] = []
        while order and len(batch) < size:
            sku = order.pop()
            if sku in queued and sku not in in_flight:
                batch.append(sku)
        return batch

    async def _push(self, batch: list[str]) -> None:
        outcome: Outcome | None = None
        try:
            try:
                outcome = await self.deliver(batch)
            except Exception:
                log.exception("push to channel %s failed unexpectedly", self.code)
                self.circuit.failure()
                self._queue(batch)
            finally:
                # The channel has answered (or the push ended): the next push may start while this one's
                # outcome is recorded. Its SKUs stay in flight until then, so none is pushed again before
                # its listing says whether the channel took it.
                self.ahead.release()
                if self.queued:
                    self.wake.set()
            if outcome is not None:
                try:
                    await self.pipeline.outcomes.record(outcome)
                except Exception as exc:
                    # Not recorded: the listings are still pending, so they are pushed again (after a pause
                    # when this keeps happening: it counts towards the circuit, as any unexpected failure).
                    log.warning("recording a push to channel %s failed, pushing again: %s", self.code, exc)
                    self.circuit.failure()
                    self._queue(batch)
        finally:
            self.in_flight.difference_update(batch)
            if self._order is not None and not self.queued.isdisjoint(batch):
                self._order = None  # queued again while in flight: ready now
            if self.queued:
                self.wake.set()

    async def deliver(self, batch: list[str]) -> Outcome | None:
        """Push the listings of `batch` still pending; the outcome to record (None: nothing was pushed)."""
        pipeline = self.pipeline
        settings = pipeline.settings
        rows, unread, held = self._take_prepared(batch)
        prepared = self.prepared_channel
        if (
            rows
            and not unread
            and prepared is not None
            and prepared[0] >= time.monotonic() - PREPARED_TTL_SECONDS
        ):
            channel = prepared[1]  # read with these listings, as fresh as they are
        else:
            async with pipeline.database.read() as connection:
                channel = (await connection.execute(_CHANNEL_OF, {"channel_id": self.channel_id})).first()
                if channel is not None and unread:
                    rows += await deliveries.pending_listings(
                        connection, channel_id=self.channel_id, skus=unread
                    )
                    if held:  # a resync's push of a listing the channel held: still held, pushed as such
                        rows += await deliveries.held_listings(
                            connection, channel_id=self.channel_id, skus=held
                        )
                    rows.sort(key=lambda row: row.sent.sku)
        if (
            channel is None
            or channel.status != "enabled"
            or channel.kind not in PUSHED_KINDS
            or not channel.endpoint
        ):
            self.circuit.trial_running = False
            return None
        self.code = channel.code
        endpoint = channel.endpoint
        secret = _signing_secret(
            channel.secret_ciphertext, settings.secrets_key.get_secret_value(), self.channel_id
        )
        if not rows:
            if self.circuit.trial_running:
                self.circuit.trial_running = False
            return None
        texts = [row.desired_json for row in rows]
        body = _push_body(self.code, texts)
        echo = _echo(rows)
        signer = Webhook(secret)
        async with self.slots:
            if self.circuit.state == "open":  # it opened while this push waited: not now
                self._queue(batch)
                return None
            started = utc_now()
            attempts, status_code, error, answer = await self._attempts(signer, endpoint, body, echo)
        if answer is None and pipeline.stop_event.is_set() and error is None:
            self._queue(batch)
            return None
        now = utc_now()
        if answer is not None:
            self.circuit.success()
            metrics.CIRCUIT_OPEN.labels(self.code).set(0)
            return self._acknowledged(rows, answer, now, started, attempts, status_code)
        sent = [row.sent for row in rows]
        return self._failed(sent, error or "push failed", now, started, attempts, status_code)

    def _take_prepared(self, batch: list[str]) -> tuple[list[Pending], list[str], list[str]]:
        """The listings of `batch` handed in already read and still fresh, the SKUs to read, and those of them
        handed in as listings the channel held (`Sent.confirm`), read again as such if they still are."""
        if not self.prepared:
            return [], batch, []
        rows: list[Pending] = []
        unread: list[str] = []
        held: list[str] = []
        oldest = time.monotonic() - PREPARED_TTL_SECONDS
        for sku in batch:
            prepared = self.prepared.pop(sku, None)
            if prepared is not None and prepared[0] >= oldest:
                rows.append(prepared[1])
                continue
            unread.append(sku)
            if prepared is not None and prepared[1].sent.confirm:
                held.append(sku)
        return rows, unread, held

    async def _attempts(
        self, signer: Webhook, endpoint: str, body: str, echo: bytes
    ) -> tuple[int, int | None, str | None, Answer | None]:
        """POST until the channel answers, with backoff between retries: (attempts, status, error, answer)."""
        pipeline = self.pipeline
        settings = pipeline.settings
        attempts, status_code, error, answer = 0, None, None, None
        while attempts < settings.push_max_attempts and not pipeline.stop_event.is_set():
            attempts += 1
            if attempts > 1 and self.circuit.state == "open":
                error = f"{error}; circuit open"
                break
            status_code, error, answer, retryable = await self._attempt(signer, endpoint, body, echo)
            if answer is not None:
                break
            self.circuit.failure()
            metrics.CIRCUIT_OPEN.labels(self.code).set(1 if self.circuit.state != "closed" else 0)
            if not retryable or attempts >= settings.push_max_attempts:
                break
            metrics.DELIVERIES.labels(self.code, "retried").inc()
            backoff = min(
                settings.push_backoff_max_seconds, settings.push_backoff_seconds * 2 ** (attempts - 1)
            )
            await _sleep(backoff * random.uniform(0.5, 1.5), pipeline.stop_event)
        return attempts, status_code, error, answer

    async def _attempt(
        self, signer: Webhook, endpoint: str, body: str, echo: bytes
    ) -> tuple[int | None, str | None, Answer | None, bool]:
        """One signed POST: (status, error, answer, retryable). `echo`: the answer of a channel that holds
        exactly what was pushed (`_echo`)."""
        message_id = new_id()
        moment = datetime.now().astimezone()
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signer.sign(message_id, moment, body),
        }
        try:
            async with asyncio.timeout(self.pipeline.settings.push_timeout_seconds):
                async with self.client.post(
                    endpoint, data=body.encode(), headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    content = bytearray()
                    async for chunk in response.content.iter_any():
                        content += chunk
                        if len(content) > MAX_ANSWER_BYTES:
                            return status, "answer too large", None, False
        except TimeoutError:
            return None, "timed out", None, True
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300], None, True
        if not 200 <= status < 300:
            return status, f"HTTP {status}", None, status >= 500 or status in RETRYABLE_STATUSES
        answer = parse_answer(content, echo)
        if answer is None:
            return status, "the answer is not a push answer (JSON with listings)", None, True
        return status, None, answer, False

    def _acknowledged(
        self,
        rows: list[Pending],
        answer: Answer,
        now: datetime,
        started: datetime,
        attempts: int,
        status_code: int | None,
    ) -> Outcome:
        held = answer.held
        latency_histogram = metrics.DELIVERY_LATENCY.labels(self.code)  # looked up once, not per listing
        drift_counter = metrics.DRIFT_DETECTED.labels(self.code)
        latencies: list[float] = []
        answered: list[tuple[Sent, dict[str, Any] | HeldText | None, str | None]] = []
        confirmed: list[Pending] = []
        unanswered: list[tuple[Sent, str]] = []
        sent = [row.sent for row in rows]
        for row in rows:
            item = row.sent
            if answer.echoed:  # the channel holds exactly the text pushed
                if item.confirm:  # and held it already by what was recorded: nothing to write
                    confirmed.append(row)
                    continue
                answered.append((item, HeldText(row.desired_json), item.digest))
            elif item.sku not in held:
                unanswered.append((item, "the channel did not answer for this SKU"))
                continue
            else:
                state = held[item.sku]
                digest = _held_digest(state, row)
                answered.append((item, state, digest))
                if digest != item.digest:
                    drift_counter.inc()
            if item.timed and item.desired_at is not None:  # not a resync's push of a state held already
                seconds = max(0.0, (now - item.desired_at).total_seconds())
                latencies.append(seconds)
                latency_histogram.observe(seconds)
        delivery = deliveries.delivery_row(
            channel_id=self.channel_id,
            sent=sent,
            outcome="succeeded",
            attempts=attempts,
            status_code=status_code,
            error=None,
            latency_ms=max(latencies) * 1000 if latencies else None,
            started_at=started,
        )
        metrics.DELIVERIES.labels(self.code, "succeeded").inc()
        return Outcome(
            channel_id=self.channel_id,
            now=now,
            answered=answered,
            failed=unanswered,
            delivery=delivery,
            confirmed=confirmed,
        )

    def _failed(
        self,
        sent: list[Sent],
        error: str,
        now: datetime,
        started: datetime,
        attempts: int,
        status_code: int | None,
    ) -> Outcome:
        delivery = deliveries.delivery_row(
            channel_id=self.channel_id,
            sent=sent,
            outcome="failed",
            attempts=attempts,
            status_code=status_code,
            error=error,
            latency_ms=None,
            started_at=started,
        )
        metrics.DELIVERIES.labels(self.code, "failed").inc()
        return Outcome(
            channel_id=self.channel_id,
            now=now,
            answered=[],
            failed=[(item, error) for item in sent],
            delivery=delivery,
        )

    async def close(self) -> None:
        self.task.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(self.task, *self.tasks, return_exceptions=True)
        await self.client.close()


_CHANNELS: Any = Channel.__table__  # type: ignore[attr-defined]
_CHANNEL_OF = select(
    _CHANNELS.c.code,
    _CHANNELS.c.kind,
    _CHANNELS.c.endpoint,
    _CHANNELS.c.status,
    _CHANNELS.c.secret_ciphertext,
).where(_CHANNELS.c.id == bindparam("channel_id"))
"""What a push reads of its channel (every push that reads its listings reads it), built once."""


class PushPipeline:
    def __init__(
        self, database: Database, settings: Settings, behind: Callable[[], bool] = lambda: False
    ) -> None:
        self.database = database
        self.settings = settings
        # Whether events that change listings are known to be waiting to be read (a burst still arriving).
        self.behind = behind
        self.workers: dict[str, ChannelWorker] = {}
        self.stop_event = asyncio.Event()
        self._unlisten: list[Callable[[], None]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self.outcomes = OutcomeWriter(database)

    async def start(self) -> None:
        key = self.database.engine.url.render_as_string(hide_password=False)
        loop = asyncio.get_running_loop()
        stop_listening = listings.listen(
            key,
            lambda pairs, written: loop.call_soon(functools.partial(self.enqueue, pairs, written=written)),
        )
        self._unlisten.append(stop_listening)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="push-sweep")

    def enqueue(
        self,
        pairs: Iterable[tuple[str, str]],
        *,
        changed: bool = True,
        written: listings.Prepared | None = None,
    ) -> None:
        """Queue (channel id, SKU) pairs; `written`: those listings as a committed recomputation wrote
        them (`listings.listen`), pushed without reading them again when they are queued at once."""
        if self.stop_event.is_set():
            return
        by_channel: dict[str, list[str]] = {}
        for channel_id, sku in pairs:
            by_channel.setdefault(channel_id, []).append(sku)
        for channel_id, skus in by_channel.items():
            of_channel = written.get(channel_id) if written else None
            self.worker(channel_id).add(skus, changed=changed, written=of_channel)

    def enqueue_prepared(self, channel_id: str, rows: list[Pending], channel: Any = None) -> None:
        """Queue a channel's pending listings read in the transaction that just committed them (and the
        channel's row read in it, if given)."""
        if rows and not self.stop_event.is_set():
            self.worker(channel_id).add_prepared(rows, channel)

    def worker(self, channel_id: str) -> ChannelWorker:
        worker = self.workers.get(channel_id)
        if worker is None:
            worker = self.workers[channel_id] = ChannelWorker(self, channel_id)
        return worker

    def circuit_state(self, channel_id: str) -> str:
        worker = self.workers.get(channel_id)
        return worker.circuit.state if worker is not None else "closed"

    async def sweep(self) -> None:
        """Queue every pending listing of the enabled push channels."""
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(col(Listing.channel_id), col(Listing.sku))
                    .join(Channel, col(Channel.id) == col(Listing.channel_id))
                    .where(
                        col(Listing.status) == "pending",
                        col(Channel.status) == "enabled",
                        col(Channel.kind).in_(PUSHED_KINDS),
                    )
                )
            ).all()
        self.enqueue(((channel_id, sku) for channel_id, sku in rows), changed=False)

    async def _sweep_forever(self) -> None:
        while not self.stop_event.is_set():
            try:
                await self.sweep()
            except Exception:
                log.warning("push sweep failed", exc_info=True)
            await _sleep(self.settings.push_sweep_seconds, self.stop_event)

    async def stop(self) -> None:
        self.stop_event.set()
        for stop_listening in self._unlisten:
            stop_listening()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await asyncio.gather(*(worker.close() for worker in self.workers.values()), return_exceptions=True)
        await self.outcomes.close()


@functools.lru_cache(maxsize=1024)
def _signing_secret(ciphertext: str, secrets_key: str, channel_id: str) -> str:
    """A channel's signing secret, unsealed once per sealed value (a rotation seals a new one)."""
    return secrets.unseal(ciphertext, key=secrets_key, channel_id=channel_id)


def _push_body(code: str, desired_json: list[str]) -> str:
    """A `PushBody` as JSON, from the listings' desired states as the database holds them (JSON text):
    spliced, not decoded and encoded again."""
    return f'{{"channel":{json.dumps(code)},"listings":[{",".join(desired_json)}]}}'


class Answer(NamedTuple):
    """A channel's answer to a push (`PushAnswer` on the wire: `{"listings": [{"sku", "state"}]}`)."""

    echoed: bool
    """It is, byte for byte, each pushed state under its SKU in the pushed order (`_echo`): the channel holds
    exactly what was pushed, and `held` is not decoded"""
    held: dict[str, dict[str, Any] | None]
    """By SKU, the state the channel holds (None: none); empty when `echoed`"""


def _echo(rows: list[Pending]) -> bytes:
    """The answer of a channel holding exactly what was pushed, serialized as the reference channel does
    (pydantic's compact JSON, in the pushed order): an answer equal to it needs no decoding."""
    items = ",".join(f'{{"sku":{json.dumps(row.sent.sku)},"state":{row.desired_json}}}' for row in rows)
    return f'{{"listings":[{items}]}}'.encode()


def parse_answer(content: bytes | bytearray, echo: bytes) -> Answer | None:
    """A push's answer, or None when it is not a push answer (`PushAnswer` refuses it). An answer equal
    to `echo` is taken without decoding (equal texts are equal states, types included); any other is
    validated by the model."""
    if content == echo:
        return Answer(True, {})
    try:
        answer = PushAnswer.model_validate_json(bytes(content))
    except ValidationError:
        return None
    return Answer(False, {item.sku: item.state for item in answer.listings})


def _held_digest(state: dict[str, Any] | None, row: Pending) -> str | None:
    """`state_hash` of a held state, without hashing it when its canonical JSON is the text pushed (a
    listing's desired state is stored as canonical JSON, and its hash is that text's): a string
    comparison, type-strict (`1`, `1.0` and `true` encode differently)."""
    if state is None:
        return None
    text = state_json(state)
    return row.sent.digest if text == row.desired_json else digest_of(text)


async def _wait_either(event: asyncio.Event, stop: asyncio.Event, timeout: float | None = None) -> None:
    waiters = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
