"""Recording partners' shipment updates, the tracking timeline, and the late-delivery sweep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event
from contracts.catalog.shipments import ShipmentDeliveryLate, ShipmentUpdated
from servicekit.db import insert_if_absent
from servicekit.errors import Conflict, NotFound
from servicekit.events import outbox
from servicekit.transitions import compare_and_set
from sync_service.common import new_id, utc_now
from sync_service.orders import projection
from sync_service.shipments.models import Shipment, ShipmentCheckpoint
from sync_service.shipments.schemas import (
    Checkpoint,
    OrderTracking,
    ShipmentAccepted,
    ShipmentTracking,
    ShipmentUpdateIn,
)
from sync_service.shipments.statuses import PROGRESS, code_key, normalise
from sync_service.webhooks import Rejected

CAS_ATTEMPTS = 5
FUTURE_TOLERANCE = timedelta(minutes=15)
"""How far ahead of this service's clock a checkpoint's `occurred_at` may be (a carrier's clock is off)."""
CLOSED = ("delivered", "returned")


async def record_update(
    session: AsyncSession, *, partner: str, overrides: Mapping[str, str], body: ShipmentUpdateIn
) -> ShipmentAccepted:
    """Add the checkpoint to its shipment (created on first sight), recompute the shipment's status from
    its latest checkpoint, and publish ecom.shipment.updated.v1. A checkpoint received before (same
    shipment, carrier status and time) changes nothing. The status is a compare-and-set on the shipment's
    version, so two updates of one shipment racing each count once and the last one sees both. Carrier
    statuses are compared as the status tables compare them (`DELIVERED` is `delivered`)."""
    order = await projection.find(session, order_id=body.order_id, order_number=body.order_number)
    if order is None:
        field = "order_id" if body.order_id is not None else "order_number"
        raise Rejected("unknown_order", f"body.{field}", "No order of this shop has this reference.")
    if body.occurred_at > utc_now() + FUTURE_TOLERANCE:
        # It would stay the shipment's latest checkpoint whatever came after, and the order's shipment time.
        raise Rejected(
            "future_checkpoint",
            "body.occurred_at",
            f"occurred_at {body.occurred_at.isoformat()} is in the future (more than "
            f"{int(FUTURE_TOLERANCE.total_seconds() // 60)} minutes ahead of this service's clock).",
        )
    checkpoint_status = normalise(body.carrier, body.status, overrides)
    if checkpoint_status is None:
        raise Rejected(
            "unknown_status",
            "body.status",
            f"The status {body.status!r} of carrier {body.carrier!r} is not known; the partner's "
            "status_overrides can map it.",
        )
    stamp = utc_now()
    carrier_key = code_key(body.carrier)
    await insert_if_absent(
        session,
        Shipment.__table__,  # type: ignore[attr-defined]
        {
            "id": new_id(),
            "order_id": order.order_id,
            "partner": partner,
            "carrier": body.carrier,
            "carrier_key": carrier_key,
            "tracking_number": body.tracking_number,
            "status": checkpoint_status,
            "last_occurred_at": body.occurred_at,
            "estimated_delivery": body.estimated_delivery,
            "promised_delivery_date": body.promised_delivery_date,
            "version": 0,
            "created_at": stamp,
            "updated_at": stamp,
        },
    )
    shipment = await _by_tracking(session, carrier_key, body.tracking_number)
    if shipment.order_id != order.order_id:
        raise Rejected(
            "conflict",
            "body.tracking_number",
            "This tracking number belongs to a shipment of another order.",
            status=409,
        )
    fresh = await insert_if_absent(
        session,
        ShipmentCheckpoint.__table__,  # type: ignore[attr-defined]
        {
            "shipment_id": shipment.id,
            "status": checkpoint_status,
            "carrier_status": body.status,
            "carrier_code": code_key(body.status),
            "occurred_at": body.occurred_at,
            "location": body.location,
            "description": body.description,
            "received_at": stamp,
        },
    )
    if not fresh:
        return ShipmentAccepted(
            shipment_id=shipment.id,
            order_id=shipment.order_id,
            status=shipment.status,
            checkpoint_status=checkpoint_status,
            duplicate=True,
        )
    for _ in range(CAS_ATTEMPTS):
        previous = shipment.status if shipment.version > 0 else None
        latest = await _latest_checkpoint(session, shipment.id)
        values: dict[str, Any] = {
            "status": latest.status,
            "last_occurred_at": latest.occurred_at,
            "version": shipment.version + 1,
            "updated_at": stamp,
        }
        if body.estimated_delivery is not None:
            values["estimated_delivery"] = body.estimated_delivery
        if shipment.promised_delivery_date is None and body.promised_delivery_date is not None:
            values["promised_delivery_date"] = body.promised_delivery_date
        won = await compare_and_set(
            session,
            update(Shipment)
            .where(col(Shipment.id) == shipment.id, col(Shipment.version) == shipment.version)
            .values(values),
        )
        shipment = await _by_tracking(session, carrier_key, body.tracking_number)
        if won:
            break
    else:
        raise Conflict("The shipment keeps changing; retry the update.")
    total, delivered = await _order_counts(session, shipment.order_id)
    await outbox.add(
        session,
        build_event(
            "ecom.shipment.updated.v1",
            ShipmentUpdated(
                order_id=shipment.order_id,
                shipment_id=shipment.id,
                partner=partner,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                status=shipment.status,
                previous_status=previous,
                checkpoint_status=checkpoint_status,
                carrier_status=body.status,
                occurred_at=body.occurred_at,
                estimated_delivery=shipment.estimated_delivery,
                promised_delivery_date=shipment.promised_delivery_date,
                shipments_total=total,
                shipments_delivered=delivered,
            ),
            subject=shipment.order_id,
        ),
    )
    return ShipmentAccepted(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        status=shipment.status,
        checkpoint_status=checkpoint_status,
        duplicate=False,
    )


async def _by_tracking(session: AsyncSession, carrier_key: str, tracking_number: str) -> Shipment:
    query = select(Shipment).where(
        col(Shipment.carrier_key) == carrier_key, col(Shipment.tracking_number) == tracking_number
    )
    shipment = (await session.execute(query.execution_options(populate_existing=True))).scalars().one()
    return shipment


async def _latest_checkpoint(session: AsyncSession, shipment_id: str) -> ShipmentCheckpoint:
    query = (
        select(ShipmentCheckpoint)
        .where(col(ShipmentCheckpoint.shipment_id) == shipment_id)
        .order_by(col(ShipmentCheckpoint.occurred_at).desc(), col(ShipmentCheckpoint.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalars().one()


async def _order_counts(session: AsyncSession, order_id: str) -> tuple[int, int]:
    delivered = func.sum(case((col(Shipment.status) == "delivered", 1), else_=0))
    row = (
        await session.execute(select(func.count(), delivered).where(col(Shipment.order_id) == order_id))
    ).one()
    return int(row[0]), int(row[1] or 0)


def _is_late(shipment: Shipment, today: date) -> bool:
    promised = shipment.promised_delivery_date
    return promised is not None and promised < today and shipment.status not in CLOSED


async def tracking(session: AsyncSession, *, order_id: str) -> OrderTracking:
    """The order's shipments with their checkpoints, oldest first; 404 for an order never seen."""
    shipments: Sequence[Shipment] = (
        (
            await session.execute(
                select(Shipment).where(col(Shipment.order_id) == order_id).order_by(col(Shipment.created_at))
            )
        )
        .scalars()
        .all()
    )
    if not shipments and await projection.find(session, order_id=order_id, order_number=None) is None:
        raise NotFound(f"No order {order_id}.")
    checkpoints: dict[str, list[Checkpoint]] = {s.id: [] for s in shipments}
    if shipments:
        rows = await session.execute(
            select(ShipmentCheckpoint)
            .where(col(ShipmentCheckpoint.shipment_id).in_(list(checkpoints)))
            .order_by(col(ShipmentCheckpoint.occurred_at), col(ShipmentCheckpoint.id))
        )
        for row in rows.scalars():
            checkpoints[row.shipment_id].append(Checkpoint.model_validate(row, from_attributes=True))
    today = utc_now().date()
    items = [
        ShipmentTracking(
            shipment_id=s.id,
            carrier=s.carrier,
            tracking_number=s.tracking_number,
            status=s.status,
            estimated_delivery=s.estimated_delivery,
            promised_delivery_date=s.promised_delivery_date,
            late=_is_late(s, today),
            checkpoints=checkpoints[s.id],
        )
        for s in shipments
    ]
    open_ = [s for s in shipments if s.status != "delivered"]
    if not shipments:
        status = None
    elif not open_:
        status = "delivered"
    else:
        status = min(open_, key=lambda s: PROGRESS.get(s.status, -1)).status
    estimates = [s.estimated_delivery for s in open_ if s.estimated_delivery is not None]
    return OrderTracking(
        order_id=order_id,
        status=status,
        estimated_delivery=max(estimates) if estimates else None,
        shipments=items,
    )


@dataclass
class SweepResult:
    alerted: int


async def sweep_late(session: AsyncSession, *, today: date | None = None) -> SweepResult:
    """Publish ecom.shipment.delivery_late.v1 once for each shipment past its promised date and not
    delivered or returned. Marking the shipment alerted is a compare-and-set, so two sweeps (two
    replicas) alert once."""
    day = today or utc_now().date()
    stamp = utc_now()
    candidates = (
        (
            await session.execute(
                select(Shipment).where(
                    col(Shipment.promised_delivery_date) < day,
                    col(Shipment.late_alerted_at).is_(None),
                    col(Shipment.status).not_in(CLOSED),
                )
            )
        )
        .scalars()
        .all()
    )
    alerted = 0
    for shipment in candidates:
        won = await compare_and_set(
            session,
            update(Shipment)
            .where(
                col(Shipment.id) == shipment.id,
                col(Shipment.late_alerted_at).is_(None),
                col(Shipment.status).not_in(CLOSED),
            )
            .values(late_alerted_at=stamp),
        )
        if not won:
            continue
        assert shipment.promised_delivery_date is not None
        alerted += 1
        await outbox.add(
            session,
            build_event(
                "ecom.shipment.delivery_late.v1",
                ShipmentDeliveryLate(
                    order_id=shipment.order_id,
                    shipment_id=shipment.id,
                    partner=shipment.partner,
                    carrier=shipment.carrier,
                    tracking_number=shipment.tracking_number,
                    status=shipment.status,
                    promised_delivery_date=shipment.promised_delivery_date,
                    estimated_delivery=shipment.estimated_delivery,
                    detected_at=stamp,
                ),
                subject=shipment.order_id,
            ),
        )
    return SweepResult(alerted=alerted)
