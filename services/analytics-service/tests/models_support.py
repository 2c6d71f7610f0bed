"""Helpers of the model API tests: a shop's history as events relative to today, and a small real HTTP
server standing in for product-service's documented supplier routes."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Header, HTTPException

from contracts import CloudEvent, build_event
from contracts.catalog.inventory import LocationStock, StockChanged
from servicekit.testing.conformance import serve_in_thread

NOW = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def stock(sku: str, levels: dict[str, int], when: datetime | None = None) -> CloudEvent:
    locations = [
        LocationStock(location_id=loc, on_hand=n, reserved=0, available=n) for loc, n in levels.items()
    ]
    data = StockChanged(
        sku=sku, movement="adjustment", locations=locations, total_available=sum(levels.values())
    )
    event = build_event("ecom.stock.changed.v1", data, subject=sku)
    return event.model_copy(update={"time": when or ago(1)})


class SupplierServer:
    """product-service's GET /v1/suppliers and GET /v1/suppliers/{id}/offers, paginated like it is."""

    def __init__(self, offers: dict[str, list[dict[str, Any]]]) -> None:
        self.offers = offers
        self.refuse = False
        self.authorizations: list[str | None] = []
        app = FastAPI()

        def check(authorization: str | None) -> None:
            self.authorizations.append(authorization)
            if self.refuse:
                raise HTTPException(403, "missing scope products:read")

        @app.get("/v1/suppliers")
        async def suppliers(
            limit: int = 50, cursor: str | None = None, authorization: str | None = Header(default=None)
        ) -> dict[str, Any]:
            check(authorization)
            ids = sorted(self.offers)
            start = int(cursor) if cursor else 0
            page = ids[start : start + 1]  # one per page: the client must follow cursors
            next_cursor = str(start + 1) if start + 1 < len(ids) else None
            return {"items": [{"id": i, "code": i, "name": i} for i in page], "next_cursor": next_cursor}

        @app.get("/v1/suppliers/{supplier_id}/offers")
        async def offers(
            supplier_id: str, limit: int = 50, authorization: str | None = Header(default=None)
        ) -> dict[str, Any]:
            check(authorization)
            return {"items": self.offers.get(supplier_id, []), "next_cursor": None}

        self.app = app

    def serving(self) -> contextlib.AbstractContextManager[str]:
        return serve_in_thread(self.app, wait_for_kafka=False)


def offer(supplier_id: str, sku: str, lead_time_days: int, moq: int) -> dict[str, Any]:
    return {
        "supplier_id": supplier_id,
        "sku": sku,
        "supplier_sku": f"S-{sku}",
        "cost": "1.00",
        "currency": "EUR",
        "lead_time_days": lead_time_days,
        "min_order_quantity": moq,
        "available_quantity": None,
        "updated_at": NOW.isoformat(),
    }
