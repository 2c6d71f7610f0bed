"""Analytics: storefront events into rollups against raw aiokafka consumption, and KPI queries from the
rollups at 10 million events against the same KPIs computed from the raw events.

1. ingestion: the same generated ecom.activity.tracked.v1 events (sessions whose events arrive out of
   order, 10 % redelivered as new envelopes of the same message, a long tail of SKUs) are pre-produced on
   one topic of an embedded broker; then (a) a raw aiokafka group consumer reads and parses them all and
   (b) analytics-service's activity consumer (EventConsumer + handle_many fold on SQLite) folds them into
   raw events, sessions and rollups. events/s of each, ratio (b)/(a); afterwards the rollups are checked
   equal to a from-scratch recomputation.
2. KPI queries: a database migrated by the service's migrations is bulk-loaded with 10 million raw events
   (2 million sessions over a year, 8 channels, 12 campaigns, out-of-order events within sessions) plus
   their order facts, and the rollups the consumer would have built (accumulated by the generator, which
   knows each session's earliest event). GET /v1/kpis' query (`kpis.service.report`, 30 days by day) is
   timed many times; the same KPIs (sessions, conversion, cart abandonment, orders, revenue, AOV) are
   computed from the raw events with SQL (sessions grouped from their events) a few times; the values
   must be equal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchlib, also when run as a script

from aiokafka import AIOKafkaConsumer
from benchlib import migrated_database, ratio, summarize
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from analytics_service.config import ALEMBIC_INI, Settings
from analytics_service.events import ACTIVITY_BATCH, ACTIVITY_CONSUMER, consumers
from analytics_service.kpis import service as kpis
from analytics_service.periods import DateRange
from analytics_service.warehouse.models import DailyChannelRollup, DailyProductRollup, DailyRollup
from analytics_service.warehouse.recompute import rollups_from_scratch
from analytics_service.warehouse.rollups import by_day
from contracts import CloudEvent, build_event
from contracts.catalog.activity import ActivityTracked
from servicekit.broker import EmbeddedBroker
from servicekit.db import Database
from servicekit.events import EventConsumer
from servicekit.events.kafka import ensure_topics, make_producer
from servicekit.events.models import InboxEntry

NAME = "analytics"
DESCRIPTION = (
    "Storefront events folded into rollups (events/s) against raw aiokafka consumption of the same "
    "events; KPI query p50/p99 from rollups at 10M events against the same KPIs from raw events"
)
TIMEOUT_S = 3000.0

CHANNELS = ["google", "facebook", "email", "direct", "instagram", "tiktok", "affiliate", "bing"]
CAMPAIGNS = [
    "",
    "spring",
    "summer",
    "black-friday",
    "retarget",
    "brand",
    "newsletter",
    "sale",
    "xmas",
    "launch",
    "vip",
    "clearance",
]
START_DAY = date(2025, 12, 1)
DAYS = 365
FUNNEL = [
    "Page Viewed",
    "Products Searched",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
]


def _zipf_sku(rng: random.Random, skus: int) -> str:
    """A long tail: a few SKUs sell often, most rarely."""
    return f"SKU-{min(skus - 1, int(rng.paretovariate(1.1)) - 1):05d}"


def _session_events(rng: random.Random, skus: int) -> tuple[list[tuple[str, datetime, str | None]], bool]:
    """One session's events (name, time, sku), in time order, and whether it purchased."""
    start = datetime(START_DAY.year, START_DAY.month, START_DAY.day, tzinfo=UTC) + timedelta(
        days=rng.randrange(DAYS), seconds=rng.randrange(86_400)
    )
    depth = min(len(FUNNEL), 1 + int(rng.expovariate(0.45)))
    events = []
    for step in range(depth):
        name = FUNNEL[step]
        sku = _zipf_sku(rng, skus) if name in ("Product Viewed", "Product Added") else None
        events.append((name, start + timedelta(seconds=40 * step), sku))
    purchased = depth == len(FUNNEL) and rng.random() < 0.55
    if purchased:
        events.append(("Order Completed", start + timedelta(seconds=40 * depth), None))
    return events, purchased


# --- 1. ingestion ----------------------------------------------------------------------------------------


def _ingestion_events(count: int, seed: int) -> list[CloudEvent]:
    """Envelopes to publish (about `count`), shuffled within bursts so events of a session arrive out of
    order; 10 % of them again as a new envelope of the same message (a client retry)."""
    rng = random.Random(seed)
    envelopes: list[CloudEvent] = []
    received = datetime.now(UTC)
    while len(envelopes) < count:
        session = uuid.uuid4().hex
        anonymous = uuid.uuid4().hex
        customer = f"c{rng.randrange(5000)}" if rng.random() < 0.3 else None
        channel, campaign = rng.choice(CHANNELS), rng.choice(CAMPAIGNS)
        events, _ = _session_events(rng, 2000)
        for name, when, sku in events:
            data = ActivityTracked(
                message_id=uuid.uuid4().hex,
                event=name,  # type: ignore[arg-type]
                timestamp=when,
                received_at=received,
                session_id=session,
                anonymous_id=anonymous,
                customer_id=customer if name == "Checkout Started" else None,
                channel=channel,
                campaign=campaign,
                properties={"sku": sku}
                if sku
                else ({"order_id": uuid.uuid4().hex} if name == "Order Completed" else {}),
            )
            envelopes.append(build_event("ecom.activity.tracked.v1", data, subject=session))
    for envelope in rng.sample(envelopes, len(envelopes) // 10):
        envelopes.append(envelope.model_copy(update={"id": uuid.uuid4().hex}))
    # Out of order: shuffle within windows of 200 (a session's events get mixed with its neighbours').
    for start in range(0, len(envelopes), 200):
        window = envelopes[start : start + 200]
        rng.shuffle(window)
        envelopes[start : start + 200] = window
    return envelopes


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    settings = Settings(kafka_bootstrap_servers=bootstrap)
    producer = make_producer(settings, client_id="bench-analytics-producer")
    await producer.start()
    try:
        for start in range(0, len(records), 1000):
            futures = [
                await producer.send(topic, value, key=key) for value, key in records[start : start + 1000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def bench_consumer(bootstrap: str, topic: str, group: str, batch: int) -> AIOKafkaConsumer:
    """A group consumer of a group of its own (`group` and a random suffix) reading `topic` from the
    start, fetching up to `batch` records as the pipeline's consumer fetches, committing by hand."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{group}-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        max_poll_records=batch,
        session_timeout_ms=3000,
        heartbeat_interval_ms=750,
    )


async def _raw_consume(bootstrap: str, topic: str, total: int, batch: int) -> tuple[float, float]:
    """Wall and process CPU seconds from the first fetched batch to the last parsed record (fetches of
    up to `batch` records, as the pipeline's consumer fetches)."""
    consumer = bench_consumer(bootstrap, topic, "bench-raw", batch)
    await consumer.start()
    seen = 0
    started: float | None = None
    cpu = 0.0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                if started is None:
                    started, cpu = time.perf_counter(), time.process_time()
                for record in records:
                    CloudEvent.from_json_bytes(record.value or b"")
                    seen += 1
                await consumer.commit({tp: records[-1].offset + 1})
        assert started is not None
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await consumer.stop()


async def _pipeline_consume(
    bootstrap: str, topic: str, url: str, total: int
) -> tuple[float, float, int, Database]:
    """Wall and process CPU seconds from the first handled batch to the last inbox row, and the events
    handled in that time (those of the first batch are not)."""
    settings = Settings(database_url=url, kafka_bootstrap_servers=bootstrap)
    service_spec = next(spec for spec in consumers(settings) if spec.name == ACTIVITY_CONSUMER)
    # the service's spec (handlers, batch size) on the bench's topic, under a group of its own
    spec = dataclasses.replace(service_spec, name=f"{ACTIVITY_CONSUMER}.bench", topics=[topic])
    database = Database(url, sqlite_cache_kib=settings.database_sqlite_cache_kib)  # as the service's
    dlq = make_producer(settings, client_id="bench-analytics-dlq")
    await dlq.start()
    consumer = EventConsumer(
        spec,
        database,
        bootstrap_servers=bootstrap,
        dlq_producer=dlq,
        fetch_max_wait_ms=20,
        session_timeout_ms=3000,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    started: float | None = None
    cpu = 0.0
    before = 0
    try:
        await asyncio.wait_for(consumer.assigned.wait(), 60)
        while True:
            async with database.read() as connection:
                handled = await connection.scalar(
                    select(func.count()).select_from(InboxEntry).where(InboxEntry.consumer == spec.name)
                )
            if handled and started is None:
                started, cpu, before = time.perf_counter(), time.process_time(), handled
            if (handled or 0) >= total:
                break
            await asyncio.sleep(0.05)
        assert started is not None
        return time.perf_counter() - started, time.process_time() - cpu, total - before, database
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        await dlq.stop()


async def _rollups_equal_recomputation(database: Database, currency: str) -> bool:
    async with database.read() as connection:
        expected = await rollups_from_scratch(connection, reporting_currency=currency)
        channel_rows = (await connection.execute(select(DailyChannelRollup.__table__))).mappings().all()  # type: ignore[attr-defined]
        product_rows = (await connection.execute(select(DailyProductRollup.__table__))).mappings().all()  # type: ignore[attr-defined]
        daily_rows = (await connection.execute(select(DailyRollup.__table__))).mappings().all()  # type: ignore[attr-defined]
    keys = ("day", "channel", "campaign", "sku", "location_id")

    def cleaned(rows: Any, key_names: tuple[str, ...]) -> dict[Any, dict[str, int]]:
        out = {}
        for row in rows:
            counts = {k: v for k, v in row.items() if k not in keys and v}
            if counts:
                out[tuple(row[k] for k in key_names)] = counts
        return out

    want_channel = {
        k: {n: v for n, v in c.items() if v} for k, c in expected.channel.items() if any(c.values())
    }
    want_product = {
        k: {n: v for n, v in c.items() if v} for k, c in expected.product.items() if any(c.values())
    }
    want_daily = {
        (day,): {n: v for n, v in c.items() if v}
        for day, c in by_day(expected.channel).items()
        if any(c.values())
    }
    return (
        cleaned(channel_rows, ("day", "channel", "campaign")) == want_channel
        and cleaned(product_rows, ("day", "sku", "location_id")) == want_product
        and cleaned(daily_rows, ("day",)) == want_daily
    )


async def ingestion(quick: bool, tmp: Path) -> dict[str, Any]:
    count = 3000 if quick else 30_000
    envelopes = _ingestion_events(count, seed=7)
    total = len(envelopes)
    produced = [(e.to_json_bytes(), (e.subject or "").encode()) for e in envelopes]
    # The generator's pydantic envelopes are not kept while the consumers run: a consumer process holds
    # no such list, and every full garbage collection of both consumers walked its 33,000 objects.
    del envelopes
    gc.collect()
    with (tmp / "broker.log").open("wb") as log, EmbeddedBroker(log=log) as broker:
        bootstrap = broker.bootstrap_servers
        topic = f"bench.activity.{uuid.uuid4().hex[:8]}"
        await ensure_topics(bootstrap, [topic, f"{topic}.dlq"], partitions=3)
        await _produce(bootstrap, topic, produced)
        raw_s, raw_cpu = await _raw_consume(bootstrap, topic, total, ACTIVITY_BATCH)
        async with migrated_database("sqlite", tmp, "ingest", ALEMBIC_INI, "") as url:
            pipeline_s, pipeline_cpu, timed, database = await _pipeline_consume(bootstrap, topic, url, total)
            equal = await _rollups_equal_recomputation(database, Settings().reporting_currency)
            async with database.read() as connection:
                stored = await connection.scalar(text("SELECT count(*) FROM activity_events"))
            await database.dispose()
            floor = await _storage_floor(tmp, url, total, raw_s, raw_cpu)
    raw_eps, pipeline_eps = total / raw_s, timed / pipeline_s
    return {
        "envelopes": total,
        "distinct_messages": stored,
        "raw_aiokafka_eps": round(raw_eps, 1),
        "rollups_sqlite_eps": round(pipeline_eps, 1),
        "ratio_rollups_over_raw": ratio(pipeline_eps, raw_eps),
        "raw_cpu_us_per_event": round(raw_cpu / total * 1e6, 1),
        "rollups_cpu_us_per_event": round(pipeline_cpu / timed * 1e6, 1),
        "rollups_timed_envelopes": timed,
        "fetch_batch": ACTIVITY_BATCH,
        "rollups_equal_recomputation": equal,
        "storage_floor": floor,
    }


FLOOR_TABLES = ("inbox", "activity_events")


def sqlite3_like_the_service(path: str) -> sqlite3.Connection:
    """A bare sqlite3 connection with the service's write settings: WAL, synchronous NORMAL (as
    servicekit's connections) and analytics' page cache (a floor of the fold as it runs)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    cache_kib = Settings().database_sqlite_cache_kib
    if cache_kib is not None:
        connection.execute(f"PRAGMA cache_size=-{cache_kib}")
    return connection


async def _storage_floor(
    tmp: Path, folded_url: str, total: int, raw_s: float, raw_cpu: float
) -> dict[str, Any]:
    """What storing alone costs: the rows every envelope leaves whatever the fold does (its inbox row; its
    raw event, once per message), read back as the fold stored them and inserted again into a fresh
    database migrated by the service's migrations (its indexes), with sqlite3's `executemany` in
    transactions of the consumer's batch size: no SQLAlchemy, no decoding, no sessions or rollups. Its
    rate against the raw consumer's bounds what any fold that keeps every raw event can reach here."""
    source = sqlite3.connect(make_url(folded_url).database or "")
    try:
        tables = {
            name: (
                [row[1] for row in source.execute(f"PRAGMA table_info({name})")],
                source.execute(f"SELECT * FROM {name}").fetchall(),
            )
            for name in FLOOR_TABLES
        }
    finally:
        source.close()
    async with migrated_database("sqlite", tmp, "floor", ALEMBIC_INI, "") as url:
        target = sqlite3_like_the_service(make_url(url).database or "")
        statements = {
            name: f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for name, (columns, _rows) in tables.items()
        }
        batches = -(-total // ACTIVITY_BATCH)
        started, cpu = time.perf_counter(), time.process_time()
        for index in range(batches):
            with target:
                for name, (_columns, rows) in tables.items():
                    share = rows[index * len(rows) // batches : (index + 1) * len(rows) // batches]
                    target.executemany(statements[name], share)
        floor_s, floor_cpu = time.perf_counter() - started, time.process_time() - cpu
        target.close()
    return {
        "rows": {name: len(rows) for name, (_columns, rows) in tables.items()},
        "eps": round(total / floor_s, 1),
        "cpu_us_per_event": round(floor_cpu / total * 1e6, 1),
        "ratio_floor_over_raw": ratio(total / floor_s, total / raw_s),
        "cpu_ratio_floor_over_raw": ratio(floor_cpu, raw_cpu),
    }


# --- 2. KPI queries at 10M events ------------------------------------------------------------------------


def _bulk_load(path: Path, events: int, seed: int) -> dict[str, Any]:
    """Raw events, sessions' order facts and the rollups, written with sqlite3 in big transactions
    (indexes dropped during the load and rebuilt after)."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type='index' AND tbl_name='activity_events' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    channel_rollup: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    received = "2026-11-29 00:00:00.000000"
    rows: list[tuple[Any, ...]] = []
    orders: list[tuple[Any, ...]] = []
    written = sessions = 0
    customers = max(1000, events // 100)  # about 2 orders a customer over the year: repeat buyers
    insert = (
        "INSERT INTO activity_events (message_id, event, occurred_at, received_at, day, session_id, "
        "anonymous_id, customer_id, channel, campaign, sku, order_id, revenue_minor, properties) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    while written < events:
        sessions += 1
        session_id = f"s{sessions:08d}"
        # a long tail of channels and campaigns: the first ones carry most traffic
        channel = CHANNELS[min(len(CHANNELS) - 1, int(rng.expovariate(0.6)))]
        campaign = CAMPAIGNS[min(len(CAMPAIGNS) - 1, int(rng.expovariate(0.4)))]
        seq, purchased = _session_events(rng, 20_000)
        first_day = seq[0][1].date().isoformat()
        key = (first_day, channel, campaign)
        counts = channel_rollup[key]
        counts["sessions"] += 1
        names = {name for name, _, _ in seq}
        counts["sessions_viewed"] += "Product Viewed" in names
        counts["sessions_added"] += "Product Added" in names
        counts["sessions_checkout"] += "Checkout Started" in names
        counts["sessions_purchased"] += purchased
        counts["page_views"] += sum(1 for n, _, _ in seq if n == "Page Viewed")
        counts["product_views"] += sum(1 for n, _, _ in seq if n == "Product Viewed")
        counts["events"] += len(seq)
        order_id = None
        if purchased:
            order_id = f"o{sessions:08d}"
            total = rng.choice([1990, 2500, 4990, 7900, 12000, 35000])
            status = "cancelled" if rng.random() < 0.05 else "paid"
            orders.append(
                (
                    order_id,
                    f"c{rng.randrange(customers)}",
                    channel,
                    campaign,
                    session_id,
                    total,
                    status,
                    seq[-1][1],
                )
            )
        # out of order: the session's events are written in a shuffled order
        shuffled = list(seq)
        rng.shuffle(shuffled)
        for name, when, sku in shuffled:
            written += 1
            rows.append(
                (
                    f"m{written:09d}",
                    name,
                    when.isoformat(" "),
                    received,
                    when.date().isoformat(),
                    session_id,
                    f"a{sessions:08d}",
                    None,
                    channel,
                    campaign,
                    sku,
                    order_id if name == "Order Completed" else None,
                    None,
                    f'{{"sku": "{sku}"}}' if sku else "{}",
                )
            )
        if len(rows) >= 200_000:
            db.executemany(insert, rows)
            db.commit()
            rows.clear()
    if rows:
        db.executemany(insert, rows)
    db.executemany(
        "INSERT INTO order_facts (order_id, order_number, placed, customer_id, sales_channel, channel, "
        "campaign, session_id, currency, subtotal_minor, discount_minor, total_minor, cogs_minor, "
        "cogs_complete, status, status_at, placed_at, day, is_first, prior_order_day, "
        "second_prior_order_day, prior_channel_order_day, second_prior_channel_order_day) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        _order_facts(orders, channel_rollup),
    )
    columns = [c.name for c in DailyRollup.__table__.columns if c.name != "day"]  # type: ignore[attr-defined]
    db.executemany(
        f"INSERT INTO rollup_daily_channel (day, channel, campaign, {', '.join(columns)}) "
        f"VALUES (?,?,?,{','.join('?' * len(columns))})",
        [(*key, *[int(c[name]) for name in columns]) for key, c in channel_rollup.items()],
    )
    daily: dict[str, Counter[str]] = defaultdict(Counter)
    for (day, _, _), counts in channel_rollup.items():
        daily[day].update(counts)
    db.executemany(
        f"INSERT INTO rollup_daily (day, {', '.join(columns)}) VALUES (?,{','.join('?' * len(columns))})",
        [(day, *[int(c[name]) for name in columns]) for day, c in daily.items()],
    )
    db.commit()
    for _, sql in indexes:
        db.execute(sql)
    db.execute("CREATE INDEX IF NOT EXISTS bench_ix_activity_day ON activity_events (day)")
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return {
        "events": written,
        "sessions": sessions,
        "orders": len(orders),
        "rollup_rows": len(channel_rollup),
    }


def _order_facts(
    orders: list[tuple[str, str, str, str, str, int, str, datetime]],
    channel_rollup: dict[tuple[str, str, str], Counter[str]],
) -> list[tuple[Any, ...]]:
    """The order facts as the facts consumer would hold them (first orders and prior-order days from each
    customer's counted orders by time), their counts added to the channel rollup."""
    chains: dict[str, list[str]] = defaultdict(list)
    channel_chains: dict[tuple[str, str], list[str]] = defaultdict(list)
    facts = []
    for order_id, customer, channel, campaign, session_id, total, status, when in sorted(
        orders, key=lambda o: (o[7], o[0])
    ):
        day = when.date().isoformat()
        counts = channel_rollup[(day, channel, campaign)]
        prior = second = channel_prior = channel_second = None
        first = False
        if status == "cancelled":
            counts["cancelled_orders"] += 1
        else:
            chain = chains[customer]
            prior = chain[-1] if chain else None
            second = chain[-2] if len(chain) > 1 else None
            first = not chain
            chain.append(day)
            same_channel = channel_chains[(customer, channel)]
            channel_prior = same_channel[-1] if same_channel else None
            channel_second = same_channel[-2] if len(same_channel) > 1 else None
            same_channel.append(day)
            counts["orders"] += 1
            counts["customer_orders"] += 1
            counts["new_customer_orders"] += first
            counts["revenue_minor"] += total
            counts["cogs_minor"] += total // 3
            counts["units"] += 1
        at = when.isoformat(" ")
        head = (order_id, f"N{order_id}", 1, customer, "web", channel, campaign, session_id, "EUR")
        priors = (prior, second, channel_prior, channel_second)
        facts.append((*head, total, 0, total, total // 3, 1, status, at, at, day, first, *priors))
    return facts


RAW_KPIS_SQL = """
WITH s AS (
    SELECT session_id,
           MIN(day) AS first_day,
           MAX(event = 'Order Completed') AS purchased,
           MAX(event = 'Product Added') AS added
    FROM activity_events
    WHERE session_id IS NOT NULL
      AND session_id IN (SELECT session_id FROM activity_events WHERE day BETWEEN :start AND :end)
    GROUP BY session_id
)
SELECT COUNT(*), COALESCE(SUM(purchased), 0), COALESCE(SUM(added), 0)
FROM s WHERE first_day BETWEEN :start AND :end
"""


REPEAT_SQL = """
SELECT COALESCE(SUM(n >= 1), 0), COALESCE(SUM(n >= 2), 0) FROM (
    SELECT customer_id, COUNT(*) AS n FROM order_facts
    WHERE placed = 1 AND status NOT IN ('cancelled', 'refunded') AND currency = 'EUR'
      AND customer_id IS NOT NULL AND day BETWEEN :start AND :end
    GROUP BY customer_id
)
"""
TO_DATE_SQL = """
SELECT COALESCE(SUM(total_minor), 0), COUNT(DISTINCT customer_id) FROM order_facts
WHERE placed = 1 AND status NOT IN ('cancelled', 'refunded') AND currency = 'EUR' AND day <= :end
"""


async def raw_kpis(database: Database, span: DateRange) -> dict[str, Any]:
    """Sessions, conversion and cart abandonment grouped from the raw events; orders, revenue, the repeat
    purchase rate (orders grouped by customer) and historical CLV (revenue and distinct customers to
    date) from the order facts (the orders' raw data)."""
    bounds = {"start": span.start.isoformat(), "end": span.end.isoformat()}
    async with database.read() as connection:
        sessions, purchased, added = (await connection.execute(text(RAW_KPIS_SQL), bounds)).one()
        orders, revenue = (
            await connection.execute(
                text(
                    "SELECT COUNT(*), COALESCE(SUM(total_minor), 0) FROM order_facts WHERE placed = 1 "
                    "AND status NOT IN ('cancelled', 'refunded') AND currency = 'EUR' "
                    "AND day BETWEEN :start AND :end"
                ),
                bounds,
            )
        ).one()
        once, twice = (await connection.execute(text(REPEAT_SQL), bounds)).one()
        revenue_to_date, customers_to_date = (await connection.execute(text(TO_DATE_SQL), bounds)).one()
    sums = Counter(
        {
            "sessions": sessions,
            "sessions_purchased": purchased,
            "sessions_added": added,
            "orders": orders,
            "revenue_minor": revenue,
        }
    )
    values = kpis.derive(sums)
    values["repeat_purchase_rate"] = round(twice / once, 6) if once else None
    values["historical_clv"] = (
        round(revenue_to_date / customers_to_date / 100, 2) if customers_to_date else None
    )
    return {name: values[name] for name in COMPARED}


COMPARED = (
    "sessions",
    "conversion_rate",
    "cart_abandonment_rate",
    "orders",
    "revenue",
    "average_order_value",
    "repeat_purchase_rate",
    "historical_clv",
)


async def _build_kpi_database(path: Path, events: int, seed: int) -> dict[str, Any]:
    """The 10M-event database, generated by this file in a child process at `nice -n 5` (the machine is
    shared; the generator is pure Python)."""
    process = await asyncio.create_subprocess_exec(
        "nice",
        "-n",
        "5",
        sys.executable,
        __file__,
        "--build",
        str(path),
        str(events),
        str(seed),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"building the KPI database failed (exit {process.returncode})")
    loaded: dict[str, Any] = json.loads(out)
    return loaded


async def _report_parts(
    database: Database, span: DateRange, filters: kpis.Filters, repeats: int
) -> dict[str, Any]:
    """p50/p99 of each statement group of the report (where its time goes)."""
    before = span.previous()
    both = DateRange(before.start, span.end)
    customer_orders = (0, 0)
    parts: dict[str, Any] = {}
    for name in ("daily_sums", "repeat_purchase_rates"):
        ms = []
        for _ in range(repeats):
            started = time.perf_counter()
            async with database.read() as connection:
                if name == "daily_sums":  # rollup sums by day and before the range, spend, expenses
                    days = await kpis.daily_sums(connection, both, filters, with_earlier=True)
                    customer_orders = (
                        sum(c["customer_orders"] for d, c in days.items() if d and d >= span.start),
                        sum(c["customer_orders"] for d, c in days.items() if d and d < span.start),
                    )
                else:
                    await kpis.repeat_purchase_rates(
                        connection, span, before, filters, customer_orders=customer_orders
                    )
            ms.append((time.perf_counter() - started) * 1000)
        summary = summarize(ms)
        parts[name] = {"p50": summary["p50"], "p99": summary["p99"]}
    return parts


async def kpi_queries(quick: bool, tmp: Path, keep: Path | None = None) -> dict[str, Any]:
    """The KPI report timed on a database of 10M events (200,000 with `quick`); with `keep`, the database
    is built there once and reused by later runs (for iterating on the queries; `bench/run.py` always
    builds a fresh one)."""
    events = 200_000 if quick else 10_000_000
    repeats, raw_repeats = (50, 2) if quick else (300, 3)
    async with contextlib.AsyncExitStack() as stack:
        load_s: float | None = None
        if keep is not None and await asyncio.to_thread(keep.exists):
            url = f"sqlite+aiosqlite:///{keep}"
            loaded = json.loads(keep.with_suffix(".json").read_text())
        else:
            label = "kpis" if keep is None else keep.stem
            url = await stack.enter_async_context(
                migrated_database("sqlite", tmp if keep is None else keep.parent, label, ALEMBIC_INI, "")
            )
            load_started = time.perf_counter()
            loaded = await _build_kpi_database(Path(url.split("///", 1)[1]), events, 11)
            load_s = round(time.perf_counter() - load_started, 1)
            if keep is not None:
                keep.with_suffix(".json").write_text(json.dumps(loaded))
        database = Database(url)
        span = DateRange(START_DAY + timedelta(days=200), START_DAY + timedelta(days=229))
        filters = kpis.Filters(currency="EUR")
        rollup_ms = []
        report = None
        for _ in range(repeats):
            started = time.perf_counter()
            async with database.read() as connection:
                report = await kpis.report(connection, span, granularity="day", filters=filters)
            rollup_ms.append((time.perf_counter() - started) * 1000)
        channel_ms = []
        channel_repeat_equal = True
        for index in range(repeats // 3):
            channel_filters = kpis.Filters(channel=CHANNELS[index % 3], currency="EUR")
            started = time.perf_counter()
            async with database.read() as connection:
                by_channel = await kpis.report(connection, span, granularity="week", filters=channel_filters)
            channel_ms.append((time.perf_counter() - started) * 1000)
            if index < 3:  # the channel's repeat purchase rates against grouping its orders by customer
                async with database.read() as connection:
                    grouped = await kpis.repeat_rates_by_customer(
                        connection, span, span.previous(), channel_filters
                    )
                rates = by_channel.kpis["repeat_purchase_rate"]
                channel_repeat_equal &= (rates.value, rates.previous) == grouped
        parts = await _report_parts(database, span, filters, repeats // 3)
        raw_ms = []
        raw_values: dict[str, Any] = {}
        for _ in range(raw_repeats):
            started = time.perf_counter()
            raw_values = await raw_kpis(database, span)
            raw_ms.append((time.perf_counter() - started) * 1000)
        await database.dispose()
    assert report is not None
    rollup_values = {name: report.kpis[name].value for name in COMPARED}
    rollup_summary, raw_summary = summarize(rollup_ms), summarize(raw_ms)
    return {
        "loaded": loaded,
        "bulk_load_s": load_s,
        "report_parts_ms": parts,
        "range_days": span.days,
        "rollup_report_ms": rollup_summary,
        "rollup_report_channel_filter_ms": summarize(channel_ms),
        "channel_repeat_purchase_rates_equal_grouping": channel_repeat_equal,
        "raw_kpis_ms": raw_summary,
        "rollup_values": rollup_values,
        "raw_values": raw_values,
        "equal": rollup_values == raw_values,
        "speedup_p50_raw_over_rollups": ratio(float(raw_summary["p50"]), float(rollup_summary["p50"])),
    }


async def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as directory:
        tmp = Path(directory)
        ingest = await ingestion(quick, tmp)
        queries = await kpi_queries(quick, tmp)
    return _result(quick, ingest, queries)


def _result(quick: bool, ingest: dict[str, Any], queries: dict[str, Any]) -> dict[str, Any]:
    headline = {
        "ingestion rollups/raw (goal >= 0.5)": ingest["ratio_rollups_over_raw"],
        "ingestion rollups events/s (SQLite)": ingest["rollups_sqlite_eps"],
        "rollups equal recomputation": ingest["rollups_equal_recomputation"],
        "ingestion storage floor/raw (raw events + inbox rows, sqlite3 alone)": ingest["storage_floor"][
            "ratio_floor_over_raw"
        ],
        "KPI report p50 ms (rollups)": queries["rollup_report_ms"]["p50"],
        "KPI report p99 ms (rollups, goal < 50)": queries["rollup_report_ms"]["p99"],
        "same KPIs from raw events p50 ms": queries["raw_kpis_ms"]["p50"],
        "rollup KPIs equal raw KPIs": queries["equal"],
    }
    return {
        "parameters": {
            "quick": quick,
            "kpi_events": queries["loaded"]["events"],
            "ingestion_envelopes": ingest["envelopes"],
        },
        "figures": {"ingestion": ingest, "kpi_queries": queries},
        "headline": headline,
        "notes": [
            "ingestion: both consumers read the same pre-produced topic of an embedded broker "
            "(3 partitions); the pipeline's time runs from its first handled batch to the last inbox row, "
            "the raw one's from its first fetched batch to the last parsed record",
            "KPI queries: SQLite, in-process calls of the /v1/kpis query (no HTTP); the rollups of the 10M "
            "set are accumulated by the generator (the bulk load skips the consumer), the raw KPIs group "
            "the raw events by session in SQL",
        ],
    }


async def _one_part(part: str, quick: bool, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as directory:
        if part == "ingestion":
            return await ingestion(quick, Path(directory))
        return await kpi_queries(quick, Path(directory), keep)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=f"{DESCRIPTION}. One part alone, printed as JSON (no result file written); "
        "`bench/run.py analytics` runs both and records them."
    )
    parser.add_argument("--part", choices=("ingestion", "kpis"), help="the part to run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--keep-db", type=Path, help="kpis: build the database at this path (*.db) once and reuse it"
    )
    parser.add_argument("--build", nargs=3, metavar=("PATH", "EVENTS", "SEED"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.build:
        path, count, seed_text = arguments.build
        print(json.dumps(_bulk_load(Path(path), int(count), int(seed_text))))
    elif arguments.part:
        print(
            json.dumps(asyncio.run(_one_part(arguments.part, arguments.quick, arguments.keep_db)), indent=2)
        )
    else:
        parser.error("--part is required")
