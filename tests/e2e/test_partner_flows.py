"""Partners' data coming in, across services through the real embedded broker: customer-service and
sync-service (and product-service where stock is involved) each on its own database, in one process."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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
from servicekit.migrations import upgrade
from servicekit.testing import TestTokenIssuer, fresh_database, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS
from sync_service.config import ALEMBIC_INI as SYNC_ALEMBIC_INI
from sync_service.config import Settings as SyncSettings
from sync_service.main import create_app as create_sync_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDERS = ("orders:write", "customers:read", "customers:write")


@dataclass(frozen=True)
class Services:
    customer: httpx.AsyncClient
    sync: httpx.AsyncClient
    tokens: TestTokenIssuer


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A migrated database per service (migrations run outside the tests' event loop)."""
    folder: Path = tmp_path_factory.mktemp("partners")
    with (
        fresh_database(folder, "e2e_partner_customer") as customer_db,
        fresh_database(folder, "e2e_partner_sync") as sync_db,
    ):
        upgrade(CUSTOMER_ALEMBIC_INI, customer_db)
        upgrade(SYNC_ALEMBIC_INI, sync_db)
        yield {"customer": customer_db, "sync": sync_db}


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
    sync_app = create_sync_app(
        SyncSettings(database_url=databases["sync"], late_sweep_enabled=False, **common)
    )
    async with (
        running_app(customer_app, token_issuer) as customer,
        running_app(sync_app, token_issuer) as sync,
    ):
        yield Services(customer=customer, sync=sync, tokens=token_issuer)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _paid_order(services: Services) -> dict[str, Any]:
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
            "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "9.90", "currency": "EUR"}],
        },
        headers=headers,
    )
    assert order.status_code == 201, order.text
    paid = await services.customer.post(
        f"/v1/orders/{order.json()['id']}/status", json={"status": "paid"}, headers=headers
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
    await eventually(
        lambda: _ok(services.sync.get(tracking_url, headers=reader)), "sync-service to know the order"
    )
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

    current = await eventually(shipped, "the order to be shipped")
    assert [entry["status"] for entry in current["timeline"]] == ["placed", "paid", "shipped"]
    assert (current["carrier"], current["tracking_number"]) == ("DHL", "JD014600006101")
    tracking = (await services.sync.get(tracking_url, headers=reader)).json()
    assert (tracking["status"], tracking["estimated_delivery"]) == ("in_transit", "2026-12-02")
    assert [c["carrier_status"] for c in tracking["shipments"][0]["checkpoints"]] == ["transit"]


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200
