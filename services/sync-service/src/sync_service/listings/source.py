"""The catalogue read from product-service's API, page by page, into sync-service's projection.

A full resync with source `product-service` first pulls `GET /v1/channel-facts` (each product as its
events describe it, its SKUs' prices in effect and their stock per location), with sync-service's own
access token (OAuth2 client_credentials at the gateway, role `sync`: `products:read` only). Each page is
checked whole before anything of it is written, then written in one transaction through the same upserts
as the event consumer (`listings.facts`), which keep the newer fact: a product's version, a price's
effective time, a stock row's time. An older read therefore never overwrites what a newer event said, and
a page that fails leaves the pages before it applied and nothing of itself.

Bounded: a timeout on every call, at most `MAX_PAGE_BYTES` a page, the page size the settings allow, ids
that must grow from page to page (a server that repeats itself fails the pull), at most `MAX_PAGES` pages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.catalog.products import ProductDetails
from servicekit.bounds import SaneDatetime
from servicekit.db import Database
from sync_service.common import utc_now
from sync_service.config import Settings
from sync_service.listings import facts
from sync_service.listings import service as listings

FACTS_PATH = "/v1/channel-facts"
MAX_PAGE_BYTES = 20 * 1024 * 1024
MAX_TOKEN_BYTES = 64 * 1024
MAX_PAGES = 100_000
TOKEN_MARGIN_SECONDS = 30.0
"""A cached token is renewed this long before it expires (or at half its life if that is shorter)."""

Sku = Annotated[str, Field(min_length=1, max_length=100)]
Id = Annotated[str, Field(min_length=1, max_length=36)]


class CatalogUnreadable(Exception):
    """product-service's catalogue could not be read (unreachable, refused, or not a catalogue page)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Price(_Strict):
    sku: Sku
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    channel: str | None = Field(default=None, min_length=1, max_length=50)
    amount: Decimal = Field(ge=0, le=Decimal("9999999999.99"), allow_inf_nan=False)
    effective_from: SaneDatetime


class _Stock(_Strict):
    sku: Sku
    location_id: Id
    location_code: str | None = Field(default=None, max_length=50)
    available: int = Field(ge=0, le=1_000_000_000)
    updated_at: SaneDatetime


class _Product(_Strict):
    product_id: Id
    status: Literal["draft", "active", "archived"]
    version: int = Field(ge=1, le=2**31 - 1)
    details: ProductDetails
    prices: list[_Price] = Field(max_length=100_000)
    stock: list[_Stock] = Field(max_length=100_000)

    @model_validator(mode="after")
    def _own_skus(self) -> _Product:
        skus = {variant.sku for variant in self.details.variants}
        if any(not sku or len(sku) > 100 for sku in skus):
            raise ValueError("a variant's SKU is empty or longer than 100 characters")
        strangers = ({price.sku for price in self.prices} | {level.sku for level in self.stock}) - skus
        if strangers:
            raise ValueError(f"prices or stock of SKUs that are not the product's: {sorted(strangers)[:3]}")
        return self


class _Page(_Strict):
    items: list[_Product]
    next_cursor: str | None = Field(default=None, min_length=1, max_length=2000)


class _TokenAnswer(_Strict):
    access_token: str = Field(min_length=1, max_length=16_000)
    token_type: str = Field(max_length=20)
    expires_in: int = Field(ge=1, le=7 * 86400)


async def _call(
    http: httpx.AsyncClient, what: str, method: str, url: str, limit: int, timeout: float, **kwargs: object
) -> tuple[int, bytes]:
    """Status and body of one call, within `timeout` seconds as a whole, the body cut off (an error)
    past `limit` bytes; a timeout or a transport error is CatalogUnreadable naming `what`."""
    try:
        async with asyncio.timeout(timeout), http.stream(method, url, **kwargs) as response:  # type: ignore[arg-type]
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise CatalogUnreadable(f"{url} answered more than {limit} bytes")
            return response.status_code, bytes(body)
    except TimeoutError:
        raise CatalogUnreadable(f"{what} timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise CatalogUnreadable(f"{what} failed: {type(exc).__name__}: {exc}"[:1000]) from None


class ServiceToken:
    """sync-service's own access token (client_credentials grant at the gateway), kept until shortly
    before it expires; `renew()` after a 401 gets a new one."""

    def __init__(self, settings: Settings) -> None:
        if not (settings.token_url and settings.client_id and settings.client_secret):
            raise ValueError("SYNC_TOKEN_URL, SYNC_CLIENT_ID and SYNC_CLIENT_SECRET are needed")
        self.token_url = settings.token_url
        self.client_id = settings.client_id
        self.client_secret = settings.client_secret.get_secret_value()
        self.timeout = settings.product_service_timeout_seconds
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                await self._fetch(http)
            assert self._token is not None
            return self._token

    async def renew(self, http: httpx.AsyncClient, stale: str) -> str:
        async with self._lock:
            if self._token == stale or self._token is None:
                await self._fetch(http)
            assert self._token is not None
            return self._token

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        self._token = None
        status, body = await _call(
            http,
            f"getting sync-service's token at {self.token_url}",
            "POST",
            self.token_url,
            MAX_TOKEN_BYTES,
            self.timeout,
            data={"grant_type": "client_credentials", "scope": "products:read"},
            auth=(self.client_id, self.client_secret),
            headers={"accept": "application/json"},
        )
        if status != 200:
            raise CatalogUnreadable(
                f"the gateway refused sync-service's client credentials (HTTP {status}: "
                f"{body[:300].decode(errors='replace')})"
            )
        try:
            answer = _TokenAnswer.model_validate_json(body)
        except ValidationError as exc:
            raise CatalogUnreadable(
                f"the gateway's token answer is not an OAuth2 token: {exc.errors()[0]['msg']}"[:1000]
            ) from None
        if answer.token_type.lower() != "bearer":
            raise CatalogUnreadable(f"the gateway's token is of type {answer.token_type!r}, not Bearer")
        margin = min(TOKEN_MARGIN_SECONDS, answer.expires_in / 2)
        self._token = answer.access_token
        self._renew_at = time.monotonic() + answer.expires_in - margin


class CatalogSource:
    """Pages through product-service's channel facts and writes them into the projection."""

    def __init__(self, settings: Settings, database: Database, token: ServiceToken) -> None:
        assert settings.product_service_url
        self.url = settings.product_service_url.rstrip("/") + FACTS_PATH
        self.page_size = settings.resync_pull_page_size
        self.timeout = settings.product_service_timeout_seconds
        self.database = database
        self.token = token

    async def _page(self, http: httpx.AsyncClient, cursor: str | None) -> _Page:
        params = {"limit": str(self.page_size), **({"cursor": cursor} if cursor else {})}
        token = await self.token.get(http)
        for attempt in (1, 2):
            status, body = await _call(
                http,
                f"reading {self.url}",
                "GET",
                self.url,
                MAX_PAGE_BYTES,
                self.timeout,
                params=params,
                headers={"authorization": f"Bearer {token}", "accept": "application/json"},
            )
            if status == 401 and attempt == 1:
                token = await self.token.renew(http, token)
                continue
            if status != 200:
                raise CatalogUnreadable(
                    f"product-service answered HTTP {status} to {FACTS_PATH}: "
                    f"{body[:300].decode(errors='replace')}"
                )
            break
        try:
            page = _Page.model_validate_json(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise CatalogUnreadable(
                f"product-service's {FACTS_PATH} page is not a catalogue page: {where}: {error['msg']}"[:1000]
            ) from None
        if len(page.items) > self.page_size:
            raise CatalogUnreadable(
                f"product-service answered {len(page.items)} products to a page of {self.page_size}"
            )
        return page

    async def _apply(self, page: _Page) -> None:
        """One checked page in one transaction: the facts the projection holds no newer version of, then
        the listings of the SKUs whose facts changed, on every channel (as an event would)."""
        async with self.database.session() as session:
            changed = await facts.apply_products(
                session,
                [facts.ProductFact(p.product_id, p.status, p.version, p.details) for p in page.items],
            )
            changed |= await facts.apply_prices(
                session,
                (
                    facts.PriceFact(p.sku, p.currency, p.channel, p.amount, p.effective_from)
                    for product in page.items
                    for p in product.prices
                ),
            )
            changed |= await facts.apply_stock(
                session,
                [
                    facts.StockFact(s.sku, s.location_id, s.location_code, s.available, s.updated_at)
                    for product in page.items
                    for s in product.stock
                ],
            )
            await listings.recompute(session, skus=changed, at=utc_now())
            await session.commit()

    async def pull(self, on_page: Callable[[int], Awaitable[bool]]) -> int:
        """Read every page and write it; `on_page(products)` after each page (False: stop). Returns the
        number of products read."""
        read = 0
        cursor: str | None = None
        last_id: str | None = None
        limits = httpx.Limits(max_connections=2)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, limits=limits) as http:
            for _ in range(MAX_PAGES):
                page = await self._page(http, cursor)
                ids = [product.product_id for product in page.items]
                if ids != sorted(set(ids)) or (last_id is not None and ids and ids[0] <= last_id):
                    raise CatalogUnreadable(
                        f"product-service's {FACTS_PATH} pages are not in growing product-id order"
                    )
                if page.next_cursor is not None and (not ids or page.next_cursor == cursor):
                    raise CatalogUnreadable(f"product-service's {FACTS_PATH} pages do not advance")
                await self._apply(page)
                read += len(ids)
                last_id = ids[-1] if ids else last_id
                if not await on_page(len(ids)):
                    return read
                if page.next_cursor is None:
                    return read
                cursor = page.next_cursor
        raise CatalogUnreadable(f"product-service's catalogue did not end within {MAX_PAGES} pages")
