"""Inbound deliveries: announced idempotently by the supplier's reference, received once."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event
from contracts.catalog.inbound import InboundAnnounced, InboundLine, InboundReceived
from servicekit.bounds import CLOCK_SKEW
from servicekit.db import insert_if_absent
from servicekit.errors import Conflict, NotFound, UnprocessableEntity
from servicekit.events import outbox
from servicekit.http.idempotency import fingerprint
from servicekit.transitions import compare_and_set_or_conflict
from sync_service.common import new_id, utc_now
from sync_service.inbound.models import InboundDelivery
from sync_service.inbound.schemas import InboundCreate, InboundLineIn, ReceiptCreate
from sync_service.listings import facts
from sync_service.listings.models import CatalogVariant


async def by_reference(session: AsyncSession, supplier: str, reference: str) -> InboundDelivery | None:
    query = select(InboundDelivery).where(
        col(InboundDelivery.supplier) == supplier, col(InboundDelivery.supplier_reference) == reference
    )
    return (await session.execute(query.execution_options(populate_existing=True))).scalars().first()


async def _refuse_unknown_skus(session: AsyncSession, lines: list[InboundLineIn]) -> None:
    """422 naming each line whose SKU no product of product-service has (as its events tell sync-service):
    stock can only arrive for a product that exists. The location is not checked: a new warehouse's first
    delivery is a location sync-service has seen no stock at yet."""
    known = await facts.known(session, col(CatalogVariant.sku), {line.sku for line in lines})
    unknown = [(index, line.sku) for index, line in enumerate(lines) if line.sku not in known]
    if unknown:
        raise UnprocessableEntity(
            f"Unknown SKU(s): {', '.join(sku for _, sku in unknown[:10])}. No product of product-service has "
            "them (as its events tell sync-service; a product created moments ago may not have arrived yet).",
            extra={
                "errors": [
                    {"field": f"body.lines.{index}.sku", "message": "unknown SKU", "type": "unknown_sku"}
                    for index, _ in unknown
                ]
            },
        )


async def announce(session: AsyncSession, *, body: InboundCreate) -> tuple[InboundDelivery, bool]:
    """(delivery, created). The same supplier reference with the same content again returns the first
    delivery; with other content, 409. Of concurrent announcements of one reference exactly one
    creates it (the unique key is the claim) and publishes ecom.inbound.announced.v1. A line of an unknown
    SKU is 422 (`_refuse_unknown_skus`)."""
    await _refuse_unknown_skus(session, body.lines)
    request_fingerprint = fingerprint(body.model_dump(mode="json"))
    created = await insert_if_absent(
        session,
        InboundDelivery.__table__,  # type: ignore[attr-defined]
        {
            "id": new_id(),
            "supplier": body.supplier,
            "supplier_reference": body.supplier_reference,
            "kind": body.kind,
            "location_id": body.location_id,
            "expected_date": body.expected_date,
            "lines": [line.model_dump() for line in body.lines],
            "received_lines": None,
            "status": "announced",
            "fingerprint": request_fingerprint,
            "created_at": utc_now(),
            "received_at": None,
        },
    )
    delivery = await by_reference(session, body.supplier, body.supplier_reference)
    assert delivery is not None
    if not created:
        if delivery.fingerprint != request_fingerprint:
            raise Conflict(
                f"Supplier {body.supplier} already announced {body.supplier_reference} with other content."
            )
        return delivery, False
    await outbox.add(
        session,
        build_event(
            "ecom.inbound.announced.v1",
            InboundAnnounced(
                inbound_id=delivery.id,
                supplier=delivery.supplier,
                supplier_reference=delivery.supplier_reference,
                kind=body.kind,
                location_id=delivery.location_id,
                expected_date=delivery.expected_date,
                lines=[InboundLine(sku=line.sku, quantity=line.quantity) for line in body.lines],
            ),
            subject=delivery.id,
        ),
    )
    return delivery, True


async def get(session: AsyncSession, *, inbound_id: str) -> InboundDelivery:
    delivery = await session.get(InboundDelivery, inbound_id, populate_existing=True)
    if delivery is None:
        raise NotFound(f"No inbound delivery {inbound_id}.")
    return delivery


async def receive(
    session: AsyncSession, *, delivery: InboundDelivery, body: ReceiptCreate
) -> InboundDelivery:
    """Record that the delivery arrived (the announced lines, or those given) and publish
    ecom.inbound.received.v1, from which product-service adds the stock. A compare-and-set from
    announced: a delivery is received once; a second receipt is 409. Lines given of an unknown SKU, or a
    `received_at` before the delivery was announced (beyond `CLOCK_SKEW`, the sender's clock): 422."""
    if body.received_at is not None and body.received_at < delivery.created_at - CLOCK_SKEW:
        message = (
            f"received_at {body.received_at.isoformat()} is before the delivery was announced "
            f"({delivery.created_at.isoformat()}); a delivery is received after its announcement"
        )
        raise UnprocessableEntity(
            f"{message}.",
            extra={
                "errors": [{"field": "body.received_at", "message": message, "type": "before_announcement"}]
            },
        )
    if body.lines is not None:
        await _refuse_unknown_skus(session, body.lines)
    lines = [line.model_dump() for line in body.lines] if body.lines is not None else list(delivery.lines)
    received_at = body.received_at or utc_now()
    await compare_and_set_or_conflict(
        session,
        update(InboundDelivery)
        .where(col(InboundDelivery.id) == delivery.id, col(InboundDelivery.status) == "announced")
        .values(status="received", received_lines=lines, received_at=received_at),
        detail=f"Inbound delivery {delivery.id} was received already.",
    )
    await outbox.add(
        session,
        build_event(
            "ecom.inbound.received.v1",
            InboundReceived(
                inbound_id=delivery.id,
                supplier=delivery.supplier,
                location_id=delivery.location_id,
                lines=[InboundLine.model_validate(line) for line in lines],
                received_at=received_at,
            ),
            subject=delivery.id,
        ),
    )
    return await get(session, inbound_id=delivery.id)


async def page(
    session: AsyncSession, *, after_id: str | None, limit: int, supplier: str | None
) -> list[InboundDelivery]:
    query = select(InboundDelivery).order_by(col(InboundDelivery.id)).limit(limit + 1)
    if supplier is not None:
        query = query.where(col(InboundDelivery.supplier) == supplier)
    if after_id is not None:
        query = query.where(col(InboundDelivery.id) > after_id)
    return list((await session.execute(query)).scalars())
