"""Identify latency as the customer base grows: POST /v1/customers/identify through the real app (HTTP
over ASGI, real migrations, SQLite by default), at growing numbers of customers, against the bare
indexed lookup of the same blind index on the same database as the baseline.

The base is populated directly with SQLAlchemy Core (encrypted rows and blind indexes computed with the
service's own KeyRing), so that a million rows take minutes, not hours; the measured calls go through
the service's code. How p50/p99 grow with the size is the figure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from benchlib import percentile, ratio, summarize
from sqlalchemy import insert, select, text

from contracts import uuid7
from customer_service.config import ALEMBIC_INI, Settings
from customer_service.context import CustomerContext
from customer_service.crypto import encrypt_document
from customer_service.customers import service as customers_service
from customer_service.customers.models import BlockingKey, Customer, CustomerIdentifier
from customer_service.duplicates.matching import side_of
from customer_service.main import create_app
from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.testing import TestTokenIssuer, running_app

NAME = "customer_identify"
DESCRIPTION = (
    "Identify p50/p99 latency through the service at growing customer counts, against the bare indexed "
    "blind-index lookup on the same database"
)
TIMEOUT_S = 3000.0
DATABASE_URL_ENV = "BENCH_DATABASE_URL"
CHUNK = 5_000
POPULATE_CACHE_KIB = 512 * 1024
# Processes making the rows of the profile base while the main one inserts them.
LOAD_WORKERS = 2
SEED = 7


def email_of(n: int) -> str:
    return f"customer{n}@bench.example.com"


class People:
    """Names, places and birth dates for a realistic base: names drawn from pools with a skewed (Zipf)
    distribution, as real names are (a few very common ones fill big blocking blocks), a few hundred
    postcodes, streets from a pool, so that a new profile shares blocking keys with many existing ones."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        fake = Faker("fr_FR")
        fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.first = list(dict.fromkeys(fake.first_name() for _ in range(3_000)))
        self.last = list(dict.fromkeys(fake.last_name() for _ in range(4_000)))
        self.first_cum = list(itertools.accumulate(1.0 / (k + 1) for k in range(len(self.first))))
        self.last_cum = list(itertools.accumulate(1.0 / (k + 1) ** 0.9 for k in range(len(self.last))))
        self.places = [(fake.city(), fake.postcode()) for _ in range(300)]
        self.streets = [fake.street_name() for _ in range(5_000)]

    def names(self) -> tuple[str, str]:
        rng = self.rng
        return (
            rng.choices(self.first, cum_weights=self.first_cum)[0],
            rng.choices(self.last, cum_weights=self.last_cum)[0],
        )

    def contact(self) -> dict[str, Any]:
        rng = self.rng
        city, postcode = rng.choice(self.places)
        return {
            "addresses": [
                {  # as the service stores an address (customers.service normalises to this shape)
                    "id": f"{rng.getrandbits(48):012x}",
                    "kind": "shipping",
                    "line1": f"{rng.randrange(1, 200)} {rng.choice(self.streets)}",
                    "line2": None,
                    "city": city,
                    "postcode": postcode,
                    "region": None,
                    "country": "FR",
                    "is_default": True,
                    "verified": False,
                }
            ],
            "birthday": f"{rng.randrange(1940, 2006)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        }


def _rows(
    context: CustomerContext, start: int, stop: int, people: People | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Encrypted customers with their email blind index; with `people`, also names, an address, a birth
    date and the blocking keys the service computes for them (its own code: `side_of`,
    `blocking_keys_of_side`)."""
    keyring = context.keyring
    now = datetime.now(UTC)
    customers, identifiers, keys = [], [], []
    for n in range(start, stop):
        customer_id = str(uuid7())
        data_key, wrapped = keyring.new_data_key()
        document: dict[str, Any] = {
            "emails": [{"address": email_of(n), "verified": False, "added_at": now.isoformat()}],
            "phones": [],
            "addresses": [],
            "birthday": None,
        }
        first, last = f"First{n}", f"Last{n}"
        if people is not None:
            first, last = people.names()
            document.update(people.contact())
            side = side_of(first, last, document)
            keys += (
                {"customer_id": customer_id, "key": key}
                for key in sorted(customers_service.blocking_keys_of_side(context, side))
            )
        customers.append(
            {
                "id": customer_id,
                "version": 1,
                "status": "active",
                "merged_into_id": None,
                "first_name": first,
                "last_name": last,
                "locale": None,
                "country": "FR",
                "attributes": {},
                "tags": [],
                "consents": {},
                "quality_score": 0.6,
                "quality": {"valid_email": True, "no_open_duplicate": True},
                "key_id": wrapped.kid,
                "wrapped_key": wrapped.blob,
                "pii": encrypt_document(data_key, document, aad=customer_id),
                "index_key_id": keyring.blind_kid,
                "created_at": now,
                "updated_at": now,
            }
        )
        index = keyring.blind_index("email", email_of(n))
        identifiers.append(
            {
                "customer_id": customer_id,
                "kind": "email",
                "blind_index": index,
                "unique_key": f"email:{index}",
                "value": None,
                "created_at": now,
            }
        )
    return customers, identifiers, keys


async def populate(
    database: Database, context: CustomerContext, start: int, stop: int, people: People | None = None
) -> float:
    """Insert customers start..stop-1 in chunks, each one Core executemany per table into the migrated
    schema with every index in place (with `people`: full profiles and their blocking keys); returns
    seconds spent. The import scenario's baseline (plain insert) is this without `people`."""
    began = time.perf_counter()
    for chunk in range(start, stop, CHUNK):
        customers, identifiers, keys = _rows(context, chunk, min(stop, chunk + CHUNK), people)
        await _insert_chunk(database, customers, identifiers, keys)
    if database.is_sqlite:
        async with database.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    return time.perf_counter() - began


async def _insert_chunk(
    database: Database,
    customers: list[dict[str, Any]],
    identifiers: list[dict[str, Any]],
    keys: list[dict[str, Any]],
) -> None:
    keys.sort(key=lambda row: row["key"])  # index pages filled in order, not at random
    async with database.engine.begin() as conn:
        if database.is_sqlite:
            # A bulk load: a page cache big enough for the (key, customer_id) index (per connection).
            await conn.execute(text(f"PRAGMA cache_size=-{POPULATE_CACHE_KIB}"))
        await conn.execute(insert(Customer.__table__), customers)  # type: ignore[attr-defined]
        await conn.execute(insert(CustomerIdentifier.__table__), identifiers)  # type: ignore[attr-defined]
        if keys:
            await conn.execute(insert(BlockingKey.__table__), keys)  # type: ignore[attr-defined]


async def _insert_loaded_chunk(
    database: Database,
    customers: list[dict[str, Any]],
    identifiers: list[dict[str, Any]],
    keys: list[dict[str, Any]],
) -> None:
    """`_insert_chunk` for the bulk load: the blocking keys (about 14 rows per profile) go to the
    driver as plain tuples, without SQLAlchemy's per-row parameter processing."""
    mark = "?, ?" if database.is_sqlite else "$1, $2"
    async with database.engine.begin() as conn:
        if database.is_sqlite:
            await conn.execute(text(f"PRAGMA cache_size=-{POPULATE_CACHE_KIB}"))
        await conn.execute(insert(Customer.__table__), customers)  # type: ignore[attr-defined]
        await conn.execute(insert(CustomerIdentifier.__table__), identifiers)  # type: ignore[attr-defined]
        if keys:
            await conn.exec_driver_sql(
                f"INSERT INTO customer_blocking_keys (customer_id, key) VALUES ({mark})",
                [(row["customer_id"], row["key"]) for row in keys],
            )


# --- the profile base, bulk-loaded ----------------------------------------------------------------

LOADED_TABLES = ("customers", "customer_identifiers", "customer_blocking_keys")
_worker: tuple[CustomerContext, People] | None = None


def _start_worker(settings: Settings) -> None:
    global _worker
    _worker = (CustomerContext.from_settings(settings), People(SEED))


def _profile_rows(start: int, stop: int) -> tuple[list[dict[str, Any]], ...]:
    """A chunk of full profiles, made in a worker process. The pools of names, places and streets are
    the same in every process (Faker seeded); the draws of a chunk come from a generator seeded by the
    chunk's start, so the base is the same whatever the number of workers."""
    assert _worker is not None
    context, people = _worker
    people.rng = random.Random(f"{SEED}:{start}")
    return _rows(context, start, stop, people)


async def _secondary_indexes(database: Database) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the indexes the migrations created on the loaded tables, besides
    the primary keys and unique constraints."""
    tables = ", ".join(f"'{t}'" for t in LOADED_TABLES)
    if database.is_sqlite:
        query = (
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({tables}) "
            "AND sql IS NOT NULL ORDER BY name"
        )
    else:
        query = (
            f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ({tables}) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname"
        )
    async with database.engine.connect() as conn:
        return [(str(name), str(sql)) for name, sql in (await conn.execute(text(query))).all()]


async def load_profiles(
    database: Database, settings: Settings, start: int, stop: int, *, workers: int = LOAD_WORKERS
) -> dict[str, float]:
    """Bulk-load full profiles start..stop-1: the rows the service writes for a customer (sealed
    document under its own data key, email identifier with its blind index, the blocking keys of
    `blocking_keys_of_side`), made by `workers` processes while this one inserts them, with the
    secondary indexes of the three tables dropped during the load and created again after it from
    their own CREATE statements (one sort per index instead of random B-tree inserts), then ANALYZE.
    Returns the seconds spent in each phase."""
    import concurrent.futures
    import multiprocessing

    # The worker functions by an importable name (the runner loads this file under another one).
    from scenarios import customer_identify as this

    began = time.perf_counter()
    indexes = await _secondary_indexes(database)
    async with database.engine.begin() as conn:
        for name, _ in indexes:
            await conn.execute(text(f'DROP INDEX "{name}"'))
    loop = asyncio.get_running_loop()
    bounds = [(chunk, min(stop, chunk + CHUNK)) for chunk in range(start, stop, CHUNK)]
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=this._start_worker,
        initargs=(settings,),
    ) as pool:
        pending = [loop.run_in_executor(pool, this._profile_rows, a, b) for a, b in bounds[: workers + 1]]
        submitted = len(pending)
        while pending:
            customers, identifiers, keys = await pending.pop(0)
            if submitted < len(bounds):
                pending.append(loop.run_in_executor(pool, this._profile_rows, *bounds[submitted]))
                submitted += 1
            await _insert_loaded_chunk(database, customers, identifiers, keys)
    loaded = time.perf_counter()
    async with database.engine.begin() as conn:
        if database.is_sqlite:
            await conn.execute(text(f"PRAGMA cache_size=-{POPULATE_CACHE_KIB}"))
        for _, create in indexes:
            await conn.execute(text(create))
    indexed = time.perf_counter()
    async with database.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    done = time.perf_counter()
    return {
        "populate_s": done - began,
        "rows_s": loaded - began,
        "indexes_s": indexed - loaded,
        "analyze_s": done - indexed,
    }


async def measure_identify(
    client: httpx.AsyncClient, headers: dict[str, str], emails: list[str]
) -> list[float]:
    latencies = []
    for email in emails:
        began = time.perf_counter()
        response = await client.post("/v1/customers/identify", json={"email": email}, headers=headers)
        latencies.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"identify answered {response.status_code}: {response.text[:300]}")
    return latencies


async def measure_creating(
    client: httpx.AsyncClient, headers: dict[str, str], people: People, count: int
) -> list[float]:
    """Identify calls that create a customer, so duplicate detection runs in the request: blocking-key
    lookup and the linkage model's scoring against the profiles sharing a key. The names are drawn
    like the base's (identify takes no address), so a common name's block is full."""
    latencies = []
    for _ in range(count):
        first, last = people.names()
        body = {
            "email": f"new.{uuid.uuid4().hex}@identify.example.com",
            "first_name": first,
            "last_name": last,
        }
        began = time.perf_counter()
        response = await client.post("/v1/customers/identify", json=body, headers=headers)
        latencies.append((time.perf_counter() - began) * 1000)
        if response.status_code != 201:
            raise RuntimeError(f"identify answered {response.status_code}: {response.text[:300]}")
    return latencies


async def measure_baseline(database: Database, context: CustomerContext, emails: list[str]) -> list[float]:
    latencies = []
    for email in emails:
        began = time.perf_counter()
        async with database.sessionmaker() as session:
            index = context.keyring.blind_index("email", email)
            row = (
                await session.execute(
                    select(Customer)
                    .join(CustomerIdentifier, CustomerIdentifier.customer_id == Customer.id)  # type: ignore[arg-type]
                    .where(CustomerIdentifier.kind == "email", CustomerIdentifier.blind_index == index)  # type: ignore[arg-type]
                    .limit(1)
                )
            ).scalar_one_or_none()
        latencies.append((time.perf_counter() - began) * 1000)
        if row is None:
            raise RuntimeError("baseline lookup found nothing")
    return latencies


async def run(quick: bool) -> dict[str, Any]:
    sizes = (
        [2_000, 10_000]
        if quick
        else sorted({10_000, 100_000, int(os.environ.get("BENCH_IDENTIFY_MAX", "1000000"))})
    )
    samples = 300 if quick else 2_000
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="bench-identify-") as tmp:
        url = os.environ.get(DATABASE_URL_ENV) or f"sqlite+aiosqlite:///{Path(tmp) / 'customer.db'}"
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        settings = Settings(database_url=url, kafka_enabled=False, log_json=False, log_level="WARNING")
        context = CustomerContext.from_settings(settings)
        database = Database(url)
        tokens = TestTokenIssuer()
        figures: dict[str, Any] = {"sizes": {}}
        populated = 0
        people = People(SEED)
        try:
            for size in sizes:
                load = await load_profiles(database, settings, populated, size)
                populated = size
                emails = [email_of(rng.randrange(size)) for _ in range(samples)]
                token = tokens.mint(scopes=["customers:write", "customers:read"], expires_in=3600)
                headers = {"Authorization": f"Bearer {token}"}
                async with running_app(create_app(settings), tokens, wait_for_kafka=False) as client:
                    await measure_identify(client, headers, emails[:50])  # warm-up
                    # ABBA: service, baseline, baseline, service
                    half = len(emails) // 2
                    service_ms = await measure_identify(client, headers, emails[:half])
                    baseline_ms = await measure_baseline(database, context, emails[:half])
                    baseline_ms += await measure_baseline(database, context, emails[half:])
                    service_ms += await measure_identify(client, headers, emails[half:])
                    await measure_creating(client, headers, people, 20)  # warm-up of the create path
                    creating_ms = await measure_creating(client, headers, people, samples // 4)
                figures["sizes"][str(size)] = {
                    **load,
                    "identify_ms": summarize(service_ms),
                    "identify_creating_ms": summarize(creating_ms),
                    "baseline_lookup_ms": summarize(baseline_ms),
                    "p50_ratio_identify/baseline": ratio(
                        percentile(service_ms, 50), percentile(baseline_ms, 50)
                    ),
                    "p99_ratio_identify/baseline": ratio(
                        percentile(service_ms, 99), percentile(baseline_ms, 99)
                    ),
                }
        finally:
            await database.dispose()
    first, last = str(sizes[0]), str(sizes[-1])
    growth_p99 = ratio(
        figures["sizes"][last]["identify_ms"]["p99"], figures["sizes"][first]["identify_ms"]["p99"]
    )
    growth_p50 = ratio(
        figures["sizes"][last]["identify_ms"]["p50"], figures["sizes"][first]["identify_ms"]["p50"]
    )
    headline: dict[str, Any] = {}
    for size in sizes:
        entry = figures["sizes"][str(size)]
        headline[f"identify p50 ms at {size:,}"] = entry["identify_ms"]["p50"]
        headline[f"identify p99 ms at {size:,} (goal < 10 at 1M)"] = entry["identify_ms"]["p99"]
        headline[f"identify creating (duplicate detection) p99 ms at {size:,}"] = entry[
            "identify_creating_ms"
        ]["p99"]
    headline[f"p99 growth {sizes[0]:,} -> {sizes[-1]:,} (x)"] = growth_p99
    headline[f"p99 ratio identify/bare lookup at {sizes[-1]:,}"] = figures["sizes"][last][
        "p99_ratio_identify/baseline"
    ]
    figures["growth_p50"] = growth_p50
    figures["growth_p99"] = growth_p99
    return {
        "parameters": {
            "sizes": sizes,
            "samples_per_size": samples,
            "database": url.split(":")[0],
            "http": "httpx over ASGI, kafka disabled, in-process",
        },
        "headline": headline,
        "figures": figures,
        "notes": [
            "identify_creating_ms: calls with a new email and a name drawn like the base's (Zipf: common "
            "names repeat), answered 201; the request runs duplicate detection (blocking-key lookup, "
            "Fellegi-Sunter scoring against up to 50 + 10 candidates, each decrypted). The base is "
            "populated with full profiles (names, an address from 300 places, a birth date) and the "
            "blocking keys the service computes for them, so the broad blocks of common names are full.",
            "Every call is a hit (an existing email): the storefront's common case. The response includes "
            "the decrypted (masked) profile, so the figure includes unwrapping the data key and AES-GCM.",
            "Baseline: the same indexed join on the blind index, in its own session, without HTTP, auth, "
            "decryption or rendering.",
            "Customers were bulk-inserted with precomputed encrypted rows and blocking keys (the service's "
            "own encryption and blocking code, Core executemany; not through the API).",
        ],
        "table": {
            "columns": [
                "customers",
                "identify p50 ms",
                "identify p99 ms",
                "lookup p50 ms",
                "lookup p99 ms",
                "populate s",
            ],
            "rows": [
                [
                    int(size),
                    e["identify_ms"]["p50"],
                    e["identify_ms"]["p99"],
                    e["baseline_lookup_ms"]["p50"],
                    e["baseline_lookup_ms"]["p99"],
                    e["populate_s"],
                ]
                for size, e in figures["sizes"].items()
            ],
        },
    }
