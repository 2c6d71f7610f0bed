"""Product import and search at scale: product-service's import job against a plain bulk insert of the
same rows, then full-text search latency on the imported catalog.

- baseline (SQLite): the same product and variant rows inserted with multi-row executemany through the
  same driver (SQLAlchemy + aiosqlite), 5000 rows per transaction, into a database migrated by the
  service's own migrations; on PostgreSQL (BENCH_DATABASE_URL set): asyncpg `copy_records_to_table`
  (COPY), the practical limit;
- platform: `run_import` of an NDJSON file holding those rows (what `POST /v1/imports` runs after
  storing the upload): validation, upsert by SKU, GTIN checks, search index, one outbox event per
  product, job progress and error report, `transfer.BATCH_SIZE` rows per transaction (new rows by
  binary COPY on PostgreSQL, multi-row INSERTs on SQLite);
- search: `GET /v1/search` through the service app in-process (httpx ASGI transport, a real token),
  on the imported catalog: single-word queries, two-word queries, and a word plus a status filter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import migrated_database, ratio, summarize
from sqlalchemy import insert

from product_service.catalog.models import Product, Variant
from product_service.config import ALEMBIC_INI, Settings
from product_service.main import create_app
from product_service.transfer import service as transfer
from servicekit.db import Database, asyncpg_dsn
from servicekit.testing import TestTokenIssuer, running_app

NAME = "product_import"
DESCRIPTION = (
    "Import of N products through product-service's import job vs a plain bulk insert of the same rows "
    "(COPY on PostgreSQL), as a ratio; then search latency on the N-product catalog"
)
TIMEOUT_S = 1800.0
DATABASE_URL_ENV = "BENCH_DATABASE_URL"
BASELINE_BATCH = 5000
WORDS = [
    "linen", "cotton", "wool", "shirt", "jacket", "boots", "lamp", "mug", "charger", "headphones", "blue",
    "red", "black", "green", "organic", "classic", "slim", "oversized", "travel", "kitchen", "desk", "garden",
    "winter", "summer", "leather", "canvas", "ceramic", "wireless", "compact", "premium",
]  # fmt: skip


def _gtin(number: int) -> str:
    body = f"2{number:011d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def make_rows(count: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    rows = []
    for n in range(count):
        title = " ".join(rng.sample(WORDS, 3)).title() + f" {n}"
        rows.append(
            {
                "sku": f"B-{n:07d}",
                "title": title,
                "brand": f"Brand {n % 97}",
                "description": " ".join(rng.choices(WORDS, k=12)),
                "status": "active" if n % 5 else "draft",
                "gtin": _gtin(n),
                "variant_attributes": {"size": rng.choice(["S", "M", "L"])},
            }
        )
    return rows


def baseline_records(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The product and variant rows the import writes, built without any of its checks."""
    now = datetime.now(UTC)
    products, variants = [], []
    for row in rows:
        product_id = str(uuid.uuid4())
        products.append(
            {
                "id": product_id,
                "title": row["title"],
                "brand": row["brand"],
                "description": row["description"],
                "category_id": None,
                "family_id": None,
                "status": row["status"],
                "attributes": {},
                "media_urls": [],
                "channels": [],
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        variants.append(
            {
                "sku": row["sku"],
                "product_id": product_id,
                "gtin": row["gtin"],
                "attributes": row["variant_attributes"],
                "created_at": now,
            }
        )
    return products, variants


def fresh_database(kind: str, tmp: Path, label: str) -> contextlib.AbstractAsyncContextManager[str]:
    """A migrated, empty product database: a SQLite file, or a new PostgreSQL database (dropped after)."""
    return migrated_database(kind, tmp, label, ALEMBIC_INI, os.environ.get(DATABASE_URL_ENV, ""))


async def baseline_insert(kind: str, url: str, rows: list[dict[str, Any]]) -> float:
    products, variants = baseline_records(rows)
    if kind == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            started = time.perf_counter()
            product_columns = list(products[0])
            variant_columns = list(variants[0])

            def record(row: dict[str, Any]) -> tuple[Any, ...]:
                return tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row.values())

            async with conn.transaction():
                await conn.copy_records_to_table(
                    "products", records=[record(p) for p in products], columns=product_columns
                )
                await conn.copy_records_to_table(
                    "variants", records=[record(v) for v in variants], columns=variant_columns
                )
            return time.perf_counter() - started
        finally:
            await conn.close()
    database = Database(url)
    try:
        started = time.perf_counter()
        for start in range(0, len(products), BASELINE_BATCH):
            async with database.session() as session:
                await session.execute(insert(Product), products[start : start + BASELINE_BATCH])
                await session.execute(insert(Variant), variants[start : start + BASELINE_BATCH])
        return time.perf_counter() - started
    finally:
        await database.dispose()


async def platform_import(url: str, path: Path) -> tuple[float, dict[str, Any]]:
    database = Database(url)
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
        job = await transfer.create_job(database, fmt="ndjson", size=size, actor="bench")
        copy = path.with_suffix(".job")
        await asyncio.to_thread(shutil.copyfile, path, copy)  # run_import deletes its file
        started = time.perf_counter()
        await transfer.run_import(database, job.id, copy, "ndjson")
        elapsed = time.perf_counter() - started
        async with database.sessionmaker() as session:
            done = await transfer.get_job(session, job_id=job.id)
        return elapsed, done.model_dump(mode="json")
    finally:
        await database.dispose()


async def search_latency(url: str, queries: list[dict[str, str]]) -> dict[str, Any]:
    tokens = TestTokenIssuer()
    app = create_app(Settings(database_url=url, kafka_enabled=False, log_json=False, log_level="WARNING"))
    headers = tokens.auth_header("products:read")
    latencies: dict[str, list[float]] = {}
    hits: dict[str, list[int]] = {}
    async with running_app(app, tokens, wait_for_kafka=False) as client:
        for params in queries[:20]:  # warm-up
            await client.get("/v1/search", params={**params, "limit": 20}, headers=headers)
        for params in queries:
            kind = params.pop("_kind")
            started = time.perf_counter()
            response = await client.get("/v1/search", params={**params, "limit": 20}, headers=headers)
            latencies.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            hits.setdefault(kind, []).append(len(response.json()["items"]))
    return {
        kind: {"latency_ms": summarize(values), "mean_hits": sum(hits[kind]) / len(hits[kind])}
        for kind, values in latencies.items()
    }


def make_queries(count: int) -> list[dict[str, str]]:
    rng = random.Random(7)
    queries = []
    for n in range(count):
        kind = ("one_word", "two_words", "word_and_status")[n % 3]
        if kind == "one_word":
            queries.append({"_kind": kind, "q": rng.choice(WORDS)})
        elif kind == "two_words":
            queries.append({"_kind": kind, "q": " ".join(rng.sample(WORDS, 2))})
        else:
            queries.append({"_kind": kind, "q": rng.choice(WORDS)[:4], "status": "draft"})
    return queries


async def measure(
    kind: str, rows: list[dict[str, Any]], path: Path, tmp: Path, queries: int
) -> dict[str, Any]:
    async with fresh_database(kind, tmp, "baseline") as url:
        baseline_s = await baseline_insert(kind, url, rows)
    async with fresh_database(kind, tmp, "platform") as url:
        platform_s, job = await platform_import(url, path)
        search = await search_latency(url, make_queries(queries))
    return {
        "baseline_s": baseline_s,
        "platform_s": platform_s,
        "baseline_rows_per_s": len(rows) / baseline_s,
        "platform_rows_per_s": len(rows) / platform_s,
        "import_vs_bulk_insert": ratio(baseline_s, platform_s),
        "job": job,
        "search": search,
    }


async def run(quick: bool) -> dict[str, Any]:
    count = 5_000 if quick else 100_000
    query_count = 60 if quick else 300
    rows = make_rows(count)
    with tempfile.TemporaryDirectory(prefix="bench-products-") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "products.ndjson"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        kinds = ["sqlite"] + (["postgresql"] if os.environ.get(DATABASE_URL_ENV) else [])
        figures = {kind: await measure(kind, rows, path, tmp, query_count) for kind in kinds}
    headline: dict[str, Any] = {}
    rows_table = []
    for kind, data in figures.items():
        baseline = "COPY" if kind == "postgresql" else "executemany"
        headline[f"{kind}: import / {baseline} (throughput ratio, goal >= 0.25)"] = data[
            "import_vs_bulk_insert"
        ]
        headline[f"{kind}: search p50 ms at {count}"] = data["search"]["one_word"]["latency_ms"]["p50"]
        headline[f"{kind}: search p99 ms at {count}"] = data["search"]["one_word"]["latency_ms"]["p99"]
        rows_table.append(
            [kind, data["baseline_rows_per_s"], data["platform_rows_per_s"], data["import_vs_bulk_insert"]]
            + [data["search"][k]["latency_ms"]["p50"] for k in ("one_word", "two_words", "word_and_status")]
        )
    return {
        "parameters": {"products": count, "search_queries": query_count, "import_batch": transfer.BATCH_SIZE},
        "figures": figures,
        "headline": headline,
        "notes": [
            "baseline: the same product+variant rows, no validation, no search index, no events, no job; "
            "SQLite executemany 5000 rows/transaction, PostgreSQL COPY in one transaction",
            "platform: run_import on the NDJSON file (as POST /v1/imports runs it after storing the upload), "
            f"{transfer.BATCH_SIZE} rows per transaction",
            "search: GET /v1/search in-process over ASGI with a real RS256 token, limit 20, sequential",
        ],
        "table": {
            "columns": [
                "database",
                "bulk rows/s",
                "import rows/s",
                "ratio",
                "search p50 1 word",
                "p50 2 words",
                "p50 word+status",
            ],
            "rows": rows_table,
            "caption": f"{count} products",
        },
    }
