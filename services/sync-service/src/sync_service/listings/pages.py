"""One page of a channel's listings recomputed set-based: what a resync does for each page of SKUs.

A page is the next `limit` SKUs (by SKU) after a cursor. Its facts are read in three statements bounded by
the page's SKU range instead of lists of keys: the variants with their product and their listing on the
channel (one row each), the prices in the channel's currency, the stock. The desired states are then
computed in one loop; each is serialized once, as canonical JSON (`state_json`), and that one text gives
both its hash and what a push carries. Only the listings whose desired state changed are written: new ones
in one INSERT, changed ones in one compare-and-set UPDATE on the sequence they were computed from (409,
`Conflict`, when another writer moved one first; the caller does the page again).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, and_, cast, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.gcpause import cyclic_gc_paused
from sync_service.channels.schemas import PUSHED_KINDS
from sync_service.common import utc_now
from sync_service.listings.compute import ALL_CHANNELS, SkuFacts, desired_state, digest_of, state_json
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
    """A listing of the page as it now stands (after the page's writes): what a push of it carries."""

    sku: str
    seq: int
    digest: str
    publishable: bool
    desired_at: datetime
    desired_json: str
    """Its desired state as canonical JSON (`state_json`)"""
    status: str
    """Its status as read, or as written when its desired state changed"""
    changed: bool


class Page(NamedTuple):
    skus: list[str]
    """The page's SKUs, in order (empty: no SKU after the cursor)"""
    computed: dict[str, Computed]
    """By SKU, the listings computed (a SKU whose product is unknown has none)"""


def _range(column: Any, after: str | None, last: str) -> Any:
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


async def recompute_page(
    session: AsyncSession, *, channel: Any, after: str | None, limit: int, at: datetime
) -> Page:
    """Recompute the listings on `channel` (its row: the `Channel` model's attributes) of the next `limit`
    SKUs after `after`; `at` is the time a changed desired state is stamped with."""
    connection = await session.connection()
    query = (
        select(*_PAGE_COLUMNS)
        .select_from(
            _VARIANTS.outerjoin(_PRODUCTS, _PRODUCTS.c.product_id == _VARIANTS.c.product_id).outerjoin(
                _LISTINGS, and_(_LISTINGS.c.channel_id == channel.id, _LISTINGS.c.sku == _VARIANTS.c.sku)
            )
        )
        .order_by(_VARIANTS.c.sku)
        .limit(limit)
    )
    if after is not None:
        query = query.where(_VARIANTS.c.sku > after)
    rows = (await connection.execute(query)).all()
    if not rows:
        return Page([], {})
    last = rows[-1][0]
    prices: dict[str, list[Any]] = {}
    price_query = select(_PRICES.c.sku, _PRICES.c.currency, _PRICES.c.channel, _PRICES.c.amount_minor).where(
        _range(_PRICES.c.sku, after, last),
        _PRICES.c.currency == channel.currency,
        _PRICES.c.channel.in_((ALL_CHANNELS, channel.code)),
    )
    for price in (await connection.execute(price_query)).all():
        prices.setdefault(price[0], []).append(price)
    stock: dict[str, list[Any]] = {}
    stock_query = select(_STOCK.c.sku, _STOCK.c.location_code, _STOCK.c.available).where(
        _range(_STOCK.c.sku, after, last)
    )
    if channel.location_codes:
        stock_query = stock_query.where(_STOCK.c.location_code.in_(list(channel.location_codes)))
    for level in (await connection.execute(stock_query)).all():
        stock.setdefault(level[0], []).append(level)
    promotions = list(await running_promotions(session, utc_now()))

    computer = _PageComputer(channel, prices, stock, promotions, at)
    for start in range(0, len(rows), YIELD_EVERY):
        if start:
            await asyncio.sleep(0)  # a long page lets the pushes' answers in meanwhile
        with cyclic_gc_paused():
            computer.compute(rows[start : start + YIELD_EVERY])
    if computer.inserts:
        await connection.execute(insert(_LISTINGS), computer.inserts)
    if computer.updates:
        updates = computer.updates
        await update_desired(session, [u for u in updates if "acked" not in u], with_ack=False)
        await update_desired(session, [u for u in updates if "acked" in u], with_ack=True)
    return Page([row[0] for row in rows], computer.computed)


class _PageComputer:
    """The desired states of a page's rows, and the writes they need."""

    def __init__(
        self,
        channel: Any,
        prices: dict[str, list[Any]],
        stock: dict[str, list[Any]],
        promotions: list[Any],
        at: datetime,
    ) -> None:
        self.channel = channel
        self.prices = prices
        self.stock = stock
        self.promotions = promotions
        self.at = at
        self.now = utc_now()
        self.pushed = channel.kind in PUSHED_KINDS
        self.products: dict[str, _Product] = {}
        self.computed: dict[str, Computed] = {}
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

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
                continue
            self._write(state, text, digest, publishable, row)

    def _write(self, state: dict[str, Any], text: str, digest: str, publishable: bool, row: Any) -> None:
        """The INSERT or compare-and-set UPDATE of a listing whose desired state changed."""
        channel, at, now, pushed = self.channel, self.at, self.now, self.pushed
        sku, product_id = row[0], row[3]
        desired_hash, seq, _, acked_hash, _ = row[13:18]
        values: dict[str, Any] = {
            "product_id": product_id,
            "desired": state,
            "desired_hash": digest,
            "desired_at": at,
            "publishable": publishable,
            "updated_at": now,
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
