"""One page of a channel's listings recomputed set-based: what a resync does for each page of SKUs.

A page is a range of SKUs (after a cursor, up to its last SKU). First one statement reads each SKU's facts
version and its listing on the channel (its `facts_stamp` and its desired state as stored, canonical JSON
text): a listing stamped with the SKU's current facts version and the page's context
(`compute.context_digest`: the channel, the promotions running for it, the computation's version) is taken
as it is, not computed again. The other SKUs' facts are read in three statements bounded by the page's SKU
range instead of lists of keys: the variants with their product and their listing on the channel (one row
each), the prices in the channel's currency, the stock. Their desired states are then computed in one
loop; each is serialized once, as canonical JSON (`state_json`), and that one text gives both its hash and
what a push carries. Only the listings whose desired state changed are written: new ones in one INSERT,
changed ones in one compare-and-set UPDATE on the sequence they were computed from (409, `Conflict`, when
another writer moved one first; the caller does the page again); an unchanged one computed again gets its
stamp (a compare-and-set too; losing it only means computing it again next time).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, Text, and_, bindparam, cast, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.gcpause import cyclic_gc_paused
from sync_service.channels.schemas import PUSHED_KINDS
from sync_service.common import utc_now
from sync_service.listings.compute import (
    ALL_CHANNELS,
    STAMP_SEPARATOR,
    CanonicalText,
    SkuFacts,
    context_digest,
    desired_state,
    digest_of,
    facts_stamp,
    state_json,
)
from sync_service.listings.models import (
    CatalogPrice,
    CatalogProduct,
    CatalogStock,
    CatalogVariant,
    Listing,
)
from sync_service.listings.service import YIELD_EVERY, running_promotions, status_of, update_desired

_VARIANTS: Any = CatalogVariant.__table__  # type: ignore[attr-defined]
_PRODUCTS: Any = CatalogProduct.__table__  # type: ignore[attr-defined]
_PRICES: Any = CatalogPrice.__table__  # type: ignore[attr-defined]
_STOCK: Any = CatalogStock.__table__  # type: ignore[attr-defined]
_LISTINGS: Any = Listing.__table__  # type: ignore[attr-defined]


class _Variant(NamedTuple):
    sku: str
    gtin: str | None
    attributes: dict[str, Any]


class _Product(NamedTuple):
    product_id: str
    status: str
    title: str
    brand: str | None
    description: str | None
    attributes: dict[str, Any]
    media_urls: list[str]
    channels: list[str]
    category_path: list[str]
    completeness: dict[str, float]


class Computed(NamedTuple):
    """A listing of the page computed again, as it now stands (after the page's writes)."""

    sku: str
    seq: int
    digest: str
    publishable: bool
    desired_at: datetime
    """When the change that produced its desired state happened"""
    desired_json: str
    """Its desired state as canonical JSON (`state_json`)"""
    status: str
    """Its status as read, or as written when its desired state changed"""
    changed: bool


class Page(NamedTuple):
    size: int
    """How many SKUs the page's range holds (0: no SKU after the cursor)"""
    computed: dict[str, Computed]
    """By SKU, the listings computed again (a SKU whose product is unknown has none): those not stamped
    with the facts and context they hold now; the others are taken as they are stored"""
    stamps: list[dict[str, Any]]
    """The stamps of the listings computed again to the state they hold (`write_stamps` writes them)"""


def sku_range(column: Any, after: Any, last: Any) -> Any:
    """`after` < column <= `last` (no lower bound when `after` is None): a page's range of SKUs (values or
    bind parameters)."""
    return column <= last if after is None else and_(column > after, column <= last)


_PAGE_COLUMNS = (
    _VARIANTS.c.sku,
    _VARIANTS.c.gtin,
    cast(_VARIANTS.c.attributes, Text),  # JSON as text, decoded in the loop (json.loads, nothing around it)
    _PRODUCTS.c.product_id,
    _PRODUCTS.c.status,
    _PRODUCTS.c.title,
    _PRODUCTS.c.brand,
    _PRODUCTS.c.description,
    cast(_PRODUCTS.c.attributes, Text),
    cast(_PRODUCTS.c.media_urls, Text),
    cast(_PRODUCTS.c.channels, Text),
    cast(_PRODUCTS.c.category_path, Text),
    cast(_PRODUCTS.c.completeness, Text),
    _LISTINGS.c.desired_hash,
    _LISTINGS.c.desired_seq,
    _LISTINGS.c.desired_at,
    _LISTINGS.c.acked_hash,
    _LISTINGS.c.status,
)


def _unstamped_query(bounded_below: bool) -> Any:
    """The SKUs of a page's range whose listing on the channel is not stamped with the facts version they
    hold now and the page's context (or that have none), with that version (parameters `channel_id`,
    `context` (`facts_stamp`'s text after the version), `after` when `bounded_below`, `last`); and the
    count of the range's SKUs. The stamp is compared in the database: in a resync of a channel whose
    facts did not change, no row comes back. Built once: a statement built per page cost its cache key's
    walk over every column and join at each execution."""
    after: Any = bindparam("after") if bounded_below else None
    in_range = sku_range(_VARIANTS.c.sku, after, bindparam("last"))
    current = cast(_VARIANTS.c.facts_version, String()) + bindparam("context", type_=String())
    unstamped = (
        select(_VARIANTS.c.sku, _VARIANTS.c.facts_version)
        .select_from(
            _VARIANTS.outerjoin(
                _LISTINGS,
                and_(_LISTINGS.c.channel_id == bindparam("channel_id"), _LISTINGS.c.sku == _VARIANTS.c.sku),
            )
        )
        .where(in_range, _LISTINGS.c.facts_stamp.is_distinct_from(current))
        .order_by(_VARIANTS.c.sku)
    )
    return unstamped, select(func.count()).select_from(_VARIANTS).where(in_range)


_UNSTAMPED_QUERIES = {bounded: _unstamped_query(bounded) for bounded in (False, True)}


async def recompute_page(
    session: AsyncSession,
    *,
    channel: Any,
    after: str | None,
    last: str,
    at: datetime,
) -> Page:
    """Recompute the listings on `channel` (its row: the `Channel` model's attributes) of the SKUs after
    `after` up to `last` (however many the range now holds) whose facts changed since their desired state
    was computed (or that have none stamped); `at` is the time a changed desired state is stamped with."""
    connection = await session.connection()
    promotions = list(await running_promotions(session, utc_now()))
    context = context_digest(channel, promotions)
    parameters = {"channel_id": channel.id, "last": last, "context": STAMP_SEPARATOR + context}
    if after is not None:
        parameters["after"] = after
    unstamped, count = _UNSTAMPED_QUERIES[after is not None]
    total = (await connection.execute(count, parameters)).scalar_one()
    if not total:
        return Page(0, {}, [])
    stale = {
        sku: facts_stamp(version, context) for sku, version in await connection.execute(unstamped, parameters)
    }
    computed: dict[str, Computed] = {}
    stamps: list[dict[str, Any]] = []
    if stale:
        computer = _PageComputer(channel, promotions, at, stale, computed)
        await computer.read_and_compute(connection, after, last)
        await computer.write(session, connection)
        stamps = computer.stamps
    return Page(total, computed, stamps)


async def write_stamps(session: AsyncSession, page: Page) -> None:
    """The stamps of a page's listings computed again to the state they hold, each a compare-and-set on
    the sequence computed (one that moved meanwhile keeps its stamp, or none: it is computed again next
    time). Written with the page's other writes (`recompute_page` reads, and writes only new states)."""
    if page.stamps:
        await (await session.connection()).execute(
            update(_LISTINGS)
            .where(
                _LISTINGS.c.channel_id == bindparam("b_channel"),
                _LISTINGS.c.sku == bindparam("b_sku"),
                _LISTINGS.c.desired_seq == bindparam("b_seq"),
            )
            .values(facts_stamp=bindparam("v_stamp")),
            page.stamps,
        )


class _PageComputer:
    """The desired states of a page's stale SKUs, and the writes they need."""

    def __init__(
        self,
        channel: Any,
        promotions: list[Any],
        at: datetime,
        stale: dict[str, str],
        computed: dict[str, Computed],
    ) -> None:
        self.channel = channel
        self.promotions = promotions
        self.at = at
        self.stale = stale
        self.computed = computed
        self.prices: dict[str, list[Any]] = {}
        self.stock: dict[str, list[Any]] = {}
        self.now = utc_now()
        self.pushed = channel.kind in PUSHED_KINDS
        self.products: dict[str, _Product] = {}
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.stamps: list[dict[str, Any]] = []

    async def read_and_compute(self, connection: Any, after: str | None, last: str) -> None:
        """Read the facts of the page's range (`after` < SKU <= `last`) and compute its stale SKUs."""
        channel = self.channel
        query = (
            select(*_PAGE_COLUMNS)
            .select_from(
                _VARIANTS.outerjoin(_PRODUCTS, _PRODUCTS.c.product_id == _VARIANTS.c.product_id).outerjoin(
                    _LISTINGS, and_(_LISTINGS.c.channel_id == channel.id, _LISTINGS.c.sku == _VARIANTS.c.sku)
                )
            )
            .where(sku_range(_VARIANTS.c.sku, after, last))
            .order_by(_VARIANTS.c.sku)
        )
        stale = self.stale
        rows = [row for row in (await connection.execute(query)).all() if row[0] in stale]
        price_query = select(
            _PRICES.c.sku, _PRICES.c.currency, _PRICES.c.channel, _PRICES.c.amount_minor
        ).where(
            sku_range(_PRICES.c.sku, after, last),
            _PRICES.c.currency == channel.currency,
            _PRICES.c.channel.in_((ALL_CHANNELS, channel.code)),
        )
        for price in (await connection.execute(price_query)).all():
            self.prices.setdefault(price[0], []).append(price)
        stock_query = select(_STOCK.c.sku, _STOCK.c.location_code, _STOCK.c.available).where(
            sku_range(_STOCK.c.sku, after, last)
        )
        if channel.location_codes:
            stock_query = stock_query.where(_STOCK.c.location_code.in_(list(channel.location_codes)))
        for level in (await connection.execute(stock_query)).all():
            self.stock.setdefault(level[0], []).append(level)
        for start in range(0, len(rows), YIELD_EVERY):
            if start:
                await asyncio.sleep(0)  # a long page lets the pushes' answers in meanwhile
            with cyclic_gc_paused():
                self.compute(rows[start : start + YIELD_EVERY])

    async def write(self, session: AsyncSession, connection: Any) -> None:
        if self.inserts:
            await connection.execute(insert(_LISTINGS), self.inserts)
        if self.updates:
            updates = self.updates
            await update_desired(session, [u for u in updates if "acked" not in u], with_ack=False)
            await update_desired(session, [u for u in updates if "acked" in u], with_ack=True)

    def compute(self, rows: Sequence[Any]) -> None:
        channel, products, computed = self.channel, self.products, self.computed
        prices, stock, promotions = self.prices, self.stock, self.promotions
        none: tuple[Any, ...] = ()
        loads = json.loads
        for row in rows:
            product_id = row[3]
            if product_id is None:
                continue
            product = products.get(product_id)
            if product is None:
                product = products[product_id] = _Product(
                    product_id,
                    row[4],
                    row[5],
                    row[6],
                    row[7],
                    loads(row[8]),
                    loads(row[9]),
                    loads(row[10]),
                    loads(row[11]),
                    loads(row[12]),
                )
            sku = row[0]
            facts = SkuFacts(
                _Variant(sku, row[1], loads(row[2])), product, prices.get(sku, none), stock.get(sku, none)
            )
            state, publishable = desired_state(channel, facts, promotions)
            text = state_json(state)
            digest = digest_of(text)
            desired_hash, seq, desired_at, _, status = row[13:18]
            if desired_hash == digest:
                computed[sku] = Computed(sku, seq, digest, publishable, desired_at, text, status, False)
                self.stamps.append(
                    {"b_channel": channel.id, "b_sku": sku, "b_seq": seq, "v_stamp": self.stale[sku]}
                )
                continue
            self._write(state, text, digest, publishable, row)

    def _write(
        self, state: dict[str, Any], text: CanonicalText, digest: str, publishable: bool, row: Any
    ) -> None:
        """The INSERT or compare-and-set UPDATE of a listing whose desired state changed."""
        channel, at, now, pushed = self.channel, self.at, self.now, self.pushed
        sku, product_id = row[0], row[3]
        desired_hash, seq, _, acked_hash, _ = row[13:18]
        values: dict[str, Any] = {
            "product_id": product_id,
            "desired": text,  # stored as it is (`models.CanonicalJSON`)
            "desired_hash": digest,
            "desired_at": at,
            "publishable": publishable,
            "updated_at": now,
            "facts_stamp": self.stale[sku],
        }
        if not pushed:  # a feed holds what it is given: acknowledged as computed
            values.update(acked=state, acked_hash=digest, acked_at=now)
        if desired_hash is None:  # no listing yet
            seq = 1
            values.update(
                channel_id=channel.id,
                sku=sku,
                desired_seq=1,
                acked_seq=1 if not pushed else 0,
                created_at=now,
            )
            acked_hash = None
        else:
            values.update(b_channel=channel.id, b_sku=sku, b_seq=seq)
            seq += 1
            values["desired_seq"] = seq
            if not pushed:
                values["acked_seq"] = seq
        status = values["status"] = status_of(
            channel.kind,
            desired_hash=digest,
            acked_hash=values.get("acked_hash", acked_hash),
            publishable=publishable,
            acked_none=values.get("acked_hash", acked_hash) is None,
        )
        (self.inserts if desired_hash is None else self.updates).append(values)
        self.computed[sku] = Computed(sku, seq, digest, publishable, at, text, status, True)
