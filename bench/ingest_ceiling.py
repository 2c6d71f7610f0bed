"""How close the simplest possible ingestion of tracked events gets to raw aiokafka consumption on this
machine: `python bench/ingest_ceiling.py [--events N] [--rounds R] [--postgres URL]`.

A diagnostic for the `analytics` scenario's ingestion goal (fold / raw >= 0.5), not a scenario: it asks
what any fold that keeps the raw events could reach here, whatever its rollups cost. On the scenario's
own events (`_ingestion_events`, pre-produced once on a 3-partition topic of an embedded broker), each
mode is one aiokafka group consumer fetching the service's batch size (`ACTIVITY_BATCH`):

- `raw`: the scenario's baseline (`_raw_consume`: every record parsed as a CloudEvent).
- `decode`: every record decoded and checked as the activity consumer does it (`decode_record` and the
  payload's moments, `_checked`), nothing stored: the consumer's CPU before any fold.
- `sqlite`: `decode`, then each batch's raw events (once per message id) written with sqlite3's own
  `executemany` into `activity_events` of a database migrated by the service's migrations (its indexes,
  WAL, the service's page cache), one transaction per batch: no SQLAlchemy, no inbox, no sessions, no
  rollups.
- `sqlite_writer_process`: the same writes in a child process (the machine's other core), fed each
  batch pickled over a pipe, one batch in flight: the consumer decodes the next batch while the child
  writes the last; what moving the writes off the decoding core buys.
- `sqlite_batch_log`: `decode`, then each batch kept as one row: the raw record values of its new
  messages, newline-joined and zlib-compressed (level 1), plus one `INSERT OR IGNORE` per message id into
  a one-column key table (the durable dedup record), one transaction per batch. The same facts as
  `sqlite` (the raw events, once each) without a B-tree entry per event in five indexes: what a
  different raw-event layout, a log of batch segments, would buy.
- `postgresql`: `decode`, then each batch's raw events in one `INSERT ... SELECT FROM unnest(...)` through
  asyncpg, awaited before the next fetch (needs `--postgres`).
- `postgresql_pipelined`: the same with one batch in flight: the server inserts a batch while the
  process fetches and decodes the next (needs `--postgres`).

Each round runs `raw` and then every mode; a mode's ratio is its rate over the `raw` of its round
(medians over the rounds are printed with every round's figures, as JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import pickle
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "scenarios"))

import analytics as scenario  # noqa: E402
import asyncpg  # noqa: E402
from benchlib import migrated_database  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from analytics_service.config import ALEMBIC_INI  # noqa: E402
from analytics_service.events import ACTIVITY_BATCH  # noqa: E402
from analytics_service.warehouse import activity, bulk  # noqa: E402
from servicekit.broker import EmbeddedBroker  # noqa: E402
from servicekit.db import asyncpg_dsn  # noqa: E402
from servicekit.events.kafka import ensure_topics  # noqa: E402

COLUMNS = (
    "message_id, event, occurred_at, received_at, day, session_id, anonymous_id, customer_id, channel, "
    "campaign, sku, order_id, properties"
)
SQLITE_INSERT = (
    f"INSERT INTO activity_events ({COLUMNS}) VALUES ({', '.join('?' * 13)}) ON CONFLICT DO NOTHING"
)
PG_INSERT = (
    f"INSERT INTO activity_events ({COLUMNS}) SELECT * FROM unnest($1::text[], $2::text[], "
    "$3::timestamptz[], $4::timestamptz[], $5::date[], $6::text[], $7::text[], $8::text[], $9::text[], "
    "$10::text[], $11::text[], $12::text[], $13::json[]) ON CONFLICT DO NOTHING"
)

Batch = list[tuple[Any, ...]]
Writer = Callable[[Batch], Awaitable[None]]


def _decoded(records: Any, seen: set[str], received: dict[str, Any]) -> Batch:
    """A fetched batch decoded as the activity consumer decodes it; the raw-event values of the messages
    not seen before (Python values)."""
    rows: Batch = []
    dumps = json.dumps
    for partition_records in records.values():
        for record in partition_records:
            envelope = activity.decode_record(record.value or b"")
            tracked = activity._checked(envelope.data, received)
            if tracked.message_id in seen:
                continue
            seen.add(tracked.message_id)
            props = tracked.properties
            rows.append(
                (
                    tracked.message_id,
                    tracked.event,
                    tracked.timestamp,
                    tracked.received_at,
                    tracked.timestamp.date(),
                    tracked.session_id,
                    tracked.anonymous_id,
                    tracked.customer_id,
                    tracked.channel,
                    tracked.campaign,
                    props.get("sku"),
                    props.get("order_id"),
                    dumps(props) if props else "{}",
                )
            )
    return rows


def _decoded_log(records: Any, seen: set[str], received: dict[str, Any]) -> Batch:
    """A fetched batch decoded as `_decoded` decodes it; for `sqlite_batch_log`, one row: the new messages'
    ids and their raw record values, newline-joined and compressed."""
    ids: list[tuple[str]] = []
    values: list[bytes] = []
    for partition_records in records.values():
        for record in partition_records:
            raw = record.value or b""
            tracked = activity._checked(activity.decode_record(raw).data, received)
            if tracked.message_id in seen:
                continue
            seen.add(tracked.message_id)
            ids.append((tracked.message_id,))
            values.append(raw)
    return [(ids, zlib.compress(b"\n".join(values), 1))] if ids else []


def _sqlite_log_writer(path: str) -> tuple[Writer, Callable[[], None]]:
    connection = scenario.sqlite3_like_the_service(path)
    connection.executescript(
        "CREATE TABLE bench_seen (message_id TEXT PRIMARY KEY) WITHOUT ROWID;"
        "CREATE TABLE bench_event_log (id INTEGER PRIMARY KEY, events INTEGER NOT NULL, "
        "segment BLOB NOT NULL);"
    )

    async def write(rows: Batch) -> None:
        ((ids, segment),) = rows
        with connection:
            connection.executemany("INSERT OR IGNORE INTO bench_seen VALUES (?)", ids)
            connection.execute(
                "INSERT INTO bench_event_log (events, segment) VALUES (?, ?)", (len(ids), segment)
            )

    return write, connection.close


async def _consume(
    bootstrap: str,
    topic: str,
    total: int,
    write: Writer | None,
    *,
    pipelined: bool = False,
    decode: Callable[[Any, set[str], dict[str, Any]], Batch] = _decoded,
) -> tuple[float, float]:
    """Wall and process CPU seconds from the first fetched batch until every record is handled."""
    consumer = scenario.bench_consumer(bootstrap, topic, "bench-ceiling", ACTIVITY_BATCH)
    await consumer.start()
    handled = 0
    started: float | None = None
    cpu = 0.0
    seen: set[str] = set()
    received: dict[str, Any] = {}
    in_flight: asyncio.Future[None] | None = None
    try:
        while handled < total:
            batches = await consumer.getmany(timeout_ms=200)
            if not batches:
                continue
            if started is None:
                started, cpu = time.perf_counter(), time.process_time()
            rows = decode(batches, seen, received)
            handled += sum(len(records) for records in batches.values())
            if write is not None and rows:
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(write(rows))
                if not pipelined:
                    await in_flight
                    in_flight = None
            # offsets after the batch's rows (pipelined: after the previous batch's, still in flight)
            for tp, records in batches.items():
                await consumer.commit({tp: records[-1].offset + 1})
        if in_flight is not None:
            await in_flight
        assert started is not None
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await consumer.stop()


def _sqlite_insert(connection: sqlite3.Connection, rows: Batch, days: bulk.DayTexts) -> None:
    """One batch's raw events in one transaction (values in SQLite's stored forms, see `bulk`)."""
    moment = bulk.sqlite_moment
    with connection:
        connection.executemany(
            SQLITE_INSERT, [(r[0], r[1], moment(r[2]), moment(r[3]), days[r[4]], *r[5:]) for r in rows]
        )


def _sqlite_writer(path: str) -> tuple[Writer, Callable[[], None]]:
    connection = scenario.sqlite3_like_the_service(path)
    days = bulk.DayTexts()

    async def write(rows: Batch) -> None:
        _sqlite_insert(connection, rows, days)

    return write, connection.close


def _writer_process_main(path: str, pipe: Connection) -> None:
    """The child of `sqlite_writer_process`: each pickled batch received is inserted and acknowledged."""
    connection = scenario.sqlite3_like_the_service(path)
    days = bulk.DayTexts()
    try:
        while (message := pipe.recv_bytes()) != b"":
            _sqlite_insert(connection, pickle.loads(message), days)
            pipe.send_bytes(b"ok")
    finally:
        connection.close()


def _sqlite_writer_process(path: str) -> tuple[Writer, Callable[[], None]]:
    """The SQLite writes in a child process (on the other core), fed pickled batches over a pipe: the
    consumer's process decodes the next batch meanwhile (`pipelined`)."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=_writer_process_main, args=(path, child))
    process.start()
    loop = asyncio.get_running_loop()

    async def write(rows: Batch) -> None:
        parent.send_bytes(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
        acknowledged = loop.create_future()

        def readable() -> None:
            loop.remove_reader(parent.fileno())
            try:
                acknowledged.set_result(parent.recv_bytes())
            except Exception as error:  # the child died: the run fails
                acknowledged.set_exception(error)

        loop.add_reader(parent.fileno(), readable)
        if await acknowledged != b"ok":
            raise RuntimeError("the writer process failed")

    def close() -> None:
        parent.send_bytes(b"")
        process.join(30)

    return write, close


async def _pg_writer(url: str) -> tuple[Writer, Callable[[], Awaitable[None]]]:
    connection = await asyncpg.connect(asyncpg_dsn(url))

    async def write(rows: Batch) -> None:
        await connection.execute(PG_INSERT, *(list(column) for column in zip(*rows, strict=True)))

    return write, connection.close


async def _round(
    bootstrap: str, topic: str, total: int, tmp: Path, postgres: str | None, index: int
) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}

    def note(mode: str, seconds: float, cpu: float) -> None:
        figures[mode] = {
            "eps": round(total / seconds, 1),
            "cpu_us_per_event": round(cpu / total * 1e6, 1),
        }

    note("raw", *await scenario._raw_consume(bootstrap, topic, total, ACTIVITY_BATCH))
    note("decode", *await _consume(bootstrap, topic, total, None))
    sqlite_modes: list[tuple[str, Callable[[str], tuple[Writer, Callable[[], None]]], dict[str, Any]]] = [
        ("sqlite", _sqlite_writer, {}),
        ("sqlite_batch_log", _sqlite_log_writer, {"decode": _decoded_log}),
        ("sqlite_writer_process", _sqlite_writer_process, {"pipelined": True}),
    ]
    for mode, writer, options in sqlite_modes:
        async with migrated_database("sqlite", tmp, f"{mode}{index}", ALEMBIC_INI, "") as url:
            write, close = writer(make_url(url).database or "")
            try:
                note(mode, *await _consume(bootstrap, topic, total, write, **options))
            finally:
                close()
    if postgres:
        for mode, pipelined in (("postgresql", False), ("postgresql_pipelined", True)):
            async with migrated_database("postgresql", tmp, f"ceiling{index}", ALEMBIC_INI, postgres) as url:
                pg_write, pg_close = await _pg_writer(url)
                try:
                    note(mode, *await _consume(bootstrap, topic, total, pg_write, pipelined=pipelined))
                finally:
                    await pg_close()
    raw_eps = figures["raw"]["eps"]
    for values in figures.values():
        values["ratio_over_raw"] = round(values["eps"] / raw_eps, 3)
    return figures


async def main(args: argparse.Namespace) -> None:
    envelopes = scenario._ingestion_events(args.events, seed=7)
    total = len(envelopes)
    produced = [(e.to_json_bytes(), (e.subject or "").encode()) for e in envelopes]
    del envelopes
    gc.collect()
    rounds = []
    with (
        tempfile.TemporaryDirectory(prefix="ingest-ceiling-") as tmp_name,
        (Path(tmp_name) / "broker.log").open("wb") as log,
        EmbeddedBroker(log=log) as broker,
    ):
        tmp = Path(tmp_name)
        topic = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
        await ensure_topics(broker.bootstrap_servers, [topic], partitions=3)
        await scenario._produce(broker.bootstrap_servers, topic, produced)
        for index in range(args.rounds):
            figures = await _round(broker.bootstrap_servers, topic, total, tmp, args.postgres, index)
            rounds.append(figures)
            print(
                f"round {index + 1}: "
                + ", ".join(f"{m} {v['eps']:,.0f}/s ({v['ratio_over_raw']})" for m, v in figures.items()),
                file=sys.stderr,
                flush=True,
            )
    medians = {
        mode: {
            name: statistics.median(r[mode][name] for r in rounds)
            for name in ("eps", "cpu_us_per_event", "ratio_over_raw")
        }
        for mode in rounds[0]
    }
    print(
        json.dumps(
            {"envelopes": total, "batch": ACTIVITY_BATCH, "median": medians, "rounds": rounds}, indent=1
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="a PostgreSQL server URL: also measure the PostgreSQL modes")
    asyncio.run(main(parser.parse_args()))
