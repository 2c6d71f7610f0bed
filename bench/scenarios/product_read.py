"""Product read by id: product-service's GET /v1/products/{id} against a bare FastAPI endpoint that reads
the same row with the same driver.

Both apps run in this process and are called over httpx's ASGI transport (no sockets on either side),
on one SQLite file (PostgreSQL too when BENCH_DATABASE_URL is set) migrated by the service's migrations
and holding one product with two variants plus 1000 other products. The service does what it does in
production: RS256 token check (the signature is verified once per token and the result kept until the
token expires; revocation is checked on every request), request-id and metrics middleware, the product
with its variants in one query on a read connection (families are cached), completeness per channel,
the ETag. The bare app runs one SELECT of the product row through a SQLAlchemy async engine of the same
URL (`engine.connect()`, SQLAlchemy's defaults) and returns it as JSON. Both get the same Authorization
header. On PostgreSQL the service's read connection runs in autocommit (no BEGIN/ROLLBACK round trips);
the bare endpoint keeps SQLAlchemy's default transaction, rolled back when the connection closes.
Phases run in ABBA order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from benchlib import migrated_database, ratio, summarize
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from product_service.catalog import service as catalog
from product_service.catalog.schemas import CategoryCreate, FamilyCreate, ProductCreate, VariantCreate
from product_service.config import ALEMBIC_INI, Settings
from product_service.main import create_app
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer, running_app

NAME = "product_read"
DESCRIPTION = (
    "GET /v1/products/{id} through product-service vs a bare FastAPI endpoint reading the same row with "
    "the same driver: p50/p99 latency and throughput ratios"
)
TIMEOUT_S = 900.0
DATABASE_URL_ENV = "BENCH_DATABASE_URL"
CONCURRENCY = 8


async def prepare(url: str) -> str:
    database = Database(url)
    settings = Settings(database_url=url)
    try:
        async with database.session() as session:
            family = await catalog.create_family(
                session,
                body=FamilyCreate.model_validate(
                    {
                        "code": "bench",
                        "title": "Bench",
                        "attributes": [
                            {"code": "material", "type": "text", "required_channels": ["web"]},
                            {"code": "weight", "type": "measurement", "units": ["g"]},
                        ],
                    }
                ),
            )
            category = await catalog.create_category(
                session, body=CategoryCreate(title="Bench", family_id=family.id)
            )
            for n in range(1000):
                await catalog.create_product(
                    session,
                    body=ProductCreate(title=f"Filler {n}", variants=[VariantCreate(sku=f"F-{n}")]),
                    settings=settings,
                )
            product = await catalog.create_product(
                session,
                body=ProductCreate(
                    title="Bench shirt",
                    brand="Acme",
                    description="A shirt read many times.",
                    category_id=category.id,
                    attributes={"material": "cotton", "weight": {"value": 200, "unit": "g"}},
                    media_urls=["https://img.example/shirt.jpg"],
                    variants=[VariantCreate(sku="READ-1"), VariantCreate(sku="READ-2")],
                ),
                settings=settings,
            )
        return product.id
    finally:
        await database.dispose()


def bare_app(url: str) -> FastAPI:
    engine = create_async_engine(url)
    app = FastAPI()

    @app.get("/products/{product_id}")
    async def read(product_id: str) -> dict[str, Any]:
        async with engine.connect() as conn:
            row = (
                (await conn.execute(text("SELECT * FROM products WHERE id = :id"), {"id": product_id}))
                .mappings()
                .one()
            )
        return dict(row)

    @app.on_event("shutdown")
    async def dispose() -> None:
        await engine.dispose()

    return app


@contextlib.asynccontextmanager
async def clients(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, dict[str, str]]]:
    tokens = TestTokenIssuer()
    service = create_app(Settings(database_url=url, kafka_enabled=False, log_json=False, log_level="WARNING"))
    bare = bare_app(url)
    transport = httpx.ASGITransport(app=bare)
    async with (
        running_app(service, tokens, wait_for_kafka=False) as service_client,
        bare.router.lifespan_context(bare),
        httpx.AsyncClient(transport=transport, base_url="http://bare") as bare_client,
    ):
        yield service_client, bare_client, tokens.auth_header("products:read")


async def latency(call: Callable[[], Awaitable[httpx.Response]], count: int) -> list[float]:
    values = []
    for _ in range(count):
        started = time.perf_counter()
        response = await call()
        values.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return values


async def throughput(call: Callable[[], Awaitable[httpx.Response]], count: int) -> float:
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            (await call()).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - started)


async def measure(url: str, requests: int) -> dict[str, Any]:
    product_id = await prepare(url)
    async with clients(url) as (service_client, bare_client, headers):
        calls = {
            "service": lambda: service_client.get(f"/v1/products/{product_id}", headers=headers),
            "bare": lambda: bare_client.get(f"/products/{product_id}", headers=headers),
        }
        for call in calls.values():
            await latency(call, 100)  # warm-up
        samples: dict[str, list[float]] = {"service": [], "bare": []}
        rates: dict[str, list[float]] = {"service": [], "bare": []}
        for order in (("bare", "service"), ("service", "bare")):
            for name in order:
                samples[name] += await latency(calls[name], requests // 2)
            for name in order:
                rates[name].append(await throughput(calls[name], requests // 2))
    service_lat, bare_lat = summarize(samples["service"]), summarize(samples["bare"])
    service_rps = sum(rates["service"]) / len(rates["service"])
    bare_rps = sum(rates["bare"]) / len(rates["bare"])
    return {
        "service_latency_ms": service_lat,
        "bare_latency_ms": bare_lat,
        "service_rps": service_rps,
        "bare_rps": bare_rps,
        "rounds_rps": rates,
        "throughput_ratio": ratio(service_rps, bare_rps),
        "p50_ratio": ratio(service_lat["p50"], bare_lat["p50"]),
        "p99_ratio": ratio(service_lat["p99"], bare_lat["p99"]),
    }


def database(kind: str, tmp: Path) -> contextlib.AbstractAsyncContextManager[str]:
    return migrated_database(kind, tmp, "read", ALEMBIC_INI, os.environ.get(DATABASE_URL_ENV, ""))


async def run(quick: bool) -> dict[str, Any]:
    requests = 400 if quick else 4000
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get(DATABASE_URL_ENV) else [])
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp:
        for kind in kinds:
            async with database(kind, Path(tmp)) as url:
                figures[kind] = await measure(url, requests)
    headline: dict[str, Any] = {}
    rows = []
    for kind, data in figures.items():
        headline[f"{kind}: throughput ratio service/bare (goal >= 0.8)"] = data["throughput_ratio"]
        headline[f"{kind}: p50 latency ratio service/bare"] = data["p50_ratio"]
        headline[f"{kind}: p99 latency ratio service/bare"] = data["p99_ratio"]
        rows.append(
            [
                kind,
                data["service_latency_ms"]["p50"],
                data["bare_latency_ms"]["p50"],
                data["service_latency_ms"]["p99"],
                data["bare_latency_ms"]["p99"],
                data["service_rps"],
                data["bare_rps"],
                data["throughput_ratio"],
            ]
        )
    return {
        "parameters": {
            "requests_per_mode": requests,
            "concurrency": CONCURRENCY,
            "transport": "httpx ASGI in-process",
        },
        "figures": figures,
        "headline": headline,
        "notes": [
            "latency: sequential requests; throughput: 8 concurrent clients; ABBA order",
            "the service side includes the token check (RS256 signature verified once per token, then cached "
            "until expiry; revocation checked per request), middleware, one query (product joined with its "
            "variants; families are cached) on a read connection, completeness and the ETag; the bare side "
            "one SELECT of the same row",
            "on PostgreSQL the service reads in autocommit (SELECT only); the bare endpoint uses "
            "SQLAlchemy's default transaction (BEGIN, SELECT, ROLLBACK)",
        ],
        "table": {
            "columns": [
                "database",
                "service p50 ms",
                "bare p50 ms",
                "service p99 ms",
                "bare p99 ms",
                "service req/s",
                "bare req/s",
                "ratio",
            ],
            "rows": rows,
        },
    }
