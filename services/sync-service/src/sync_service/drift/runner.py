"""Running reconcile and resync jobs in the background, and the schedule that reconciles every enabled
push channel every `SYNC_DRIFT_CHECK_SECONDS`.

Reconcile: read what the channel holds (GET on its endpoint: `{"listings": {sku: state}}`, bounded in
size and time; or the snapshot it posted), compare it page by page with the listings, record each
difference by field, mark the listings drifted and, when the channel's drift policy is `heal`, put them
back to pending so the push pipeline sends them again. A channel that answers garbage, an error or
nothing fails the job with that error; nothing else changes.

Resync: with source `product-service`, first pull the catalogue from product-service's API into the
projection (`listings.source`: phase `pull`, `pulled` counts the products read); then (phase `push`), page
by page of SKUs, recompute the channel's listings from the facts sync-service holds (its projection of
product-service's events, and of the pull) and push every one of them again; a page's pushes start while
the next page is computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, bindparam, func, not_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from servicekit.db import Database
from servicekit.errors import Conflict
from sync_service import metrics
from sync_service.channels.models import Channel
from sync_service.channels.schemas import PUSHED_KINDS
from sync_service.common import utc_now
from sync_service.drift import service
from sync_service.listings import pages
from sync_service.listings.models import CatalogVariant, Listing
from sync_service.listings.source import CatalogSource, CatalogUnreadable, ServiceToken
from sync_service.push import deliveries
from sync_service.push.deliveries import HELD_COLUMNS, PENDING_COLUMNS, Pending, Sent, held_rows, pending_rows
from sync_service.push.pipeline import PushPipeline

log = logging.getLogger(__name__)

PAGE = 500
RESYNC_PAGE = 1000
"""SKUs a resync page covers (and how many may wait in the channel's queue before the next page starts).
Measured against 500 (bench/README.md, sync_propagation): a page's own statements and transaction cost
about as much as its rows, so 1,000 a page made a resync of a channel in sync 10-20% faster."""
PAGE_ATTEMPTS = 3
PAGES_IN_FLIGHT = 3
MAX_STATE_BYTES = 50 * 1024 * 1024
STATE_TIMEOUT_SECONDS = 30.0


_CHANNELS: Any = Channel.__table__  # type: ignore[attr-defined]
_LISTINGS: Any = Listing.__table__  # type: ignore[attr-defined]


def _bounds(channel_id: str, after: str | None, last: str) -> dict[str, Any]:
    """The parameters of a resync page's statements over its range (`_HELD_QUERIES`, `_BACK_TO_PENDING`,
    `_STILL_PENDING`; an UPDATE's parameters cannot be named as its columns)."""
    bounds: dict[str, Any] = {"b_channel": channel_id, "b_last": last}
    if after is not None:
        bounds["b_after"] = after
    return bounds


def _in_page(bounded_below: bool) -> Any:
    after: Any = bindparam("b_after") if bounded_below else None
    return and_(
        _LISTINGS.c.channel_id == bindparam("b_channel"),
        pages.sku_range(_LISTINGS.c.sku, after, bindparam("b_last")),
    )


_HELD_QUERIES = {
    bounded: select(*HELD_COLUMNS)
    .where(_in_page(bounded), deliveries.held(_LISTINGS))
    .with_for_update(read=True)
    for bounded in (False, True)
}
"""The listings of a page's range the channel holds (`deliveries.held`), as their pushes carry them,
locked against writers until the page commits (FOR SHARE on PostgreSQL). Built once, as every statement of
a page: a statement built per page cost its cache key's walk at each execution."""

_BACK_TO_PENDING = {
    (bounded, failed): update(_LISTINGS)
    .where(
        _in_page(bounded),
        _LISTINGS.c.status == "failed"
        if failed
        else _LISTINGS.c.status.in_(("in_sync", "drifted", "unpublished")),
        _LISTINGS.c.publishable.is_(True) | _LISTINGS.c.acked.is_not(None),
        not_(deliveries.held(_LISTINGS)),
    )
    .values(status="pending", last_error=None, updated_at=bindparam("now", type_=_LISTINGS.c.updated_at.type))
    .returning(*PENDING_COLUMNS)
    for bounded in (False, True)
    for failed in (False, True)
}
"""A page's failed listings (`failed` True), or its other listings the channel has or should have but does
not hold, back to pending, returned as their pushes carry them (`deliveries.PENDING_COLUMNS`)."""

_STILL_PENDING = {
    bounded: select(_LISTINGS.c.sku).where(_in_page(bounded), _LISTINGS.c.status == "pending")
    for bounded in (False, True)
}
"""A page's pending listings (those it handed over among them, and those pending already: their push may be
queued elsewhere or not at all, e.g. after a restart)."""


def _page_end_queries(bounded_below: bool) -> tuple[Any, Any]:
    """The RESYNC_PAGE-th SKU after `after` (parameter, when `bounded_below`), and the last SKU after it."""
    column = CatalogVariant.__table__.c.sku  # type: ignore[attr-defined]
    nth = select(column).order_by(column).offset(RESYNC_PAGE - 1).limit(1)
    last = select(func.max(column))
    if bounded_below:
        nth, last = nth.where(column > bindparam("after")), last.where(column > bindparam("after"))
    return nth, last


_PAGE_ENDS = {bounded: _page_end_queries(bounded) for bounded in (False, True)}


class ChannelState(BaseModel):
    """What a channel's state endpoint answers: the state it holds per SKU."""

    listings: dict[str, dict[str, Any] | None]


class StateUnreadable(Exception):
    """The channel's state could not be read or is not a channel state."""


async def read_state(endpoint: str) -> dict[str, dict[str, Any] | None]:
    try:
        async with httpx.AsyncClient(timeout=STATE_TIMEOUT_SECONDS, follow_redirects=False) as client:
            async with asyncio.timeout(STATE_TIMEOUT_SECONDS):
                async with client.stream("GET", endpoint, headers={"accept": "application/json"}) as response:
                    content = bytearray()
                    async for chunk in response.aiter_bytes():
                        content += chunk
                        if len(content) > MAX_STATE_BYTES:
                            raise StateUnreadable(f"the state is larger than {MAX_STATE_BYTES} bytes")
    except TimeoutError:
        raise StateUnreadable("reading the channel's state timed out") from None
    except httpx.HTTPError as exc:
        raise StateUnreadable(
            f"reading the channel's state failed: {type(exc).__name__}: {exc}"[:500]
        ) from None
    if response.status_code != 200:
        raise StateUnreadable(f"the channel's state endpoint answered HTTP {response.status_code}")
    try:
        return ChannelState.model_validate_json(bytes(content)).listings
    except ValidationError as exc:
        raise StateUnreadable(
            f'the channel\'s state is not {{"listings": {{sku: state}}}}: {exc.errors()[0]["msg"]}'[:500]
        ) from None


class JobRunner:
    """The jobs running in this process and the drift schedule."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.database: Database = app.state.runtime.database
        self.settings = app.state.runtime.settings
        self.tasks: set[asyncio.Task[None]] = set()
        self.schedule: asyncio.Task[None] | None = None
        self.token: ServiceToken | None = None

    @property
    def pipeline(self) -> PushPipeline | None:
        return getattr(self.app.state, "pipeline", None)

    def spawn(
        self, job_id: str, kind: str, channel_id: str, snapshot: Mapping[str, Any] | None = None
    ) -> None:
        work = (
            self.reconcile(job_id, channel_id, snapshot)
            if kind == "reconcile"
            else self.resync(job_id, channel_id)
        )
        task = asyncio.create_task(self._guarded(job_id, work), name=f"sync-job-{job_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guarded(self, job_id: str, work: Any) -> None:
        async with self.database.session() as session:
            started = await service.move_job(session, job_id=job_id, expected="queued", to="running")
            await session.commit()
        if not started:
            work.close()
            return
        try:
            await work
        except asyncio.CancelledError:
            await self._end(job_id, "failed", error="stopped: the service shut down")
            raise
        except (StateUnreadable, CatalogUnreadable) as exc:
            await self._end(job_id, "failed", error=str(exc))
        except Exception as exc:
            log.exception("sync job %s failed", job_id)
            await self._end(job_id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        else:
            await self._end(job_id, "succeeded")

    async def _end(self, job_id: str, status: str, *, error: str | None = None) -> None:
        async with self.database.session() as session:
            await service.move_job(session, job_id=job_id, expected="running", to=status, error=error)
            await session.commit()

    def _push(self, channel_id: str, skus: list[str]) -> None:
        if self.pipeline is not None and skus:
            self.pipeline.enqueue((channel_id, sku) for sku in skus)

    async def reconcile(self, job_id: str, channel_id: str, snapshot: Mapping[str, Any] | None) -> None:
        async with self.database.session() as session:
            channel = await session.get(Channel, channel_id)
            if channel is None:
                raise StateUnreadable("the channel no longer exists")
            code, policy, endpoint = channel.code, channel.drift_policy, channel.endpoint
            total = await session.scalar(
                select(func.count()).select_from(Listing).where(col(Listing.channel_id) == channel_id)
            )
            await service.progress(session, job_id=job_id, total=int(total or 0))
            await session.commit()
        if snapshot is None:
            if not endpoint:
                raise StateUnreadable("the channel has no endpoint to read its state from")
            held: Mapping[str, Any] = await read_state(endpoint)
        else:
            held = snapshot
        seen: set[str] = set()
        after: str | None = None
        while True:
            async with self.database.session() as session:
                query = select(Listing).where(col(Listing.channel_id) == channel_id)
                if after is not None:
                    query = query.where(col(Listing.sku) > after)
                page = (await session.execute(query.order_by(col(Listing.sku)).limit(PAGE))).scalars().all()
                if not page:
                    break
                drifted, skipped = await service.compare_page(
                    session, channel_id=channel_id, job_id=job_id, listings=page, held=held
                )
                healed = (
                    await service.heal(session, channel_id=channel_id, drifted=drifted)
                    if policy == "heal"
                    else []
                )
                if not await service.progress(
                    session,
                    job_id=job_id,
                    processed=len(page),
                    drifted=len(drifted),
                    healed=len(healed),
                    skipped=skipped,
                ):
                    await session.rollback()
                    return
                await session.commit()
            if drifted:
                metrics.DRIFT_DETECTED.labels(code).inc(len(drifted))
            self._push(channel_id, healed)
            seen.update(listing.sku for listing in page)
            after = page[-1].sku
            if len(page) < PAGE:
                break
        unknown = sorted(sku for sku, state in held.items() if sku not in seen and state is not None)
        if unknown:
            async with self.database.session() as session:
                await service.record_unknown(session, channel_id=channel_id, job_id=job_id, skus=unknown)
                await session.commit()

    async def resync(self, job_id: str, channel_id: str) -> None:
        """Page by page of SKUs: recompute the page's listings on the channel, put them back to pending and
        hand them to the push pipeline, so the first pages are on their way while the next are computed.
        With source `product-service`, the catalogue is pulled from its API first."""
        if not await self._pull(job_id):
            return
        async with self.database.session() as session:
            channel = await session.get(Channel, channel_id)
            if channel is None:
                raise StateUnreadable("the channel no longer exists")
            pushed = channel.kind in PUSHED_KINDS
            total = await session.scalar(select(func.count()).select_from(CatalogVariant))
            await service.progress(session, job_id=job_id, total=int(total or 0))
            await session.commit()
        # Pages run concurrently (up to PAGES_IN_FLIGHT, each its own transaction over its own range of
        # SKUs): a page spends most of its time waiting (for the database's round trips, or on SQLite for
        # the write turn), and the pushes drained the previous page before the next one was ready.
        running: set[asyncio.Task[int | None]] = set()
        after: str | None = None
        try:
            while True:
                last = await self._page_end(after)
                if last is None:
                    break
                running.add(asyncio.create_task(self._resync_range(job_id, channel_id, after, last, pushed)))
                after = last
                while len(running) >= PAGES_IN_FLIGHT:
                    if not await self._page_done(running):
                        return
                if pushed and self.pipeline is not None:
                    # Keep pace with the pushes: the next pages are computed while these are pushed, not
                    # the whole catalogue ahead of them (its listings would wait long after being read).
                    await self.pipeline.worker(channel_id).wait_queue_below(RESYNC_PAGE)
            while running:
                if not await self._page_done(running):
                    return
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    @staticmethod
    async def _page_done(running: set[asyncio.Task[int | None]]) -> bool:
        """Wait for one of the running pages to end; False when the job no longer runs (a page failing
        raises its error)."""
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        running.difference_update(done)
        return all(task.result() is not None for task in done)

    async def _page_end(self, after: str | None) -> str | None:
        """The last SKU of the page after `after` (the RESYNC_PAGE-th SKU after it, or the catalogue's
        last); None when no SKU follows."""
        nth, last = _PAGE_ENDS[after is not None]
        parameters = {} if after is None else {"after": after}
        async with self.database.read() as connection:
            end: str | None = (await connection.execute(nth, parameters)).scalar()
            if end is None:
                end = (await connection.execute(last, parameters)).scalar()
        return end

    async def _resync_range(
        self, job_id: str, channel_id: str, after: str | None, last: str, pushed: bool
    ) -> int | None:
        """One page of a resync (`after` < SKU <= `last`), done again when it raced the consumer."""
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            try:
                return await self._resync_page(job_id, channel_id, after, pushed, last=last)
            except (Conflict, IntegrityError):
                # The consumer recomputed some of these listings at the same moment (a compare-and-set
                # lost, or both created one): the page is done again from what is committed now.
                if attempt == PAGE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _pull(self, job_id: str) -> bool:
        """A resync's pull phase when its source is product-service, then its push phase; False when the
        job no longer runs."""
        async with self.database.session() as session:
            job = await service.get_job(session, job_id)
            pulling = job.source == "product-service"
            moved = await service.enter_phase(session, job_id=job_id, phase="pull" if pulling else "push")
            await session.commit()
        if not moved:
            return False
        if pulling:
            if self.token is None:
                self.token = ServiceToken(self.settings)
            source = CatalogSource(self.settings, self.database, self.token)

            async def pulled(products: int) -> bool:
                async with self.database.session() as session:
                    running = await service.progress(session, job_id=job_id, pulled=products)
                    await session.commit()
                return running

            await source.pull(pulled)
            async with self.database.session() as session:
                moved = await service.enter_phase(session, job_id=job_id, phase="push")
                await session.commit()
        return moved

    async def _resync_page(
        self, job_id: str, channel_id: str, after: str | None, pushed: bool, *, last: str
    ) -> int | None:
        """One page of a resync in one transaction: the SKUs after `after` up to `last` (however many the
        range now holds); how many SKUs it held (None: the job no longer runs)."""
        async with self.database.session() as session:
            connection = await session.connection()
            channel = (
                await connection.execute(select(_CHANNELS).where(_CHANNELS.c.id == channel_id))
            ).first()
            if channel is None:
                raise StateUnreadable("the channel no longer exists")
            computed: dict[str, pages.Computed] = {}
            if channel.status != "retired":
                page = await pages.recompute_page(
                    session, channel=channel, after=after, last=last, at=utc_now()
                )
                await pages.write_stamps(session, page)
                count, computed = page.size, page.computed
            else:
                column = col(CatalogVariant.sku)
                query = select(func.count()).where(pages.sku_range(column, after, last))
                count = (await session.execute(query)).scalar_one()
            if not count:
                return 0
            if pushed:
                rows, handed = await self._page_pushes(connection, channel_id, after, last, computed)
                pending = await connection.execute(
                    _STILL_PENDING[after is not None], _bounds(channel_id, after, last)
                )
                others = [sku for (sku,) in pending if sku not in handed]
                self._hand_over_after_commit(session, channel, rows, others)
            if not await service.progress(session, job_id=job_id, processed=count):
                await session.rollback()
                return None
            await session.commit()
        return count

    @staticmethod
    async def _page_pushes(
        connection: Any, channel_id: str, after: str | None, last: str, computed: dict[str, pages.Computed]
    ) -> tuple[list[Pending], set[str]]:
        """What a resync page hands the pipeline (and their SKUs), in its transaction after its writes: the
        listings whose desired state it changed (pending, as computed); the others back to pending in one
        statement each, except those the channel holds by what was recorded (`deliveries.held`: most of
        them, in a resync of a channel in sync), pushed as they are (`Sent.confirm`). Both carry their
        states as stored, read (`RETURNING`, `_HELD_QUERIES`) while the page holds the write turn (SQLite:
        since its first write) or their row locks (PostgreSQL: the UPDATE's, FOR SHARE), so a newer state
        written meanwhile is announced after the hand-over and pushed after them."""
        rows: list[Pending] = []
        for listing in computed.values():
            if listing.changed and listing.status == "pending":  # written pending by the page
                sent = Sent(listing.sku, listing.seq, listing.digest, listing.publishable, listing.desired_at)
                rows.append(Pending(sent, listing.desired_json))
        bounds = _bounds(channel_id, after, last)
        now = utc_now()
        bounded = after is not None
        # A failed listing's push delivers the change that failed: timed. The others' states reached the
        # channel already (or it holds another one, drifted): not timed.
        rows += pending_rows(
            (await connection.execute(_BACK_TO_PENDING[bounded, True], {**bounds, "now": now})).all()
        )
        for sku, seq, digest, publishable, _, text in await connection.execute(
            _BACK_TO_PENDING[bounded, False], {**bounds, "now": now}
        ):
            rows.append(Pending(Sent(sku, seq, digest, publishable, None, False), text))
        rows += held_rows(await connection.execute(_HELD_QUERIES[bounded], bounds))
        return rows, {row.sent.sku for row in rows}

    def _hand_over_after_commit(
        self, session: AsyncSession, channel: Any, rows: list[Pending], others: list[str]
    ) -> None:
        """When the page commits (not before: a rolled back page pushes nothing), hand its pending
        listings to the pipeline as computed, with the channel's row as read, and the page's other SKUs
        by name (those already pending, whose push may be queued elsewhere or not at all, e.g. after a
        restart)."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        channel_id = channel.id

        def hand_over(_: Any) -> None:
            pipeline.enqueue_prepared(channel_id, rows, channel=channel)
            if others:
                pipeline.enqueue(((channel_id, sku) for sku in others), changed=False)

        sa_event.listen(session.sync_session, "after_commit", hand_over, once=True)

    async def start_scheduled(self) -> None:
        """Start a reconcile of every enabled push channel that has none running."""
        async with self.database.session() as session:
            channel_ids = (
                (
                    await session.execute(
                        select(col(Channel.id)).where(
                            col(Channel.status) == "enabled",
                            col(Channel.kind).in_(PUSHED_KINDS),
                            col(Channel.endpoint).is_not(None),
                        )
                    )
                )
                .scalars()
                .all()
            )
        for channel_id in channel_ids:
            async with self.database.session() as session:
                try:
                    job = await service.start_job(
                        session,
                        channel_id=channel_id,
                        kind="reconcile",
                        source="state_endpoint",
                        actor="schedule",
                    )
                except Conflict:
                    continue
            self.spawn(job.id, "reconcile", channel_id)

    async def _schedule_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.start_scheduled()
            except Exception:
                log.warning("scheduled drift check failed", exc_info=True)

    def start(self) -> None:
        every = float(self.settings.drift_check_seconds)
        if every > 0:
            self.schedule = asyncio.create_task(self._schedule_forever(every), name="drift-schedule")

    async def stop(self) -> None:
        tasks = list(self.tasks) + ([self.schedule] if self.schedule is not None else [])
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


async def start_jobs(app: FastAPI) -> None:
    runner = JobRunner(app)
    app.state.jobs = runner
    runner.start()


async def stop_jobs(app: FastAPI) -> None:
    runner: JobRunner | None = getattr(app.state, "jobs", None)
    if runner is not None:
        await runner.stop()
