"""Supplier terms (lead time, minimum order quantity) from product-service's documented API, asked with
the caller's own token: `GET /v1/suppliers` then `GET /v1/suppliers/{id}/offers`, page by page. A SKU
offered by several suppliers takes the shortest lead time (then the smallest minimum order)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from analytics_service.forecasting.reorder import SupplyTerms

PAGE_LIMIT = 500
MAX_PAGES = 200
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SupplyLookup:
    terms: dict[str, SupplyTerms]
    problem: str | None = None


async def _pages(client: httpx.AsyncClient, path: str, budget: list[int]) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        if budget[0] <= 0:
            raise RuntimeError(f"more than {MAX_PAGES} pages of supplier data")
        budget[0] -= 1
        params: dict[str, str | int] = {"limit": PAGE_LIMIT}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(path, params=params)
        response.raise_for_status()
        body = response.json()
        items.extend(body.get("items", []))
        cursor = body.get("next_cursor")
        if not cursor:
            return items


async def supply_terms(
    base_url: str, authorization: str | None, *, transport: httpx.AsyncBaseTransport | None = None
) -> SupplyLookup:
    """Every SKU's best supplier terms; on any failure, no terms and what went wrong (the caller then
    uses the default lead time and says so)."""
    headers = {"Authorization": authorization} if authorization else {}
    budget = [MAX_PAGES]
    try:
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=TIMEOUT_S, transport=transport
        ) as client:
            suppliers = await _pages(client, "/v1/suppliers", budget)
            terms: dict[str, SupplyTerms] = {}
            for supplier in suppliers:
                for offer in await _pages(client, f"/v1/suppliers/{supplier['id']}/offers", budget):
                    candidate = SupplyTerms(
                        lead_time_days=int(str(offer["lead_time_days"])),
                        min_order_quantity=int(str(offer["min_order_quantity"])),
                        supplier_id=str(supplier["id"]),
                    )
                    sku = str(offer["sku"])
                    current = terms.get(sku)
                    if current is None or (candidate.lead_time_days, candidate.min_order_quantity) < (
                        current.lead_time_days,
                        current.min_order_quantity,
                    ):
                        terms[sku] = candidate
    except httpx.HTTPStatusError as error:
        return SupplyLookup({}, f"product-service answered {error.response.status_code} for supplier offers")
    except (httpx.HTTPError, ValueError, KeyError, TypeError, RuntimeError) as error:
        return SupplyLookup({}, f"supplier offers unavailable from product-service: {type(error).__name__}")
    return SupplyLookup(terms)
