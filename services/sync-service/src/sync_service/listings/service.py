"""Listings: recompute the desired state of (channel, SKU) pairs from the facts, and read them.

A recomputation writes only the listings whose desired state changed; each write bumps the listing's
`desired_seq` with a compare-and-set on the sequence it read. The pairs a push channel must receive are
handed to the push pipeline once the transaction commits (`changes`)."""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from servicekit.errors import Conflict
from servicekit.http.pagination import Page, PageParams, after_key, cursor_key, make_page
from sync_service.channels.models import Channel
from sync_service.channels.schemas import PUSHED_KINDS
from sync_service.common import utc_now
from sync_service.listings.compute import SkuFacts, desired_state, digest_of, state_json
from sync_service.listings.models import (
    CatalogPrice,
    CatalogProduct,
    CatalogPromotion,
    CatalogStock,
    CatalogVariant,
    Listing,
)
from sync_service.push.deliveries import Pending, Sent

CHUNK = 500
YIELD_EVERY = 50

Changed = list[tuple[str, str]]


Prepared = dict[str, tuple[Any, list[Pending]]]
"""By channel id, the channel's row as a recomputation read it (None when it was handed one) and the
listings it left pending there, as it wrote them (`Pending`: its desired state as the canonical JSON text
the column holds): handed to the push pipeline with the commit, so their pushes need not read them again."""

Listener = Callable[[Changed, Prepared], object]
_listeners: dict[str, list[Listener]] = defaultdict(list)


def _database_key(session: AsyncSession) -> str:
    return _url_key(session.get_bind().engine.url)


@functools.lru_cache(maxsize=64)
def _url_key(url: Any) -> str:
    return str(url.render_as_string(hide_password=False))


def listen(database_url_key: str, callback: Listener) -> Callable[[], None]:
    """Call `callback` with the (channel id, SKU) pairs to push after each commit that changed them, and
    those listings as they were written (`Prepared`), for the database whose URL renders as
    `database_url_key`; returns the function that stops it."""
    _listeners[database_url_key].append(callback)
    return lambda: _listeners[database_url_key].remove(callback)


def _announce_after_commit(session: AsyncSession, changed: Changed, prepared: Prepared) -> None:
    if not changed:
        return
    callbacks = list(_listeners.get(_database_key(session), ()))
    if not callbacks:
        return

    def after_commit(_: Any) -> None:
        for callback in callbacks:
            callback(changed, prepared)

    sa_event.listen(session.sync_session, "after_commit", after_commit, once=True)


def status_for(listing: Listing, channel: Channel) -> str:
    return status_of(
        channel.kind,
        desired_hash=listing.desired_hash,
        acked_hash=listing.acked_hash,
        publishable=listing.publishable,
        acked_none=listing.acked is None,
    )


def status_of(
    kind: str, *, desired_hash: str, acked_hash: str | None, publishable: bool, acked_none: bool
) -> str:
    if kind not in PUSHED_KINDS:
        return "in_sync" if publishable else "unpublished"
    if desired_hash == acked_hash:
        return "in_sync" if publishable else "unpublished"
    if not publishable and acked_none:
        return "unpublished"
    return "pending"


async def plain_rows(session: AsyncSession, model: Any, column: Any, keys: Sequence[str]) -> list[Any]:
    """The rows of `model`'s table whose `column` is one of `keys`, as plain rows (attribute access like
    the model's, without the ORM's per-object bookkeeping: recompute only reads them)."""
    rows: list[Any] = []
    connection = await session.connection()  # Core, not the ORM's execute: no ORM compile or loading
    query = _rows_of(model, column)
    for start in range(0, len(keys), CHUNK):
        rows += (await connection.execute(query, {"keys": keys[start : start + CHUNK]})).all()
    return rows


@functools.cache
def _rows_of(model: Any, column: Any) -> Any:
    """The statement `plain_rows` runs (parameter `keys`), built once per table: a statement built per call
    cost its construction and its cache key's walk each time (the consumer runs these per batch)."""
    return select(model.__table__).where(column.in_(bindparam("keys", expanding=True)))


async def running_promotions(session: AsyncSession, at: datetime) -> Sequence[Any]:
    """The promotions running at `at`, as plain rows (attribute access like `CatalogPromotion`'s)."""
    return (await (await session.connection()).execute(_RUNNING, {"at": at})).all()


_PROMOTIONS: Any = CatalogPromotion.__table__  # type: ignore[attr-defined]
_RUNNING = select(_PROMOTIONS).where(
    _PROMOTIONS.c.starts_at <= bindparam("at", type_=_PROMOTIONS.c.starts_at.type),
    _PROMOTIONS.c.ends_at > bindparam("at", type_=_PROMOTIONS.c.ends_at.type),
)
_CHANNELS: Any = Channel.__table__  # type: ignore[attr-defined]
_LIVE_CHANNELS = select(_CHANNELS).where(_CHANNELS.c.status != "retired")
"""The channels a recomputation serves, as plain rows (attribute access like `Channel`'s); built once, as
`_RUNNING`, since every consumer batch reads both."""


_LISTINGS: Any = Listing.__table__  # type: ignore[attr-defined]
_EXISTING = select(
    _LISTINGS.c.channel_id,
    _LISTINGS.c.sku,
    _LISTINGS.c.desired_hash,
    _LISTINGS.c.desired_seq,
    _LISTINGS.c.acked_hash,
).where(
    _LISTINGS.c.sku.in_(bindparam("skus", expanding=True)),
    _LISTINGS.c.channel_id.in_(bindparam("channel_ids", expanding=True)),
)
"""The listings of some SKUs on some channels, as `recompute` compares them (built once, as `_rows_of`)."""


async def recompute(
    session: AsyncSession, *, skus: Collection[str], at: datetime, channels: Sequence[Any] | None = None
) -> Changed:
    """Recompute the listings of `skus` on `channels` (default: every channel not retired); returns the
    (channel id, SKU) pairs now waiting for a push."""
    if not skus:
        return []
    read_channels = channels is None
    if channels is None:
        live: Sequence[Any] = (await (await session.connection()).execute(_LIVE_CHANNELS)).all()
        channels = live
    if not channels:
        return []
    keys = sorted(skus)
    await session.flush()  # the facts are read through the connection below, which does not autoflush
    variants = await plain_rows(session, CatalogVariant, col(CatalogVariant.sku), keys)
    if not variants:
        return []
    products = {
        p.product_id: p
        for p in await plain_rows(
            session, CatalogProduct, col(CatalogProduct.product_id), sorted({v.product_id for v in variants})
        )
    }
    prices: dict[str, list[CatalogPrice]] = defaultdict(list)
    for price in await plain_rows(session, CatalogPrice, col(CatalogPrice.sku), keys):
        prices[price.sku].append(price)
    stock: dict[str, list[CatalogStock]] = defaultdict(list)
    for row in await plain_rows(session, CatalogStock, col(CatalogStock.sku), keys):
        stock[row.sku].append(row)
    promotions = await running_promotions(session, utc_now())
    channel_ids = [c.id for c in channels]
    existing: dict[tuple[str, str], Any] = {}
    connection = await session.connection()
    for start in range(0, len(keys), CHUNK):
        parameters = {"skus": keys[start : start + CHUNK], "channel_ids": channel_ids}
        for row in (await connection.execute(_EXISTING, parameters)).all():
            existing[(row.channel_id, row.sku)] = row
    now = utc_now()
    changed: Changed = []
    prepared: Prepared = {}
    updates: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for index, variant in enumerate(variants):
        if index and index % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a long recomputation lets the pushes' answers in meanwhile
        product = products.get(variant.product_id)
        if product is None:
            continue
        facts = SkuFacts(
            variant=variant, product=product, prices=prices[variant.sku], stock=stock[variant.sku]
        )
        for channel in channels:
            state, publishable = desired_state(channel, facts, promotions)
            text = state_json(state)  # stored as it is (`CanonicalJSON`), and what a push carries
            digest = digest_of(text)
            current = existing.get((channel.id, variant.sku))
            if current is None:
                listing = Listing(
                    channel_id=channel.id,
                    sku=variant.sku,
                    product_id=product.product_id,
                    desired=state,
                    desired_hash=digest,
                    desired_seq=1,
                    desired_at=at,
                    publishable=publishable,
                    status="pending",
                    created_at=now,
                    updated_at=now,
                )
                if channel.kind not in PUSHED_KINDS:
                    listing.acked, listing.acked_hash, listing.acked_seq, listing.acked_at = (
                        state,
                        digest,
                        1,
                        now,
                    )
                status = listing.status = status_for(listing, channel)
                session.add(listing)
            elif current.desired_hash != digest:
                seq = current.desired_seq
                values: dict[str, Any] = {
                    "product_id": product.product_id,
                    "desired": text,
                    "desired_hash": digest,
                    "desired_seq": seq + 1,
                    "desired_at": at,
                    "publishable": publishable,
                    "updated_at": now,
                    "facts_stamp": None,  # not known here: the next resync recomputes it
                }
                if channel.kind not in PUSHED_KINDS:
                    values.update(acked=state, acked_hash=digest, acked_seq=seq + 1, acked_at=now)
                status = values["status"] = status_of(
                    channel.kind,
                    desired_hash=digest,
                    acked_hash=values.get("acked_hash", current.acked_hash),
                    publishable=publishable,
                    # acked_hash is None exactly when acked is (the hash of no state is None)
                    acked_none=values["acked"] is None if "acked" in values else current.acked_hash is None,
                )
                values.update(b_channel=channel.id, b_sku=variant.sku, b_seq=seq)
                updates["acked" in values].append(values)
            else:
                continue
            if channel.kind in PUSHED_KINDS and status == "pending":
                changed.append((channel.id, variant.sku))
                seq = 1 if current is None else current.desired_seq + 1
                written = Pending(Sent(variant.sku, seq, digest, publishable, at), text)
                prepared.setdefault(channel.id, (channel if read_channels else None, []))[1].append(written)
    await session.flush()
    for with_ack, rows in updates.items():
        await update_desired(session, rows, with_ack=with_ack)
    _announce_after_commit(session, changed, prepared)
    return changed


_DESIRED = (
    "product_id",
    "desired",
    "desired_hash",
    "desired_seq",
    "desired_at",
    "publishable",
    "updated_at",
    "status",
    "facts_stamp",
)
_ACKED = ("acked", "acked_hash", "acked_seq", "acked_at")


async def update_desired(session: AsyncSession, rows: list[dict[str, Any]], *, with_ack: bool) -> None:
    """The new desired states in one statement (executemany), each a compare-and-set on the sequence it
    was computed from: 409 (the consumer retries the batch) when another writer moved one first."""
    if not rows:
        return
    names = _DESIRED + (_ACKED if with_ack else ())
    params = [
        {"b_channel": r["b_channel"], "b_sku": r["b_sku"], "b_seq": r["b_seq"]}
        | {f"v_{n}": r[n] for n in names}
        for r in rows
    ]
    result: Any = await (await session.connection()).execute(_UPDATE_DESIRED[with_ack], params)
    if result.rowcount is not None and 0 <= result.rowcount != len(rows):
        raise Conflict("a listing changed concurrently; retried")


def _update_desired(names: tuple[str, ...]) -> Any:
    return (
        update(_LISTINGS)
        .where(
            _LISTINGS.c.channel_id == bindparam("b_channel"),
            _LISTINGS.c.sku == bindparam("b_sku"),
            _LISTINGS.c.desired_seq == bindparam("b_seq"),
        )
        .values({name: bindparam(f"v_{name}", type_=_LISTINGS.c[name].type) for name in names})
    )


_UPDATE_DESIRED = {
    with_ack: _update_desired(_DESIRED + (_ACKED if with_ack else ())) for with_ack in (False, True)
}
"""`update_desired`'s statement without and with the acknowledged columns, built once (every consumer
batch that changes a listing runs one)."""


async def recompute_channels(session: AsyncSession, *, channel_ids: Collection[str], at: datetime) -> Changed:
    """Recompute every listing of these channels (after the channel changed), in chunks of SKUs."""
    channels = (
        (await session.execute(select(Channel).where(col(Channel.id).in_(sorted(channel_ids)))))
        .scalars()
        .all()
    )
    live = [c for c in channels if c.status != "retired"]
    if not live:
        return []
    skus = (
        (await session.execute(select(col(CatalogVariant.sku)).order_by(col(CatalogVariant.sku))))
        .scalars()
        .all()
    )
    changed: Changed = []
    for start in range(0, len(skus), CHUNK):
        changed += await recompute(session, skus=skus[start : start + CHUNK], at=at, channels=live)
    return changed


async def skus_in_categories(session: AsyncSession, categories: Collection[str]) -> set[str]:
    """SKUs of the products whose category path meets `categories`."""
    wanted = set(categories)
    rows = (
        await session.execute(select(col(CatalogProduct.product_id), col(CatalogProduct.category_path)))
    ).all()
    product_ids = [product_id for product_id, path in rows if wanted.intersection(path or ())]
    skus: set[str] = set()
    for start in range(0, len(product_ids), CHUNK):
        query = select(col(CatalogVariant.sku)).where(
            col(CatalogVariant.product_id).in_(product_ids[start : start + CHUNK])
        )
        skus.update((await session.execute(query)).scalars().all())
    return skus


async def list_listings(
    session: AsyncSession,
    *,
    channel_id: str,
    status: str | None,
    sku: str | None,
    product_id: str | None,
    page: PageParams,
) -> Page[Listing]:
    """A channel's listings by SKU, optionally of one status, SKU or product; cursor pagination."""
    key = cursor_key(page.cursor, ("sku", str))
    query = select(Listing).where(col(Listing.channel_id) == channel_id)
    if status is not None:
        query = query.where(col(Listing.status) == status)
    if sku is not None:
        query = query.where(col(Listing.sku) == sku)
    if product_id is not None:
        query = query.where(col(Listing.product_id) == product_id)
    if key is not None:
        query = query.where(after_key([col(Listing.sku)], key))
    rows = (await session.execute(query.order_by(col(Listing.sku)).limit(page.limit + 1))).scalars().all()
    return make_page(list(rows), page.limit, lambda listing: {"sku": listing.sku})
