"""3PL shipment webhooks: who may send them (signature or token), what is refused and counted, the
normalised tracking timeline, and the events published."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from partner_support import announce_orders, register_partner, rejected, signed, update
from sqlalchemy import select
from sqlmodel import col
from sync_support import Running, unique

from servicekit.events.models import OutboxMessage
from sync_service.logistics.models import LogisticsPartner
from sync_service.shipments.models import Shipment
from sync_service.shipments.service import sweep_late

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEBHOOK = "/v1/shipments/webhook"


async def _post_signed(live: Running, partner: dict[str, Any], body: Any, **kwargs: Any) -> Any:
    data, headers = signed(partner["signing_secret"], body, **kwargs)
    return await live.client.post(f"{WEBHOOK}?partner={partner['code']}", content=data, headers=headers)


async def _shipment_events(live: Running, order_id: str) -> list[OutboxMessage]:
    async with live.database.session() as session:
        rows = await session.execute(
            select(OutboxMessage).where(col(OutboxMessage.key) == order_id).order_by(col(OutboxMessage.id))
        )
        return list(rows.scalars())


async def test_a_bad_signature_is_refused_401_and_changes_nothing(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    body = update(order.order_id, unique("JD"), "transit", "2026-11-29T08:00:00Z")
    data, headers = signed(partner["signing_secret"], body)
    headers["webhook-signature"] = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    before = rejected("shipments", "bad_signature")

    response = await live.client.post(f"{WEBHOOK}?partner={partner['code']}", content=data, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert rejected("shipments", "bad_signature") == before + 1
    tracking = await live.client.get(f"/v1/orders/{order.order_id}/tracking", headers=live.reader)
    assert tracking.json()["shipments"] == []
    assert await _shipment_events(live, order.order_id) == []


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("no_signature", "missing_signature"),
        ("old_timestamp", "stale_timestamp"),
        ("unknown_partner", "unknown_partner"),
        ("body_changed", "bad_signature"),
        ("garbage_signature", "bad_signature"),
    ],
)
async def test_an_unauthenticated_webhook_is_refused_before_its_body_is_read(
    live: Running, tamper: str, reason: str
) -> None:
    partner = await register_partner(live)
    # Not even valid JSON: a sender that is not authenticated learns nothing about the payload.
    data, headers = signed(
        partner["signing_secret"],
        b'{"order_id": ',
        at=(datetime.now(UTC) - timedelta(minutes=10) if tamper == "old_timestamp" else None),
    )
    code = partner["code"]
    if tamper == "no_signature":
        headers = {"content-type": "application/json"}
    elif tamper == "unknown_partner":
        code = unique("nobody-")
    elif tamper == "body_changed":
        data = b'{"order_id": 1}'
    elif tamper == "garbage_signature":
        headers["webhook-signature"] = "v1,not base64!"
    before = rejected("shipments", reason)

    response = await live.client.post(f"{WEBHOOK}?partner={code}", content=data, headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert rejected("shipments", reason) == before + 1


async def test_a_signed_update_creates_the_shipment_and_tracking_shows_it(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    tracking_number = unique("JD")

    first = await _post_signed(
        live,
        partner,
        update(
            order.order_id,
            tracking_number,
            "pre-transit",
            "2026-11-29T08:00:00Z",
            estimated_delivery="2026-12-02",
            promised_delivery_date="2026-12-03",
        ),
    )
    second = await _post_signed(
        live,
        partner,
        update(order.order_id, tracking_number, "transit", "2026-11-29T09:30:00+01:00", location="Hamburg"),
    )

    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["duplicate"]) == ("label_created", False)
    assert second.json()["status"] == "in_transit"
    tracking = (await live.client.get(f"/v1/orders/{order.order_id}/tracking", headers=live.reader)).json()
    assert tracking["status"] == "in_transit"
    assert tracking["estimated_delivery"] == "2026-12-02"
    (shipment,) = tracking["shipments"]
    assert (shipment["carrier"], shipment["tracking_number"]) == ("DHL", tracking_number)
    assert [c["status"] for c in shipment["checkpoints"]] == ["label_created", "in_transit"]
    assert [c["carrier_status"] for c in shipment["checkpoints"]] == ["pre-transit", "transit"]
    assert shipment["checkpoints"][1]["location"] == "Hamburg"
    assert shipment["promised_delivery_date"] == "2026-12-03"
    events = await _shipment_events(live, order.order_id)
    assert [e.event_type for e in events] == ["ecom.shipment.updated.v1"] * 2
    assert all(e.topic == "ecom.shipments.v1" for e in events)


async def test_the_same_checkpoint_twice_changes_nothing(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    body = update(order.order_id, unique("JD"), "delivered", "2026-11-29T12:00:00Z")

    first = await _post_signed(live, partner, body)
    again = await _post_signed(live, partner, body)

    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert len(await _shipment_events(live, order.order_id)) == 1


async def test_the_same_checkpoint_in_another_letter_case_changes_nothing(live: Running) -> None:
    """Status codes are compared case-insensitively (and spaces, dashes, dots as underscores), yet a
    partner's retry of `delivered` as `DELIVERED`, or of `out for delivery` as `Out-For-Delivery`, made a
    second checkpoint and a second ecom.shipment.updated.v1."""
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    tracking_number = unique("JD")
    sent = [
        ("out for delivery", "2026-11-29T08:00:00Z"),
        ("Out-For-Delivery", "2026-11-29T09:00:00+01:00"),
        ("delivered", "2026-11-29T12:00:00Z"),
        ("DELIVERED", "2026-11-29T12:00:00Z"),
        (" Delivered ", "2026-11-29T12:00:00Z"),
    ]

    answers = [
        await _post_signed(live, partner, update(order.order_id, tracking_number, status, at))
        for status, at in sent
    ]

    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    assert [a.json()["duplicate"] for a in answers] == [False, True, False, True, True]
    tracking = (await live.client.get(f"/v1/orders/{order.order_id}/tracking", headers=live.reader)).json()
    checkpoints = tracking["shipments"][0]["checkpoints"]
    assert [(c["status"], c["carrier_status"]) for c in checkpoints] == [
        ("out_for_delivery", "out for delivery"),
        ("delivered", "delivered"),
    ]
    assert len(await _shipment_events(live, order.order_id)) == 2


async def test_a_late_arriving_older_checkpoint_does_not_undo_delivery(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    tracking_number = unique("JD")

    await _post_signed(
        live, partner, update(order.order_id, tracking_number, "delivered", "2026-11-29T15:00:00Z")
    )
    late = await _post_signed(
        live, partner, update(order.order_id, tracking_number, "transit", "2026-11-29T07:00:00Z")
    )

    assert late.json()["status"] == "delivered"
    tracking = (await live.client.get(f"/v1/orders/{order.order_id}/tracking", headers=live.reader)).json()
    assert tracking["status"] == "delivered"
    assert [c["status"] for c in tracking["shipments"][0]["checkpoints"]] == ["in_transit", "delivered"]


async def test_an_unknown_order_is_refused_422_and_counted(live: Running) -> None:
    partner = await register_partner(live)
    before = rejected("shipments", "unknown_order")

    response = await _post_signed(
        live, partner, update(unique("nope-"), unique("JD"), "transit", "2026-11-29T08:00:00Z")
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.order_id"
    assert rejected("shipments", "unknown_order") == before + 1


async def test_a_checkpoint_in_the_future_is_refused_422_and_changes_nothing(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    before = rejected("shipments", "future_checkpoint")
    ahead = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()  # a carrier's clock a little ahead

    far, near = unique("JD"), unique("JD")

    refused = await _post_signed(live, partner, update(order.order_id, far, "transit", ahead))
    taken = await _post_signed(live, partner, update(order.order_id, near, "transit", soon))

    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "body.occurred_at"
    assert rejected("shipments", "future_checkpoint") == before + 1
    assert taken.status_code == 200, taken.text
    tracking = (await live.client.get(f"/v1/orders/{order.order_id}/tracking", headers=live.reader)).json()
    assert [shipment["tracking_number"] for shipment in tracking["shipments"]] == [near]


async def test_an_order_can_be_named_by_its_number(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    body = update(order.order_id, unique("JD"), "PU", "2026-11-29T08:00:00Z", carrier="FedEx")
    body["order_number"] = order.order_number
    del body["order_id"]

    response = await _post_signed(live, partner, body)

    assert response.status_code == 200, response.text
    assert (response.json()["order_id"], response.json()["status"]) == (order.order_id, "picked_up")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"carrier": "DHL"}, "body.tracking_number"),
        (
            {
                "order_id": "x",
                "order_number": "y",
                "carrier": "DHL",
                "tracking_number": "T1",
                "status": "transit",
                "occurred_at": "2026-11-29T08:00:00Z",
            },
            "body",
        ),
        (
            {
                "order_id": "x",
                "carrier": "DHL",
                "tracking_number": "T1",
                "status": "transit",
                "occurred_at": "2026-11-29T08:00:00",
            },
            "body.occurred_at",
        ),
        (  # a carrier's 20261129 (YYYYMMDD) was read as Unix seconds: a checkpoint of 1970-08-23
            {
                "order_id": "x",
                "carrier": "DHL",
                "tracking_number": "T1",
                "status": "transit",
                "occurred_at": 20261129,
            },
            "body.occurred_at",
        ),
        (
            {
                "order_id": "x",
                "carrier": "DHL",
                "tracking_number": "T 1;",
                "status": "transit",
                "occurred_at": "2026-11-29T08:00:00Z",
            },
            "body.tracking_number",
        ),
    ],
)
async def test_a_malformed_payload_is_refused_422_and_counted(
    live: Running, body: dict[str, Any], field: str
) -> None:
    partner = await register_partner(live)
    before = rejected("shipments", "malformed")

    response = await _post_signed(live, partner, body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert any(error["field"] == field for error in response.json()["errors"]), response.json()
    assert rejected("shipments", "malformed") == before + 1


async def test_an_unmapped_status_is_refused_until_the_partner_maps_it(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    body = update(order.order_id, unique("JD"), "ZX-42", "2026-11-29T08:00:00Z", carrier="Acme Express")

    refused = await _post_signed(live, partner, body)
    read = await live.client.get(f"/v1/logistics-partners/{partner['id']}", headers=live.reader)
    patched = await live.client.patch(
        f"/v1/logistics-partners/{partner['id']}",
        json={"status_overrides": {"ZX-42": "out_for_delivery"}},
        headers={**live.admin, "If-Match": read.headers["etag"]},
    )
    accepted = await _post_signed(live, partner, body)

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["type"] == "unknown_status"
    assert patched.status_code == 200, patched.text
    assert accepted.json()["status"] == "out_for_delivery"


async def test_a_logistics_token_may_post_without_a_signature(live: Running) -> None:
    (order,) = await announce_orders(live)
    body = update(order.order_id, unique("1Z"), "I", "2026-11-29T08:00:00Z", carrier="UPS")

    allowed = await live.client.post(WEBHOOK, json=body, headers=live.tokens.auth_header("shipments:write"))
    forbidden = await live.client.post(WEBHOOK, json=body, headers=live.tokens.auth_header("sync:read"))
    bad_token = await live.client.post(WEBHOOK, json=body, headers={"Authorization": "Bearer nonsense"})

    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["status"] == "in_transit"
    assert forbidden.status_code == 403
    assert bad_token.status_code == 401


async def test_racing_updates_of_one_shipment_each_count_once(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    tracking_number = unique("JD")
    statuses = ["pre-transit", "PU", "transit", "OD", "delivered"]
    bodies = [
        update(order.order_id, tracking_number, status, f"2026-11-29T{8 + i:02d}:00:00Z")
        for i, status in enumerate(statuses)
    ]

    responses = await asyncio.gather(*(_post_signed(live, partner, body) for body in bodies * 2))

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    assert sum(not r.json()["duplicate"] for r in responses) == len(statuses)
    async with live.database.session() as session:
        shipment = (
            await session.execute(select(Shipment).where(col(Shipment.order_id) == order.order_id))
        ).scalar_one()
    assert (shipment.status, shipment.version) == ("delivered", len(statuses))
    assert len(await _shipment_events(live, order.order_id)) == len(statuses)


async def test_a_missed_promised_date_is_alerted_once(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    promised = date.today() - timedelta(days=1)
    await _post_signed(
        live,
        partner,
        update(
            order.order_id,
            unique("JD"),
            "transit",
            "2026-11-20T08:00:00Z",
            promised_delivery_date=str(promised),
        ),
    )

    async def sweep() -> int:
        async with live.database.session() as session:
            return (await sweep_late(session)).alerted

    first = await asyncio.gather(sweep(), sweep())
    again = await sweep()

    assert sorted(first) == [0, 1]
    assert again == 0
    late = [
        e
        for e in await _shipment_events(live, order.order_id)
        if e.event_type == "ecom.shipment.delivery_late.v1"
    ]
    assert len(late) == 1
    tracking = (await live.client.get(f"/v1/orders/{order.order_id}/tracking", headers=live.reader)).json()
    assert tracking["shipments"][0]["late"] is True


async def test_the_signing_secret_is_shown_once_and_stored_encrypted(live: Running) -> None:
    partner = await register_partner(live)

    read = await live.client.get(f"/v1/logistics-partners/{partner['id']}", headers=live.reader)
    listed = await live.client.get("/v1/logistics-partners?limit=500", headers=live.reader)
    async with live.database.session() as session:
        row = await session.get(LogisticsPartner, partner["id"])

    assert partner["signing_secret"].startswith("whsec_")
    assert "signing_secret" not in read.json()
    assert partner["signing_secret"] not in listed.text
    assert row is not None
    assert partner["signing_secret"] not in row.secret_sealed
    assert partner["signing_secret"][6:] not in row.secret_sealed


async def test_a_rotated_secret_replaces_the_old_one(live: Running) -> None:
    partner = await register_partner(live)
    (order,) = await announce_orders(live)
    body = update(order.order_id, unique("JD"), "transit", "2026-11-29T08:00:00Z")

    no_if_match = await live.client.post(f"/v1/logistics-partners/{partner['id']}/secret", headers=live.admin)
    rotated = await live.client.post(
        f"/v1/logistics-partners/{partner['id']}/secret", headers={**live.admin, "If-Match": '"1"'}
    )
    stale = await live.client.post(
        f"/v1/logistics-partners/{partner['id']}/secret", headers={**live.admin, "If-Match": '"1"'}
    )
    old = await _post_signed(live, partner, body)
    new = await _post_signed(live, {**partner, "signing_secret": rotated.json()["signing_secret"]}, body)

    assert (no_if_match.status_code, rotated.status_code, stale.status_code) == (428, 200, 412)
    assert (old.status_code, new.status_code) == (401, 200)


async def test_partner_admin_needs_sync_admin(live: Running) -> None:
    response = await live.client.post(
        "/v1/logistics-partners", json={"code": "x-3pl", "name": "X"}, headers=live.reader
    )
    duplicate_code = await register_partner(live)
    again = await live.client.post(
        "/v1/logistics-partners", json={"code": duplicate_code["code"], "name": "Y"}, headers=live.admin
    )

    assert response.status_code == 403
    assert again.status_code == 409
