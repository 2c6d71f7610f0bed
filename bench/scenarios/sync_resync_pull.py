"""Full resync's pull: sync-service reading product-service's catalogue through its API into its projection.

The real gateway and product-service run as separate uvicorn processes on 127.0.0.1 (no broker: product-
service's outbox is not relayed). product-service's database holds `SKUS` active products of one SKU each,
with a EUR price and stock at 3 locations, written as rows. sync-service's pull runs in this process: its
own access token (client_credentials, role `sync`), `GET /v1/channel-facts` page by page (100 products a
page, the default), each page checked and written through the consumer's upserts in one transaction, then
the listings of the SKUs whose facts changed recomputed on one registered webhook channel (push pipeline
off: only the pull is measured).

Two pulls per round, each timed from the first request to the last commit:
- `empty`: into a freshly migrated sync-service database (the projection lost, a new database);
- `current`: the same pull again, the projection already up to date (same versions: the facts are
  written again with the same values and the listings recomputed, none of them changes).

Baseline: a bare httpx client with the same token reading the same pages (same page size, same server)
and parsing each body with `json.loads`: what reading the catalogue costs without checking or writing it.
Ratio = bare time / pull time (1.0: the pull costs no more than reading). Phases run bare, empty, current,
bare per round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from benchlib import bench_port, child_process, gateway_database, ratio, summarize, wait_ready

NAME = "sync_resync_pull"
DESCRIPTION = (
    "full resync's pull of the catalogue from product-service's API (GET /v1/channel-facts) into "
    "sync-service's projection, 10,000 SKUs: time and SKUs/s into an empty and an up-to-date projection, "
    "against a bare httpx client reading the same pages"
)
TIMEOUT_S = 1200.0
START_TIMEOUT_S = 60.0
LOCATIONS = 3


def _params(quick: bool) -> tuple[int, int]:
    """(SKUs, rounds)."""
    return (1000, 1) if quick else (10_000, 3)


async def _product_db(url: str, skus: int) -> None:
    """`skus` active products of one SKU each, a EUR price each, stock at LOCATIONS locations."""
    from product_service.catalog.models import Product, Variant
    from product_service.common import new_id
    from product_service.config import ALEMBIC_INI
    from product_service.inventory.models import Location, StockLevel
    from product_service.pricing.models import PriceRecord
    from servicekit.db import Database
    from servicekit.migrations import upgrade

    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    now = datetime.now(UTC)
    database = Database(url)
    try:
        async with database.session() as session:
            locations = [
                Location(
                    id=new_id(), code=f"wh_{n}", title=f"Warehouse {n}", kind="warehouse", created_at=now
                )
                for n in range(LOCATIONS)
            ]
            session.add_all(locations)
            for start in range(0, skus, 1000):
                for n in range(start, min(start + 1000, skus)):
                    product_id, sku = new_id(), f"PULL-{n:06d}"
                    session.add(
                        Product(
                            id=product_id,
                            title=f"Bench product {n}",
                            brand="Bench",
                            description="A product of the resync pull bench.",
                            status="active",
                            attributes={"material": "oak", "weight": n % 97},
                            media_urls=[f"https://img.example.com/{sku}.jpg"],
                            channels=[],
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    session.add(
                        Variant(sku=sku, product_id=product_id, gtin=None, attributes={}, created_at=now)
                    )
                    session.add(
                        PriceRecord(
                            sku=sku,
                            currency="EUR",
                            amount_minor=1000 + n % 5000,
                            effective_from=now,
                            created_at=now,
                            actor="bench",
                            source="bench",
                        )
                    )
                    for index, location in enumerate(locations):
                        session.add(
                            StockLevel(
                                sku=sku, location_id=location.id, on_hand=(n + index) % 40, updated_at=now
                            )
                        )
                await session.flush()
            await session.commit()
    finally:
        await database.dispose()


@contextlib.asynccontextmanager
async def _stack(tmp: Path, skus: int) -> AsyncIterator[tuple[str, str, str, str]]:
    """The gateway and product-service running; (gateway URL, product URL, client id, secret)."""
    gateway_port, product_port = bench_port(), bench_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    product_url = f"http://127.0.0.1:{product_port}"
    gateway_db = f"sqlite+aiosqlite:///{tmp / 'gateway.db'}"
    product_db = f"sqlite+aiosqlite:///{tmp / 'product.db'}"
    client_id, secret = await gateway_database(gateway_db, name="bench sync-service", role="sync")
    await _product_db(product_db, skus)
    env = dict(os.environ)
    env.update(
        {
            "ENVIRONMENT": "development",
            "KAFKA_ENABLED": "false",
            "GATEWAY_DATABASE_URL": gateway_db,
            "GATEWAY_JWT_ISSUER": gateway_url,
            "GATEWAY_LOG_LEVEL": "WARNING",
            "PRODUCT_DATABASE_URL": product_db,
            "PRODUCT_JWKS_URL": f"{gateway_url}/.well-known/jwks.json",
            "PRODUCT_JWT_ISSUER": gateway_url,
            "PRODUCT_REVOCATIONS_URL": f"{gateway_url}/.well-known/revocations.json",
            "PRODUCT_LOG_LEVEL": "WARNING",
        }
    )

    def uvicorn(app: str, port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    with (
        child_process(uvicorn("gateway.main:app", gateway_port), env, tmp / "gateway.log") as gateway,
        child_process(uvicorn("product_service.main:app", product_port), env, tmp / "product.log") as product,
    ):
        await wait_ready(gateway_url, gateway, tmp / "gateway.log", START_TIMEOUT_S)
        await wait_ready(product_url, product, tmp / "product.log", START_TIMEOUT_S)
        yield gateway_url, product_url, client_id, secret


async def _bare(product_url: str, token: str, page_size: int) -> tuple[float, int]:
    """Read every page with a bare client and parse it; (seconds, SKUs read)."""
    read = 0
    params: dict[str, str] = {"limit": str(page_size)}
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        while True:
            response = await client.get(
                f"{product_url}/v1/channel-facts", params=params, headers={"authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
            page = json.loads(response.content)
            read += sum(len(item["details"]["variants"]) for item in page["items"])
            if page["next_cursor"] is None:
                return time.perf_counter() - started, read
            params["cursor"] = page["next_cursor"]


async def _sync_database(tmp: Path, label: str) -> str:
    from servicekit.migrations import upgrade
    from sync_service.config import ALEMBIC_INI

    url = f"sqlite+aiosqlite:///{tmp / f'{label}.db'}"
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    return url


async def _pull(settings: Any, token: Any) -> tuple[float, int]:
    """One pull into the database of `settings`; (seconds, products read)."""
    from servicekit.db import Database
    from sync_service.listings.source import CatalogSource

    database = Database(settings.database_url)
    try:

        async def on_page(_: int) -> bool:
            return True

        source = CatalogSource(settings, database, token)
        started = time.perf_counter()
        products = await source.pull(on_page)
        return time.perf_counter() - started, products
    finally:
        await database.dispose()


async def _register_channel(url: str) -> None:
    from servicekit.db import Database
    from sync_service.channels import service as channels
    from sync_service.channels.schemas import ChannelCreate
    from sync_service.config import DEV_SECRETS_KEY

    database = Database(url)
    try:
        async with database.session() as session:
            await channels.register_channel(
                session,
                body=ChannelCreate.model_validate(
                    {
                        "code": "bench",
                        "name": "Bench",
                        "kind": "webhook",
                        "endpoint": "http://127.0.0.1:9/hooks",
                        "currency": "EUR",
                        "locale": "fr-FR",
                    }
                ),
                secrets_key=DEV_SECRETS_KEY,
            )
    finally:
        await database.dispose()


async def _projection_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from servicekit.db import Database
    from sync_service.listings.models import CatalogPrice, CatalogStock, CatalogVariant, Listing

    database = Database(url)
    try:
        async with database.session() as session:
            return {
                model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (CatalogVariant, CatalogPrice, CatalogStock, Listing)
            }
    finally:
        await database.dispose()


async def run(quick: bool) -> dict[str, Any]:
    from sync_service.config import Settings
    from sync_service.listings.source import ServiceToken

    skus, rounds = _params(quick)
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as folder:
        tmp = Path(folder)
        async with _stack(tmp, skus) as (gateway_url, product_url, client_id, secret):
            base = Settings(
                product_service_url=product_url,
                token_url=f"{gateway_url}/oauth/token",
                client_id=client_id,
                client_secret=secret,
                product_service_timeout_seconds=60,
                kafka_enabled=False,
            )
            token = ServiceToken(base)
            async with httpx.AsyncClient(timeout=30) as http:
                bearer = await token.get(http)
            bare_s: list[float] = []
            empty_s: list[float] = []
            current_s: list[float] = []
            counts: dict[str, int] = {}
            for round_ in range(rounds):
                seconds, read = await _bare(product_url, bearer, base.resync_pull_page_size)
                assert read == skus, (read, skus)
                bare_s.append(seconds)
                url = await _sync_database(tmp, f"sync-{round_}")
                await _register_channel(url)
                settings = base.model_copy(update={"database_url": url})
                seconds, products = await _pull(settings, token)
                assert products == skus, (products, skus)
                empty_s.append(seconds)
                counts = await _projection_counts(url)
                assert counts["CatalogVariant"] == skus, counts
                assert counts["Listing"] == skus, counts
                seconds, products = await _pull(settings, token)
                current_s.append(seconds)
                seconds, read = await _bare(product_url, bearer, base.resync_pull_page_size)
                bare_s.append(seconds)
    bare = sorted(bare_s)[len(bare_s) // 2]
    empty = sorted(empty_s)[len(empty_s) // 2]
    current = sorted(current_s)[len(current_s) // 2]
    figures = {
        "projection_after_pull": counts,
        "bare_read_s": summarize(bare_s),
        "pull_empty_s": summarize(empty_s),
        "pull_current_s": summarize(current_s),
        "bare_skus_per_s": round(skus / bare, 1),
        "pull_empty_skus_per_s": round(skus / empty, 1),
        "pull_current_skus_per_s": round(skus / current, 1),
    }
    return {
        "parameters": {"skus": skus, "rounds": rounds, "page_size": base.resync_pull_page_size},
        "figures": figures,
        "headline": {
            "pull into an empty projection, SKUs/s": figures["pull_empty_skus_per_s"],
            "pull, ratio bare read / pull (empty projection)": ratio(bare, empty),
            "pull, ratio bare read / pull (projection up to date)": ratio(bare, current),
        },
        "notes": [
            "medians over the rounds; bare: the same pages read and parsed, nothing checked or written",
            "gateway and product-service in their own processes; sync-service's pull in the bench process",
        ],
    }
