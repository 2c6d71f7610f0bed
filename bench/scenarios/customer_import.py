"""Bulk import throughput: rows per second of a CSV import job through customer-service (parse,
validate and normalise every row, then one transaction that dedupes on ingest, encrypts, writes blind
indexes and blocking keys, scores duplicates, evaluates risk rules and stages events), against a plain
bulk insert of the same customers (encrypted rows and email blind indexes, SQLAlchemy Core executemany)
into an identical fresh database."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchlib import ratio
from sqlalchemy import func, select

from customer_service.config import ALEMBIC_INI, Settings
from customer_service.context import CustomerContext
from customer_service.customers.models import Customer
from customer_service.imports import service as imports
from customer_service.imports.models import ImportJob
from servicekit.db import Database
from servicekit.migrations import upgrade

NAME = "customer_import"
DESCRIPTION = (
    "CSV import job rows/s through the service (validation, dedupe on ingest, encryption, events) against "
    "a plain bulk insert of the same customers"
)
TIMEOUT_S = 3000.0
SEED = 11
HEADER = "first_name,last_name,email,phone,country,line1,city,postcode,address_country\n"


def letters(n: int) -> str:
    """n written in letters (names are compared letters-only, so digits would not tell them apart)."""
    out = ""
    while True:
        n, digit = divmod(n, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[digit] + out
        if n == 0:
            return out


def csv_content(count: int) -> bytes:
    """Distinct people with Faker names (fixed seed), unique emails and phones, French addresses."""
    from faker import Faker

    fake = Faker("fr_FR")
    fake.seed_instance(SEED)
    rng = random.Random(SEED)
    lines = [HEADER]
    for n in range(count):
        first, last = fake.first_name().replace(",", " "), fake.last_name().replace(",", " ")
        lines.append(
            f"{first},{last},{letters(n)}.{n}@import.example.com,+336{10_000_000 + n:08d},FR,"
            f"{rng.randrange(1, 200)} rue de la Gare,Lyon,{69001 + rng.randrange(9)},FR\n"
        )
    return "".join(lines).encode()


async def _fresh(tmp: Path, label: str) -> Database:
    url = f"sqlite+aiosqlite:///{tmp / f'{label}.db'}"
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    return Database(url)


async def import_job(database: Database, context: CustomerContext, content: bytes) -> tuple[float, ImportJob]:
    began = time.perf_counter()
    rows = imports.parse(content, "csv")
    job = await imports.create_job(database, fmt="csv", actor="bench", total_rows=len(rows))
    await imports.run(database, context, job_id=job.id, rows=rows, fmt="csv")
    elapsed = time.perf_counter() - began
    async with database.sessionmaker() as session:
        done = await session.get(ImportJob, job.id)
    assert done is not None
    return elapsed, done


async def plain_insert(database: Database, context: CustomerContext, count: int) -> float:
    # The identify scenario's populate(): precomputed encrypted rows + email blind indexes, executemany.
    from scenarios.customer_identify import populate

    return await populate(database, context, 0, count)


async def run(quick: bool) -> dict[str, Any]:
    count = 1_000 if quick else int(os.environ.get("BENCH_IMPORT_ROWS", "10000"))
    content = csv_content(count)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp_dir:
        tmp = Path(tmp_dir)
        settings = Settings(database_url="sqlite+aiosqlite://", kafka_enabled=False)
        context = CustomerContext.from_settings(settings)
        service_db, plain_db = await _fresh(tmp, f"svc-{uuid.uuid4().hex[:6]}"), await _fresh(tmp, "plain")
        try:
            plain_s = await plain_insert(plain_db, context, count)
            service_s, job = await import_job(service_db, context, content)
            async with service_db.sessionmaker() as session:
                imported = int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
        finally:
            await service_db.dispose()
            await plain_db.dispose()
    if job.status != "succeeded":
        raise RuntimeError(f"import job {job.status}: {job.errors[:3]}")
    service_rps, plain_rps = count / service_s, count / plain_s
    return {
        "parameters": {"rows": count, "database": "sqlite (temp file)", "format": "csv"},
        "headline": {
            f"import rows/s ({count:,} rows)": service_rps,
            "plain bulk insert rows/s": plain_rps,
            "ratio import/plain insert": ratio(service_rps, plain_rps),
        },
        "figures": {
            "import_s": service_s,
            "plain_insert_s": plain_s,
            "import_rows_per_s": service_rps,
            "plain_rows_per_s": plain_rps,
            "created": job.created_count,
            "matched": job.matched_count,
            "customers_in_db": imported,
        },
        "notes": [
            "Plain insert: the same number of customers as encrypted rows with their email blind index, "
            "inserted with executemany in chunks of 5,000 (no validation, dedupe, blocking keys, risk, "
            "events).",
            "Import: parse + validate all rows, then one transaction with dedupe on ingest, duplicate "
            "scoring against blocking-key candidates, risk rules and one outbox row per customer.",
        ],
    }
