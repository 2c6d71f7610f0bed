"""Partners' data coming in, across services through the real embedded broker: customer-service and
sync-service (and product-service where stock is involved) each on its own database, in one process."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from standardwebhooks.webhooks import Webhook

from customer_service.config import ALEMBIC_INI as CUSTOMER_ALEMBIC_INI
from customer_service.config import Settings as CustomerSettings
from customer_service.main import create_app as create_customer_app
from product_service.config import ALEMBIC_INI as PRODUCT_ALEMBIC_INI
from product_service.config import Settings as ProductSettings
from product_service.main import create_app as create_product_app
from servicekit.migrations import upgrade
from servicekit.testing import TestTokenIssuer, fresh_database, running_app
from servicekit.testing.events import eventually
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS
from sync_service.config import ALEMBIC_INI as SYNC_ALEMBIC_INI
from sync_service.config import Settings as SyncSettings
from sync_service.main import create_app as create_sync_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDERS = ("orders:write", "customers:read", "customers:write")


@dataclass(frozen=True)
class Services:
    customer: httpx.AsyncClient
    product: httpx.AsyncClient
    sync: httpx.AsyncClient
    tokens: TestTokenIssuer


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A migrated database per service (migrations run outside the tests' event loop)."""
    folder: Path = tmp_path_factory.mktemp("partners")
    with (
        fresh_database(folder, "e2e_partner_customer") as customer_db,
        fresh_database(folder, "e2e_partner_product") as product_db,
        fresh_database(folder, "e2e_partner_sync") as sync_db,
    ):
        upgrade(CUSTOMER_ALEMBIC_INI, customer_db)
        upgrade(PRODUCT_ALEMBIC_INI, product_db)
        upgrade(SYNC_ALEMBIC_INI, sync_db)
        yield {"customer": customer_db, "product": product_db, "sync": sync_db}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    databases: dict[str, str], kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Services]:
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
        "log_json": False,
    }
    customer_app = create_customer_app(CustomerSettings(database_url=databases["customer"], **common))
    product_app = create_product_app(ProductSettings(database_url=databases["product"], **common))
    sync_app = create_sync_app(
        SyncSettings(database_url=databases["sync"], late_sweep_enabled=False, **common)
    )
    async with (
        running_app(customer_app, token_issuer) as customer,
        running_app(product_app, token_issuer) as product,
        running_app(sync_app, token_issuer) as sync,
    ):
        yield Services(customer=customer, product=product, sync=sync, tokens=token_issuer)


async def _order(services: Services, sku: str = "MUG", quantity: int = 1) -> dict[str, Any]:
    headers = services.tokens.auth_header(*ORDERS)
    customer = await services.customer.post(
        "/v1/customers", json={"first_name": "Ada", "last_name": f"L{uuid.uuid4().hex[:8]}"}, headers=headers
    )
    assert customer.status_code == 201, customer.text
    order = await services.customer.post(
        "/v1/orders",
        json={
            "order_number": f"WEB-{uuid.uuid4().hex[:10]}",
            "customer_id": customer.json()["id"],
            "channel": "web",
            "currency": "EUR",
            "lines": [{"sku": sku, "quantity": quantity, "unit_price": "9.90", "currency": "EUR"}],
        },
        headers=headers,
    )
    assert order.status_code == 201, order.text
    return dict(order.json())


async def _paid_order(services: Services) -> dict[str, Any]:
    headers = services.tokens.auth_header(*ORDERS)
    order = await _order(services)
    paid = await services.customer.post(
        f"/v1/orders/{order['id']}/status", json={"status": "paid"}, headers=headers
    )
    assert paid.status_code == 200
    return dict(paid.json())


def _signed(secret: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    data = json.dumps(body).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return data, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, data.decode()),
        "content-type": "application/json",
    }


async def test_a_signed_shipment_webhook_ships_the_order_and_tracking_shows_it(services: Services) -> None:
    partner = (
        await services.sync.post(
            "/v1/logistics-partners",
            json={"code": f"acme-{uuid.uuid4().hex[:6]}", "name": "Acme"},
            headers=services.tokens.auth_header("sync:admin"),
        )
    ).json()
    order = await _paid_order(services)
    reader = services.tokens.auth_header("sync:read")
    tracking_url = f"/v1/orders/{order['id']}/tracking"
    await eventually(lambda: _ok(services.sync.get(tracking_url, headers=reader)))
    body = {
        "order_id": order["id"],
        "carrier": "DHL",
        "tracking_number": "JD014600006101",
        "status": "transit",
        "occurred_at": datetime.now(UTC).isoformat(),
        "estimated_delivery": "2026-12-02",
    }
    url = f"/v1/shipments/webhook?partner={partner['code']}"

    forged, headers = _signed("whsec_" + "A" * 43, body)
    refused = await services.sync.post(url, content=forged, headers=headers)
    data, headers = _signed(partner["signing_secret"], body)
    accepted = await services.sync.post(url, content=data, headers=headers)

    assert refused.status_code == 401
    assert accepted.status_code == 200, accepted.text
    read_order = services.tokens.auth_header(*ORDERS)

    async def shipped() -> dict[str, Any] | None:
        current = (await services.customer.get(f"/v1/orders/{order['id']}", headers=read_order)).json()
        return current if current["status"] == "shipped" else None

    current = await eventually(shipped)
    assert [entry["status"] for entry in current["timeline"]] == ["placed", "paid", "shipped"]
    assert (current["carrier"], current["tracking_number"]) == ("DHL", "JD014600006101")
    tracking = (await services.sync.get(tracking_url, headers=reader)).json()
    assert (tracking["status"], tracking["estimated_delivery"]) == ("in_transit", "2026-12-02")
    assert [c["carrier_status"] for c in tracking["shipments"][0]["checkpoints"]] == ["transit"]


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200


async def _product_and_location(services: Services) -> tuple[str, str]:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    writer = services.tokens.auth_header("products:write", "inventory:write")
    product = await services.product.post(
        "/v1/products", json={"title": "Mug", "variants": [{"sku": sku}]}, headers=writer
    )
    assert product.status_code == 201, product.text
    location = await services.product.post(
        "/v1/locations",
        json={"code": f"wh_{uuid.uuid4().hex[:6]}", "title": "Warehouse", "kind": "warehouse"},
        headers=writer,
    )
    assert location.status_code == 201, location.text
    return sku, str(location.json()["id"])


async def test_an_inbound_delivery_gives_a_backordered_line_its_expected_date(services: Services) -> None:
    sku, location_id = await _product_and_location(services)
    order = await _order(services, sku=sku, quantity=3)
    read_order = services.tokens.auth_header(*ORDERS)

    async def line() -> dict[str, Any]:
        current = (await services.customer.get(f"/v1/orders/{order['id']}", headers=read_order)).json()
        return dict(current["lines"][0])

    backordered = await eventually(lambda: _field(line(), "backorder_reason"))
    assert backordered["backorder_expected_date"] is None
    body = {
        "supplier": "acme",
        "supplier_reference": f"ASN-{uuid.uuid4().hex[:8]}",
        "location_id": location_id,
        "expected_date": "2026-12-05",
        "lines": [{"sku": sku, "quantity": 10}],
    }

    async def announced() -> httpx.Response | None:
        """The notice, once sync-service's catalogue holds the new product (it follows product-service's
        events): until then its SKU is unknown, 422."""
        response = await services.sync.post(
            "/v1/inbound", json=body, headers=services.tokens.auth_header("inventory:write")
        )
        if response.status_code == 422 and "Unknown SKU" in response.json()["detail"]:
            return None
        return response

    notice = await eventually(announced)
    assert notice.status_code == 201, notice.text

    dated = await eventually(lambda: _field(line(), "backorder_expected_date"))
    assert dated["backorder_expected_date"] == "2026-12-05"
    stock = (
        await services.product.get(
            f"/v1/inventory/{sku}", headers=services.tokens.auth_header("products:read")
        )
    ).json()
    assert [(i["location_id"], i["quantity"]) for i in stock["incoming"]] == [(location_id, 10)]

    received = await services.sync.post(
        f"/v1/inbound/{notice.json()['id']}/receipt",
        json={},
        headers=services.tokens.auth_header("inventory:write"),
    )
    assert received.status_code == 200, received.text

    async def stocked() -> dict[str, Any] | None:
        current = (
            await services.product.get(
                f"/v1/inventory/{sku}", headers=services.tokens.auth_header("products:read")
            )
        ).json()
        return dict(current) if current["on_hand"] == 10 else None

    after = await eventually(stocked)
    assert after["incoming"] == []


async def _field(value: Awaitable[dict[str, Any]], name: str) -> dict[str, Any] | None:
    current = await value
    return current if current.get(name) else None


async def test_an_end_of_day_sales_file_lowers_stock_and_shows_in_purchase_history(
    services: Services,
) -> None:
    sku, store = await _product_and_location(services)
    stock_writer = services.tokens.auth_header("inventory:write")
    received = await services.product.post(
        "/v1/inventory/movements",
        json={"kind": "receipt", "sku": sku, "location_id": store, "quantity": 10},
        headers=stock_writer,
    )
    assert received.status_code == 201, received.text
    loyalty = f"LOY-{uuid.uuid4().hex[:8]}"
    customer = await services.customer.post(
        "/v1/customers",
        json={"first_name": "Ada", "external_ids": [{"source": "loyalty", "id": loyalty}]},
        headers=services.tokens.auth_header(*ORDERS),
    )
    assert customer.status_code == 201, customer.text
    channel = await services.sync.post(
        "/v1/channels",
        json={
            "code": f"store_{uuid.uuid4().hex[:6]}",
            "name": "Store Paris",
            "kind": "pos",
            "endpoint": "http://127.0.0.1:9/pos",
            "currency": "EUR",
            "locale": "fr-FR",
        },
        headers=services.tokens.auth_header("sync:admin"),
    )
    assert channel.status_code == 201, channel.text
    content = (
        "receipt_id,line,sku,quantity,price,store,time,loyalty_id\n"
        f"T-0001,1,{sku},3,9.90,{store},2026-11-28T17:02:00Z,{loyalty}\n"
    ).encode()

    async def recorded() -> httpx.Response | None:
        """The upload, once sync-service's catalogue holds the product and its stock at the store (it
        follows product-service's events): until then the file is refused, its SKU or store unknown."""
        response = await services.sync.post(
            f"/v1/channels/{channel.json()['id']}/sales",
            content=content,
            headers={**services.tokens.auth_header("orders:write"), "content-type": "text/csv"},
        )
        if response.status_code == 422 and {e["field"] for e in response.json()["report"]["errors"]} <= {
            "sku",
            "store",
        }:
            return None
        return response

    upload = await eventually(recorded)

    assert upload.status_code == 200, upload.text
    assert upload.json()["recorded"] == 1
    reader = services.tokens.auth_header("products:read")

    async def lowered() -> dict[str, Any] | None:
        current = (await services.product.get(f"/v1/inventory/{sku}", headers=reader)).json()
        return dict(current) if current["available"] == 7 else None

    stock = await eventually(lowered)
    assert stock["on_hand"] == 7
    history = (
        await services.customer.get(
            f"/v1/customers/{customer.json()['id']}/orders", headers=services.tokens.auth_header(*ORDERS)
        )
    ).json()["items"]
    (order,) = [o for o in history if o["channel"] == "pos"]
    assert (order["location_id"], order["lines"][0]["sku"], order["lines"][0]["quantity"]) == (store, sku, 3)
    assert order["order_number"].endswith("-T-0001")
