"""Bulk import throughput: rows per second of a CSV import job through customer-service (parse,
validate and normalise every row, then chunks of CUSTOMER_IMPORT_CHUNK_ROWS rows, each one transaction
that dedupes on ingest, encrypts, writes blind indexes and blocking keys, scores duplicates, evaluates
risk rules and stages events), against a plain bulk insert of the same customers (encrypted rows and
email blind indexes, SQLAlchemy Core executemany) into an identical fresh database.

SQLite (temp files) always; PostgreSQL too when BENCH_DATABASE_URL is set (a scratch database per run,
created on that server and dropped after)."""

from __future__ import annotations

import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchlib import migrated_database, ratio
from sqlalchemy import func, select

from customer_service.config import ALEMBIC_INI, Settings
from customer_service.context import CustomerContext
from customer_service.customers.models import Customer
from customer_service.imports import service as imports
from customer_service.imports import workers
from customer_service.imports.models import ImportJob
from servicekit.db import Database

NAME = "customer_import"
DESCRIPTION = (
    "CSV import job rows/s through the service (validation, dedupe on ingest, encryption, events) against "
    "a plain bulk insert of the same customers"
)
TIMEOUT_S = 3000.0
DATABASE_URL_ENV = "BENCH_DATABASE_URL"
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


async def import_job(database: Database, context: CustomerContext, content: bytes) -> tuple[float, ImportJob]:
    began = time.perf_counter()
    # As the upload endpoint does before reading the file.
    workers.warm(context.import_validation_processes, scoring=context.import_scoring_process)
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


async def measure(kind: str, tmp: Path, content: bytes, count: int) -> dict[str, Any]:
    base_url = os.environ.get(DATABASE_URL_ENV, "")
    settings = Settings(database_url="sqlite+aiosqlite://", kafka_enabled=False)
    context = CustomerContext.from_settings(settings)
    async with migrated_database(kind, tmp, "plain", ALEMBIC_INI, base_url) as url:
        plain_db = Database(url)
        try:
            plain_s = await plain_insert(plain_db, context, count)
        finally:
            await plain_db.dispose()
    async with migrated_database(kind, tmp, f"svc_{uuid.uuid4().hex[:6]}", ALEMBIC_INI, base_url) as url:
        service_db = Database(url)
        try:
            service_s, job = await import_job(service_db, context, content)
            async with service_db.sessionmaker() as session:
                imported = int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
        finally:
            await service_db.dispose()
    if job.status != "succeeded":
        raise RuntimeError(f"{kind}: import job {job.status}: {job.errors[:3]}")
    return {
        "import_s": service_s,
        "plain_insert_s": plain_s,
        "import_rows_per_s": count / service_s,
        "plain_rows_per_s": count / plain_s,
        "ratio_import/plain_insert": ratio(count / service_s, count / plain_s),
        "created": job.created_count,
        "matched": job.matched_count,
        "customers_in_db": imported,
    }


async def run(quick: bool) -> dict[str, Any]:
    count = 1_000 if quick else int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
    content = csv_content(count)
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get(DATABASE_URL_ENV) else [])
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp_dir:
        figures = {kind: await measure(kind, Path(tmp_dir), content, count) for kind in kinds}
    headline: dict[str, Any] = {}
    for kind, data in figures.items():
        headline[f"{kind}: import rows/s ({count:,} rows)"] = data["import_rows_per_s"]
        headline[f"{kind}: plain bulk insert rows/s"] = data["plain_rows_per_s"]
        headline[f"{kind}: ratio import/plain insert"] = data["ratio_import/plain_insert"]
    return {
        "parameters": {
            "rows": count,
            "databases": [
                "sqlite (temp file)" if k == "sqlite" else "postgresql (scratch database)" for k in kinds
            ],
            "format": "csv",
            "import_chunk_rows": Settings(database_url="sqlite+aiosqlite://").import_chunk_rows,
        },
        "headline": headline,
        "figures": figures,
        "notes": [
            "Plain insert: the same number of customers as encrypted rows with their email blind index, "
            "inserted with executemany in chunks of 5,000 (no validation, dedupe, blocking keys, risk, "
            "events).",
            "Import: parse + validate all rows, then chunks (each one transaction) with dedupe on ingest, "
            "duplicate scoring against blocking-key candidates (and the earlier rows of the file), risk "
            "rules and one outbox row per customer.",
            "Times include the whole job: parsing and validating the file, then every chunk committed.",
        ],
        "table": {
            "columns": ["database", "import rows/s", "plain insert rows/s", "ratio", "import s"],
            "rows": [
                [
                    kind,
                    d["import_rows_per_s"],
                    d["plain_rows_per_s"],
                    d["ratio_import/plain_insert"],
                    d["import_s"],
                ]
                for kind, d in figures.items()
            ],
            "caption": f"{count:,} customers",
        },
    }
