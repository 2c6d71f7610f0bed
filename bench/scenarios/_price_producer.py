"""The price changes of bench `sync_propagation`, published from a process of their own, as product-service's
relay publishes them from its own: `python _price_producer.py --bootstrap HOST:PORT --rate N --schedule
IN.json --out OUT.json`. Reads the schedule (a JSON list of [SKU, amount]), hands one change to the
producer every 1/rate s (`ecom.price.changed.v1` on the prices topic, keyed by SKU), and writes the
wall-clock time each was handed over (its event time) and the publishing's duration. In the measured
process, the load generator took about a tenth of the CPU that sync-service, saturated at 200 changes/s
on this machine, needed (bench/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaProducer

from contracts import build_event, topics
from contracts.catalog.prices import PriceChanged


def price_change(sku: str, amount: Decimal) -> bytes:
    data = PriceChanged(
        sku=sku, currency="EUR", amount=amount, effective_from=datetime.now(UTC), source="bench"
    )
    return build_event("ecom.price.changed.v1", data, subject=sku).to_json_bytes()


async def publish(bootstrap: str, rate: float, schedule: list[tuple[str, str]]) -> dict[str, object]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent: list[float] = []
    try:
        interval = 1.0 / rate
        started = time.perf_counter()
        for index, (sku, amount) in enumerate(schedule):
            delay = started + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = price_change(sku, Decimal(amount))
            sent.append(time.time())
            await producer.send(topics.PRICES, payload, key=sku.encode())
        publish_s = time.perf_counter() - started
        await producer.flush()
    finally:
        await producer.stop()
    return {"sent": sent, "publish_s": publish_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--schedule", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    schedule = [(str(sku), str(amount)) for sku, amount in json.loads(args.schedule.read_text())]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the lock
        result = asyncio.run(publish(args.bootstrap, args.rate, schedule))
    else:
        result = uvloop.run(publish(args.bootstrap, args.rate, schedule))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
