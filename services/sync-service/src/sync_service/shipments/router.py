"""Shipment routes: the logistics partners' webhook and the tracking a storefront reads."""

from __future__ import annotations

from fastapi import APIRouter, Request

from servicekit.auth import Caller
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from sync_service.common import ReadCaller, ShipmentsCaller
from sync_service.logistics import service as partners
from sync_service.shipments import service
from sync_service.shipments.schemas import OrderTracking, ShipmentAccepted, ShipmentUpdateIn
from sync_service.webhooks import Rejected, mark

router = APIRouter(prefix="/v1", tags=["shipments"])


async def _sender(session: SessionDep, caller: Caller) -> tuple[str, dict[str, str]]:
    """The partner's name for events and its status overrides: the signing partner's, or the partner
    registered for the bearer token's client (else the client id, with no overrides)."""
    partner_id = caller.claims.get("partner_id")
    partner = await partners.get(session, partner_id=partner_id) if isinstance(partner_id, str) else None
    if partner is None and caller.client_id is not None:
        partner = await partners.by_client(session, caller.client_id)
    if partner is not None:
        return partner.code, dict(partner.status_overrides)
    return caller.client_id or caller.subject, {}


@router.post(
    "/shipments/webhook",
    response_model=ShipmentAccepted,
    responses=problem_responses(401, 403, 409, 413, 422),
)
async def shipment_webhook(
    body: ShipmentUpdateIn, request: Request, session: SessionDep, caller: ShipmentsCaller
) -> ShipmentAccepted:
    """A logistics partner reports a shipment checkpoint: signed with Standard Webhooks (`?partner=` names
    the partner) or sent with a bearer token of scope shipments:write."""
    name, overrides = await _sender(session, caller)
    try:
        return await service.record_update(session, partner=name, overrides=overrides, body=body)
    except Rejected as exc:
        mark(request.scope, exc.reason)
        raise


@router.get(
    "/orders/{order_id}/tracking", response_model=OrderTracking, responses=problem_responses(401, 403, 404)
)
async def order_tracking(order_id: str, session: SessionDep, _: ReadCaller) -> OrderTracking:
    """An order's shipments: normalised status, checkpoints (oldest first) and ETA."""
    return await service.tracking(session, order_id=order_id)
