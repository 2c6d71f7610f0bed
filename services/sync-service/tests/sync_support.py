"""Helpers shared by sync-service tests: unique data, API shortcuts, reading events off topics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from contracts import CloudEvent, build_event
from contracts.catalog.inventory import LocationStock, StockChanged
from contracts.catalog.prices import PriceChanged, PromotionEnded, PromotionStarted
from contracts.catalog.products import ProductCreated, ProductDetails, ProductUpdated, VariantFacts
from servicekit.broker import free_port
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer, running_app
from servicekit.testing.events import eventually, produce, wait_for_events
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS
from sync_service.config import Settings
from sync_service.main import create_app
from sync_service.reference_channel import Behaviour, ReferenceChannel, create_reference_channel

__all__ = ["eventually", "produce", "wait_for_events"]


@asynccontextmanager
async def running_service(
    database_url: str,
    kafka_bootstrap: str,
    token_issuer: TestTokenIssuer,
    *,
    consumers: bool,
    **overrides: Any,
) -> AsyncIterator[Running]:
    """sync-service running in-process; with `consumers`, once they hold their partitions."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        kafka_consumers_enabled=consumers,
        log_json=False,
        **overrides,
    )
    app = create_app(settings)
    async with running_app(app, token_issuer) as http:
        for consumer in app.state.runtime.consumers:
            await asyncio.wait_for(consumer.assigned.wait(), 30)
        database = app.state.runtime.database
        yield Running(client=http, database=database, tokens=token_issuer, settings=settings, app=app)


@asynccontextmanager
async def reference_server() -> AsyncIterator[tuple[str, ReferenceChannel]]:
    """The reference channel server on a free local port: its base URL and its state."""
    app = create_reference_channel()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=0.2,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                raise RuntimeError("the reference channel server did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}", app.state.server
    finally:
        server.should_exit = True
        await task


@dataclass
class Running:
    client: httpx.AsyncClient
    database: Database
    tokens: TestTokenIssuer
    settings: Settings
    app: FastAPI

    @property
    def admin(self) -> dict[str, str]:
        return self.tokens.auth_header("sync:admin", "sync:read")

    @property
    def reader(self) -> dict[str, str]:
        return self.tokens.auth_header("sync:read")


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def channel_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique("shop-"),
        "name": "Web store",
        "kind": "webhook",
        "endpoint": "http://127.0.0.1:9/hooks",
        "currency": "EUR",
        "locale": "fr-FR",
    }
    body.update(fields)
    return body


async def register(app: Running, **fields: Any) -> dict[str, Any]:
    response = await app.client.post("/v1/channels", json=channel_body(**fields), headers=app.admin)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def product_event(
    sku: str,
    *,
    product_id: str | None = None,
    status: str = "active",
    version: int = 1,
    completeness: dict[str, float] | None = None,
    category_path: list[str] | None = None,
    title: str = "Linen shirt",
) -> CloudEvent:
    """An ecom.product.created/updated.v1 as product-service publishes it, for a product of one SKU."""
    product_id = product_id or unique("p-")
    details = ProductDetails(
        title=title,
        brand="Acme",
        description="A shirt.",
        attributes={"material": "linen"},
        media_urls=["https://images.example.com/1.jpg"],
        category_path=category_path or [],
        completeness=completeness or {},
        variants=[VariantFacts(sku=sku, gtin="4006381333931", attributes={"size": "M"})],
    )
    if version == 1:
        data: ProductCreated | ProductUpdated = ProductCreated(
            product_id=product_id, status=status, skus=[sku], version=1, details=details
        )
        return build_event("ecom.product.created.v1", data, subject=product_id, sequence=1)
    data = ProductUpdated(
        product_id=product_id,
        status=status,  # type: ignore[arg-type]
        version=version,
        changed_fields=["status"],
        skus=[sku],
        details=details,
    )
    return build_event("ecom.product.updated.v1", data, subject=product_id, sequence=version)


def price_event(sku: str, amount: str, *, channel: str | None = None, currency: str = "EUR") -> CloudEvent:
    data = PriceChanged(
        sku=sku,
        currency=currency,
        channel=channel,
        amount=Decimal(amount),
        effective_from=datetime.now(UTC),
        source="api",
    )
    return build_event("ecom.price.changed.v1", data, subject=sku)


def stock_event(sku: str, stock: dict[str, int]) -> CloudEvent:
    """ecom.stock.changed.v1 with `stock` = available units per location code (ids are `id-<code>`)."""
    data = StockChanged(
        sku=sku,
        movement="receipt",
        locations=[
            LocationStock(location_id=f"id-{code}", location_code=code, on_hand=n, reserved=0, available=n)
            for code, n in stock.items()
        ],
        total_available=sum(stock.values()),
    )
    return build_event("ecom.stock.changed.v1", data, subject=sku)


def promotion_event(
    started: bool,
    *,
    skus: list[str],
    percent: str,
    channels: list[str] | None = None,
    promotion_id: str | None = None,
) -> CloudEvent:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "promotion_id": promotion_id or unique("promo-"),
        "kind": "percentage",
        "skus": skus,
        "category_ids": [],
        "channels": channels or [],
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(days=1),
        "percent": Decimal(percent),
    }
    if started:
        return build_event(
            "ecom.promotion.started.v1", PromotionStarted(**fields), subject=fields["promotion_id"]
        )
    return build_event("ecom.promotion.ended.v1", PromotionEnded(**fields), subject=fields["promotion_id"])


async def listing(app: Running, channel_id: str, sku: str) -> dict[str, Any] | None:
    response = await app.client.get(
        f"/v1/channels/{channel_id}/listings", params={"sku": sku}, headers=app.reader
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items[0] if items else None


async def listing_where(
    app: Running, channel_id: str, sku: str, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The listing once `check` holds for it (bounded wait)."""

    async def ready() -> dict[str, Any] | None:
        found = await listing(app, channel_id, sku)
        return found if found is not None and check(found) else None

    result: dict[str, Any] = await eventually(ready)
    return result


class ChannelStack:
    """sync-service and the reference channel server its test channels push to."""

    def __init__(self, sync: Running, url: str, reference: ReferenceChannel) -> None:
        self.sync = sync
        self.url = url
        self.reference = reference

    async def channel(self, kind: str = "webhook", **fields: Any) -> dict[str, Any]:
        code = unique(f"{kind}-")
        fields.setdefault("endpoint", f"{self.url}/channels/{code}/listings")
        created = await register(self.sync, code=code, kind=kind, **fields)
        self.reference.secrets[code] = created["signing_secret"]
        return created

    async def pause(self, channel: dict[str, Any]) -> None:
        """Stop pushing to a misbehaving channel, so the module's later tests do not push to it too."""
        await self.set_status(channel, "paused")

    async def set_status(self, channel: dict[str, Any], status: str) -> None:
        current = await self.sync.client.get(f"/v1/channels/{channel['id']}", headers=self.sync.reader)
        changed = await self.sync.client.patch(
            f"/v1/channels/{channel['id']}",
            json={"status": status},
            headers={**self.sync.admin, "If-Match": current.headers["ETag"]},
        )
        assert changed.status_code == 200, changed.text

    def behave(self, channel: dict[str, Any], **behaviour: Any) -> None:
        self.reference.channel(channel["code"]).behaviour = Behaviour(**behaviour)

    def held(self, channel: dict[str, Any], sku: str) -> dict[str, Any] | None:
        return self.reference.channel(channel["code"]).listings.get(sku)
