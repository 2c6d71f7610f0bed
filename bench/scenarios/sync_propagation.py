"""Sync propagation: a price change committed -> acknowledged by every push channel, at a sustained rate.

One embedded broker (in memory), sync-service in this process (its consumer, listings on SQLite migrated
by its migrations, the push pipeline) and the reference channel server as a separate uvicorn process on
127.0.0.1 (its own core, as a real channel would be). Three webhook channels are registered and point at
it. The catalog is `SKUS` products of one SKU each (product, stock and a first price, all acknowledged
before anything is measured). Then price changes are published at a fixed rate as product-service
publishes them (`ecom.price.changed.v1`, event time = commit time), with the hard case real catalogues
have: a fifth of the changes hit 5 hot SKUs (a flash sale repricing the same items again and again),
the rest are spread over the catalogue.

Latency of a change = the first time the channel stored a state of that SKU showing that price or a
later one (the reference channel logs every listing it stores with its wall-clock time) minus the
change's event time; a change superseded before its push left counts as acknowledged when the later
state is. Every (change, channel) pair is measured. "Coalescing saved" = 1 - listings stored by the
channels / (changes x channels): the pushes that folding a burst into its latest state avoided.

There is no baseline run of another system for the latency: the goal is absolute (p99 under 250 ms on this
machine at 200 changes/s over 3 channels).

Full resync: a second sync-service (own database, own broker) whose projection holds `resync_skus` SKUs
(written directly) and one webhook channel on the same reference server, everything pushed and
acknowledged first. Then `POST /v1/channels/{id}/resync` is measured until the channel's last answer is
recorded (its deliveries carry every listing; the reference channel's counters are checked); the bodies
the service POSTed are captured and a bare httpx client then POSTs the same bodies (signed beforehand, so
the channel verifies them as it verifies the service's), with the service's push concurrency, to the same
server. Throughput ratio = bare time / service time (same SKUs, same bytes).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from _price_producer import price_change
from aiokafka import AIOKafkaProducer
from benchlib import bench_port, migrated_database, summarize
from sqlalchemy import select
from sqlmodel import col
from standardwebhooks import Webhook

from contracts import build_event, topics
from contracts.catalog.inventory import LocationStock, StockChanged
from contracts.catalog.products import ProductCreated, ProductDetails, VariantFacts
from servicekit.broker import EmbeddedBroker
from servicekit.db import Database, as_utc
from servicekit.testing import TestTokenIssuer, running_app
from sync_service.config import ALEMBIC_INI, Settings
from sync_service.listings.models import CatalogPrice, CatalogProduct, CatalogStock, CatalogVariant
from sync_service.main import create_app
from sync_service.push.models import Delivery

NAME = "sync_propagation"
DESCRIPTION = (
    "price change committed -> acknowledged by 3 push channels (reference channel server) at a sustained "
    "rate: p50/p99 latency and the share of pushes coalescing saved; full resync of one channel against a "
    "bare httpx client posting the same bodies"
)
TIMEOUT_S = 900.0
PRODUCER = Path(__file__).resolve().parent / "_price_producer.py"
CHANNELS = 3
HOT_SKUS = 5
HOT_SHARE = 0.2
RESYNC_ROUNDS = 3  # resyncs timed, and bare runs of their bodies; the ratio is of the medians

# Called with (phase, True) when a measured phase starts and (phase, False) when it ends
# (bench/profile_sync_propagation.py profiles only those).
OBSERVERS: list[Callable[[str, bool], None]] = []


def _observe(phase: str, started: bool) -> None:
    for observer in OBSERVERS:
        observer(phase, started)


def parameters_for(quick: bool) -> dict[str, Any]:
    return {
        "rate_per_s": 200,
        "duration_s": 3 if quick else 15,
        "skus": 200 if quick else 1000,
        "channels": CHANNELS,
        "resync_skus": 1000 if quick else 10_000,
    }


async def _publish_from_child(
    bootstrap: str, rate: float, schedule: list[tuple[str, Decimal]], tmp: Path
) -> tuple[list[float], float]:
    """Publish the price changes of `schedule` at `rate` from a process of their own (`_price_producer`);
    the time each was handed to the producer, and the publishing's duration."""
    source, out = tmp / "price-schedule.json", tmp / "price-sent.json"
    source.write_text(json.dumps([[sku, str(amount)] for sku, amount in schedule]))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PRODUCER),
        "--bootstrap",
        bootstrap,
        "--rate",
        str(rate),
        "--schedule",
        str(source),
        "--out",
        str(out),
    )
    if await child.wait() != 0:
        raise RuntimeError(f"the price producer exited with {child.returncode}")
    result = json.loads(out.read_text())
    sent: list[float] = result["sent"]
    if len(sent) != len(schedule):
        raise RuntimeError(f"the price producer handed over {len(sent)} of {len(schedule)} changes")
    return sent, float(result["publish_s"])


async def _publish_catalog(producer: AIOKafkaProducer, skus: list[str]) -> None:
    for sku in skus:
        details = ProductDetails(title=f"Product {sku}", variants=[VariantFacts(sku=sku)])
        product = ProductCreated(product_id=f"p-{sku}", status="active", skus=[sku], details=details)
        stock = StockChanged(
            sku=sku,
            movement="receipt",
            locations=[
                LocationStock(location_id="wh", location_code="wh", on_hand=10, reserved=0, available=10)
            ],
            total_available=10,
        )
        await producer.send(
            topics.PRODUCTS,
            build_event("ecom.product.created.v1", product, subject=f"p-{sku}").to_json_bytes(),
            key=sku.encode(),
        )
        await producer.send(
            topics.INVENTORY,
            build_event("ecom.stock.changed.v1", stock, subject=sku).to_json_bytes(),
            key=sku.encode(),
        )
        await producer.send(topics.PRICES, price_change(sku, Decimal("10.00")), key=sku.encode())
    await producer.flush()


async def _wait_in_sync(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    channel_ids: list[str],
    count: int,
    timeout: float,
    every: float = 0.25,
) -> None:
    deadline = time.monotonic() + timeout
    for channel_id in channel_ids:
        while True:
            status = (await client.get(f"/v1/channels/{channel_id}/status", headers=headers)).json()
            if status.get("in_sync", -1) >= count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"channel {channel_id}: {status}")
            await asyncio.sleep(every)


async def _wait_resynced(
    app: Any, channel_id: str, count: int, since: datetime, timeout: float, every: float
) -> datetime:
    """Until the channel's pushes started at or after `since` carried `count` listings, every one answered
    and recorded (a delivery row is written with its push's outcome, in the transaction that records the
    listings' acknowledgements; a listing the channel held already has no other write: see docs/sync.md);
    returns the time of the last answer (the deliveries' `finished_at`). The database is asked only when the
    channel's worker has nothing queued or in flight, so waiting costs the service next to nothing (asking
    the status endpoint every 0.1 s cost it a count over every listing through the HTTP stack)."""
    deadline = time.monotonic() + timeout
    database: Database = app.state.runtime.database
    query = select(col(Delivery.seqs), col(Delivery.finished_at)).where(
        col(Delivery.channel_id) == channel_id,
        col(Delivery.started_at) >= since,
        col(Delivery.outcome) == "succeeded",
    )
    done = 0
    while time.monotonic() < deadline:
        worker = app.state.pipeline.workers.get(channel_id)
        if worker is not None and not worker.queued and not worker.in_flight:
            async with database.read() as connection:
                rows = (await connection.execute(query)).all()
            done = sum(len(seqs) for seqs, _ in rows)
            if done >= count:
                return max(as_utc(finished) for _, finished in rows)
        await asyncio.sleep(every)
    raise TimeoutError(f"channel {channel_id}: {done} of {count} listings pushed and answered since {since}")


def _start_reference_channel(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "sync_service.reference_channel:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _settings(url: str, broker: EmbeddedBroker) -> Settings:
    return Settings(
        database_url=url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_session_timeout_ms=3000,
        log_json=False,
        log_level="WARNING",
    )


async def _register(
    client: httpx.AsyncClient, channel_http: httpx.AsyncClient, headers: dict[str, str], base: str, code: str
) -> dict[str, Any]:
    created: dict[str, Any] = (
        await client.post(
            "/v1/channels",
            json={
                "code": code,
                "name": code,
                "kind": "webhook",
                "endpoint": f"{base}/channels/{code}/listings",
                "currency": "EUR",
            },
            headers=headers,
        )
    ).json()
    await channel_http.put(f"/channels/{code}/secret", json={"secret": created["signing_secret"]})
    return created


async def _seed_facts(database: Database, skus: list[str]) -> None:
    """The catalogue as sync-service's projection holds it after product-service's events (written directly:
    how the facts got there is not what the resync measures)."""
    now = datetime.now(UTC)
    async with database.session() as session:
        for start in range(0, len(skus), 1000):
            chunk = skus[start : start + 1000]
            session.add_all(
                [
                    CatalogProduct(
                        product_id=f"p-{sku}",
                        status="active",
                        title=f"Product {sku}",
                        brand="Bench",
                        description=f"The product {sku}, with a description of a realistic length. " * 3,
                        attributes={"colour": "blue", "material": "cotton"},
                        media_urls=[f"https://img.example.com/{sku}.jpg"],
                        channels=[],
                        category_path=["c-apparel", "c-shirts"],
                        completeness={},
                        version=1,
                    )
                    for sku in chunk
                ]
                + [
                    CatalogVariant(sku=sku, product_id=f"p-{sku}", gtin=None, attributes={"size": "M"})
                    for sku in chunk
                ]
                + [
                    CatalogPrice(sku=sku, currency="EUR", channel="", amount_minor=1999, effective_from=now)
                    for sku in chunk
                ]
                + [CatalogStock(sku=sku, location_id="wh", location_code="wh", available=10) for sku in chunk]
            )
            await session.flush()


async def _wait_job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
        if job.get("status") in ("succeeded", "failed"):
            if job["status"] != "succeeded":
                raise RuntimeError(f"resync job failed: {job}")
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"resync job: {job}")
        await asyncio.sleep(0.2)


async def _bare_posts(
    endpoint: str, bodies: list[bytes], secret: str, concurrency: int, timeout: float
) -> tuple[float, int]:
    """The baseline: a bare httpx client POSTing `bodies` (signed beforehand) to the channel, `concurrency`
    at a time, reading each answer. Returns (seconds, listings the answers held)."""
    signer = Webhook(secret)
    signed = []
    for n, body in enumerate(bodies):
        message_id, moment = f"bare-{n}", datetime.now(UTC)
        signed.append(
            (
                body,
                {
                    "content-type": "application/json",
                    "webhook-id": message_id,
                    "webhook-timestamp": str(int(moment.timestamp())),
                    "webhook-signature": signer.sign(message_id, moment, body.decode()),
                },
            )
        )
    answered = 0
    queue = iter(signed)

    async def post_all(client: httpx.AsyncClient) -> None:
        nonlocal answered
        for body, headers in queue:
            response = await client.post(endpoint, content=body, headers=headers)
            response.raise_for_status()
            answered += len(response.json()["listings"])

    async with httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=concurrency)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(post_all(client) for _ in range(concurrency)))
        return time.perf_counter() - started, answered


async def _timed_resync(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], channel_id: str, count: int
) -> dict[str, float]:
    """One full resync of the channel, timed from its request to the channel's last answer recorded (the
    latest `finished_at` of the deliveries that carried its listings), waited for until they carry all."""
    _observe("resync", True)
    cpu_started = time.process_time()
    started_wall = datetime.now(UTC)
    started = time.perf_counter()
    job = (await client.post(f"/v1/channels/{channel_id}/resync", headers=admin)).json()
    await _wait_job(client, admin, job["id"], 600)
    last_answer = await _wait_resynced(app, channel_id, count, started_wall, 600, every=0.02)
    polled_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    _observe("resync", False)
    service_s = (last_answer - started_wall).total_seconds()
    return {"service_s": service_s, "service_s_polled": polled_s, "service_cpu_s": cpu_s}


async def _resync(
    broker: EmbeddedBroker,
    tmp: Path,
    tokens: TestTokenIssuer,
    base: str,
    channel_http: httpx.AsyncClient,
    count: int,
) -> dict[str, Any]:
    """Full resync of `count` SKUs to one channel, against a bare httpx client posting the same bodies."""
    skus = [f"RS-{n:06d}" for n in range(count)]
    async with migrated_database("sqlite", tmp, "sync-resync", ALEMBIC_INI, "") as url:
        app = create_app(_settings(url, broker))
        async with running_app(app, tokens) as client:
            for consumer in app.state.runtime.consumers:
                await asyncio.wait_for(consumer.assigned.wait(), 60)
            admin = tokens.auth_header("sync:admin", "sync:read")
            channel = await _register(client, channel_http, admin, base, "resync-0")
            database: Database = app.state.runtime.database
            await _seed_facts(database, skus)
            prepared = time.perf_counter()
            first_wall = datetime.now(UTC)
            first = (await client.post(f"/v1/channels/{channel['id']}/resync", headers=admin)).json()
            await _wait_job(client, admin, first["id"], 600)
            await _wait_resynced(app, channel["id"], count, first_wall, 600, every=0.25)
            prepare_s = time.perf_counter() - prepared
            settings = app.state.runtime.settings
            worker = app.state.pipeline.workers[channel["id"]]
            bodies: list[bytes] = []
            attempt = worker._attempt

            async def capture(signer: Any, endpoint: str, body: str, echo: bytes) -> Any:
                bodies.append(body.encode())  # what the worker POSTs (its HTTP client's content)
                return await attempt(signer, endpoint, body, echo)

            worker._attempt = capture
            load = os.getloadavg()
            rounds: list[dict[str, float]] = []
            for _ in range(RESYNC_ROUNDS):
                stats = (await channel_http.get("/channels/resync-0/stats")).json()
                rounds.append(await _timed_resync(app, client, admin, channel["id"], count))
                after = (await channel_http.get("/channels/resync-0/stats")).json()
                # Every listing reached the channel again: its pushes all taken, none refused or failed.
                assert after["received"] - stats["received"] >= count // settings.push_batch_size, after
                assert (after["rejected"], after["failed"]) == (stats["rejected"], stats["failed"]), after
                if worker._attempt is capture:
                    del worker._attempt  # the bodies of the first round are those the bare client posts
            secret = channel["signing_secret"]
        endpoint = f"{base}/channels/resync-0/listings"
        bare: list[float] = []
        for _ in range(RESYNC_ROUNDS):
            bare_s, bare_listings = await _bare_posts(
                endpoint, bodies, secret, settings.push_concurrency, settings.push_timeout_seconds
            )
            bare.append(bare_s)
    service_s = statistics.median(r["service_s"] for r in rounds)
    bare_s = statistics.median(bare)
    payload_bytes = sum(len(body) for body in bodies)
    return {
        "skus": count,
        "concurrency": settings.push_concurrency,
        "batch_size": settings.push_batch_size,
        "pushes": len(bodies),
        "payload_bytes": payload_bytes,
        "listings_pushed": bare_listings,
        "rounds": RESYNC_ROUNDS,
        "service_s": service_s,
        "service_rounds": rounds,
        "service_skus_per_s": count / service_s,
        "bare_httpx_s": bare_s,
        "bare_httpx_rounds_s": bare,
        "bare_httpx_skus_per_s": count / bare_s,
        "throughput_ratio": bare_s / service_s,
        "prepare_s": prepare_s,
        "loadavg_at_start": list(load),
    }


async def run(quick: bool) -> dict[str, Any]:
    params = parameters_for(quick)
    rng = random.Random(2026)
    skus = [f"SKU-{n:05d}" for n in range(params["skus"])]
    hot = skus[:HOT_SKUS]
    load_start = os.getloadavg()
    tokens = TestTokenIssuer()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp,
        (Path(tmp) / "broker.log").open("wb") as log,
        EmbeddedBroker(bench_port(), log=log) as broker,
    ):
        port = bench_port()
        reference = _start_reference_channel(port)  # its own process, as a real channel would be
        base = f"http://127.0.0.1:{port}"
        try:
            async with (
                httpx.AsyncClient(base_url=base, timeout=10) as channel_http,
                migrated_database("sqlite", Path(tmp), "sync", ALEMBIC_INI, "") as url,
            ):
                for _ in range(200):
                    try:
                        if (await channel_http.get("/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.1)
                settings = _settings(url, broker)
                app = create_app(settings)
                async with running_app(app, tokens) as client:
                    for consumer in app.state.runtime.consumers:
                        await asyncio.wait_for(consumer.assigned.wait(), 60)
                    admin = tokens.auth_header("sync:admin", "sync:read")
                    channels = [
                        await _register(client, channel_http, admin, base, f"bench-{n}")
                        for n in range(CHANNELS)
                    ]
                    producer = AIOKafkaProducer(
                        bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=0
                    )
                    await producer.start()
                    try:
                        prepared = time.perf_counter()
                        await _publish_catalog(producer, skus)
                        await _wait_in_sync(client, admin, [c["id"] for c in channels], len(skus), 600)
                        prepare_s = time.perf_counter() - prepared
                        marks = {
                            c["code"]: len(
                                (await channel_http.get(f"/channels/{c['code']}/received")).json()["received"]
                            )
                            for c in channels
                        }
                        counter: dict[str, int] = {}
                        schedule: list[tuple[str, Decimal]] = []
                        for _ in range(params["rate_per_s"] * params["duration_s"]):
                            sku = rng.choice(hot) if rng.random() < HOT_SHARE else rng.choice(skus)
                            counter[sku] = counter.get(sku, 0) + 1
                            schedule.append((sku, Decimal("10.00") + Decimal(counter[sku]) / 100))
                        _observe("propagation", True)
                        handed_at, publish_s = await _publish_from_child(
                            broker.bootstrap_servers, params["rate_per_s"], schedule, Path(tmp)
                        )
                        changes = [
                            (at, sku, amount) for at, (sku, amount) in zip(handed_at, schedule, strict=True)
                        ]
                        final = {sku: Decimal("10.00") + Decimal(n) / 100 for sku, n in counter.items()}
                        deadline = time.monotonic() + 120
                        logs: dict[str, list[list[Any]]] = {}
                        while True:
                            logs = {
                                c["code"]: (await channel_http.get(f"/channels/{c['code']}/received")).json()[
                                    "received"
                                ][marks[c["code"]] :]
                                for c in channels
                            }
                            done = all(
                                {
                                    sku
                                    for _, sku, price in entries
                                    if price is not None and Decimal(price) == final[sku]
                                }
                                >= set(final)
                                for entries in logs.values()
                            )
                            if done or time.monotonic() > deadline:
                                break
                            await asyncio.sleep(0.5)
                        _observe("propagation", False)
                    finally:
                        await producer.stop()
            async with httpx.AsyncClient(base_url=base, timeout=10) as channel_http:
                with EmbeddedBroker(bench_port(), log=log) as resync_broker:
                    resync = await _resync(
                        resync_broker, Path(tmp), tokens, base, channel_http, params["resync_skus"]
                    )
        finally:
            reference.terminate()
            reference.wait(10)

    latencies: list[float] = []
    missing = 0
    stored = 0
    for entries in logs.values():
        stored += len(entries)
        by_sku: dict[str, list[tuple[float, Decimal]]] = {}
        for at, sku, price in entries:
            if price is not None:
                by_sku.setdefault(sku, []).append((float(at), Decimal(price)))
        for sent_at, sku, amount in changes:
            acked = next(
                (at for at, price in by_sku.get(sku, []) if price >= amount and at >= sent_at - 0.001), None
            )
            if acked is None:
                missing += 1
            else:
                latencies.append(max(0.0, acked - sent_at) * 1000)
    pairs = len(changes) * CHANNELS
    latency: dict[str, float | int] = summarize(latencies) if latencies else {}
    saved = 1 - stored / pairs if pairs else 0.0
    figures = {
        "changes": len(changes),
        "pairs_measured": len(latencies),
        "pairs_never_acknowledged": missing,
        "latency_ms": latency,
        "listings_stored_by_channels": stored,
        "coalescing_saved_share": saved,
        "publish_s": publish_s,
        "achieved_rate_per_s": len(changes) / publish_s if publish_s else None,
        "prepare_s": prepare_s,
        "resync": resync,
        "loadavg": {"start": list(load_start), "end": list(os.getloadavg())},
    }
    p99 = latency.get("p99")
    return {
        "parameters": params,
        "figures": figures,
        "headline": {
            "p50 ms (commit -> ack)": latency.get("p50"),
            "p99 ms (commit -> ack)": p99,
            "goal p99 < 250 ms": bool(p99 is not None and p99 < 250 and missing == 0),
            "coalescing saved": saved,
            "resync throughput ratio service/bare httpx (goal >= 0.5)": resync["throughput_ratio"],
            "goal resync ratio >= 0.5": resync["throughput_ratio"] >= 0.5,
        },
        "notes": [
            "sync-service and the broker client share this process; the reference channel is its own process",
            "event time is taken when the change is handed to the producer (a product-service commit would be"
            " followed by its relay's publish, which event_pipeline measures)",
            "resync: service time = POST /resync -> the channel's last answer recorded (the latest"
            " finished_at of the deliveries carrying the resync's listings); the bare client POSTs the very"
            " bodies the service sent (captured in its first timed"
            " round), signed beforehand, with the service's push concurrency, to the same reference channel,"
            f" right after; {RESYNC_ROUNDS} rounds of each, the ratio is of the medians",
        ],
        "table": {
            "columns": ["figure", "value"],
            "rows": [
                ["changes", len(changes)],
                ["(change, channel) pairs acknowledged", len(latencies)],
                ["never acknowledged", missing],
                ["p50 ms", latency.get("p50")],
                ["p99 ms", p99],
                ["max ms", latency.get("max")],
                ["coalescing saved", saved],
                [f"resync of {resync['skus']} SKUs: service s", resync["service_s"]],
                ["resync: bare httpx s (same bodies, same concurrency)", resync["bare_httpx_s"]],
                ["resync throughput ratio service/bare", resync["throughput_ratio"]],
            ],
            "caption": (
                f"{params['rate_per_s']} changes/s for {params['duration_s']} s over {CHANNELS} channels, "
                f"{params['skus']} SKUs"
            ),
        },
    }
