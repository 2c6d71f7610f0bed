"""Product facts (ecom.products.v1, ecom.prices.v1) and stock per SKU and location (ecom.inventory.v1)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.warehouse import costs
from analytics_service.warehouse.models import ProductFact, SkuStock
from analytics_service.warehouse.orders import to_minor
from contracts import CloudEvent, parse_data
from contracts.catalog.inventory import StockChanged
from contracts.catalog.prices import PriceChanged
from contracts.catalog.products import ProductArchived, ProductCreated, ProductUpdated


async def _facts(session: AsyncSession, skus: list[str]) -> dict[str, ProductFact]:
    found = {
        p.sku: p for p in await session.scalars(select(ProductFact).where(col(ProductFact.sku).in_(skus)))
    }
    for sku in skus:
        if sku not in found:
            found[sku] = ProductFact(sku=sku)
            session.add(found[sku])
    return found


async def on_product_event(session: AsyncSession, event: CloudEvent) -> None:
    """Created, updated or archived: the SKUs' product, category and status, unless a newer version of
    the product was already applied."""
    data = parse_data(event)
    assert isinstance(data, ProductCreated | ProductUpdated | ProductArchived)
    if not data.skus:
        return
    status = "archived" if isinstance(data, ProductArchived) else data.status
    category = None if isinstance(data, ProductArchived) else data.category_id
    for fact in (await _facts(session, list(dict.fromkeys(data.skus)))).values():
        if fact.product_version > data.version:
            continue
        fact.product_id, fact.status, fact.product_version = data.product_id, status, data.version
        if category is not None:
            fact.category_id = category
    await session.flush()


async def on_price_changed(session: AsyncSession, event: CloudEvent, *, reporting_currency: str) -> None:
    """The base price (every channel) and the unit cost of a SKU, unless a later price already applies;
    a cost is kept in the SKU's cost history too, and the orders whose cost in effect it changes are
    costed again (warehouse/costs.py), whenever it arrives."""
    price = parse_data(event)
    assert isinstance(price, PriceChanged)
    if price.channel is not None:
        return
    fact = (await _facts(session, [price.sku]))[price.sku]
    if fact.price_effective_from is None or price.effective_from >= fact.price_effective_from:
        fact.currency, fact.price_minor = price.currency, to_minor(price.amount)
        fact.price_effective_from = price.effective_from
        if price.cost is not None:
            fact.cost_minor = to_minor(price.cost)
    await session.flush()
    if price.cost is None:
        return
    window = await costs.record(
        session, price.sku, price.currency, price.effective_from, to_minor(price.cost)
    )
    if window is None:
        return
    placed = await costs.orders_placed_within(session, price.sku, price.currency, window)
    await costs.cost_again(session, placed, reporting_currency=reporting_currency)


async def on_stock_changed(session: AsyncSession, event: CloudEvent) -> None:
    """Stock of the SKU at each location the event names, unless a newer level is held."""
    change = parse_data(event)
    assert isinstance(change, StockChanged)
    ids = [loc.location_id for loc in change.locations]
    held = {
        s.location_id: s
        for s in await session.scalars(
            select(SkuStock).where(col(SkuStock.sku) == change.sku, col(SkuStock.location_id).in_(ids))
        )
    }
    for loc in change.locations:
        level = held.get(loc.location_id)
        if level is None:
            level = SkuStock(
                sku=change.sku,
                location_id=loc.location_id,
                on_hand=0,
                reserved=0,
                available=0,
                as_of=event.time,
            )
            session.add(level)
        elif level.as_of > event.time:
            continue
        level.on_hand, level.reserved, level.available, level.as_of = (
            loc.on_hand,
            loc.reserved,
            loc.available,
            event.time,
        )
    await session.flush()
