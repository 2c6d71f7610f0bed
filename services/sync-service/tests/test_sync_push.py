"""The push pipeline against the reference channel server (a real HTTP server) through the real broker:
signed pushes, acknowledged state, retries, a failing or hanging channel that delays no other, failed
deliveries listed and replayed, and the compare-and-set transitions raced."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update
from sync_support import ChannelStack as Stack
from sync_support import (
    eventually,
    listing_where,
    price_event,
    produce,
    product_event,
    reference_server,
    running_service,
    stock_event,
    unique,
)

from contracts import topics
from servicekit.testing import TestTokenIssuer
from sync_service.common import utc_now
from sync_service.drift import service as drift_service
from sync_service.listings import pages
from sync_service.listings.compute import state_hash
from sync_service.listings.models import Listing
from sync_service.push import deliveries
from sync_service.push.deliveries import Sent

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST_PUSH = {
    "push_backoff_seconds": 0.05,
    "push_backoff_max_seconds": 0.2,
    "push_timeout_seconds": 0.5,
    "push_max_attempts": 3,
    "push_sweep_seconds": 0.5,
    "circuit_failure_threshold": 100,
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Stack]:
    async with (
        reference_server() as (url, reference),
        running_service(database_url, kafka_bootstrap, token_issuer, consumers=True, **FAST_PUSH) as sync,
    ):
        yield Stack(sync, url, reference)


async def publish_product(kafka_bootstrap: str, sku: str, price: str = "10.00") -> None:
    await produce(kafka_bootstrap, topics.PRODUCTS, [product_event(sku)])
    await produce(kafka_bootstrap, topics.INVENTORY, [stock_event(sku, {"wh": 4})])
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, price)])


def in_sync_at(price: str) -> Any:
    """In sync at `price` with `publish_product`'s stock: the product, stock and price topics are
    consumed independently, so the price alone may be in before the stock (whose recomputation would
    then move the listing under a test that has started on it)."""
    return lambda item: (
        item["status"] == "in_sync" and item["desired"]["price"] == price and item["desired"]["quantity"] == 4
    )


async def listed_in_sync(
    stack: Stack, kafka_bootstrap: str, prefix: str = "SKU-"
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A new webhook channel and a new product on it at 10.00, pushed and acknowledged: (channel, SKU,
    its listing)."""
    channel = await stack.channel()
    sku = unique(prefix)
    await publish_product(kafka_bootstrap, sku, "10.00")
    return channel, sku, await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))


async def test_a_price_change_reaches_every_channel_with_a_valid_signature(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channels = [await stack.channel(), await stack.channel(), await stack.channel("pos")]
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku, "10.00")
    for channel in channels:
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, "12.50")])
    for channel in channels:
        listing = await listing_where(stack.sync, channel["id"], sku, in_sync_at("12.5"))
        assert listing["acknowledged"] == listing["desired"]
        held = stack.held(channel, sku)
        assert held is not None
        assert held["price"] == "12.5"
        stats = stack.reference.channel(channel["code"])
        assert stats.received >= 1
        assert stats.rejected == 0


async def test_a_burst_of_changes_to_one_sku_is_folded_into_a_few_pushes_ending_on_the_last_price(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel, sku, _ = await listed_in_sync(stack, kafka_bootstrap)
    log = stack.reference.channel(channel["code"]).log
    before = sum(1 for _, logged, _ in log if logged == sku)
    # 100 changes in well under a second, as product-service's relay would publish a burst.
    burst = [price_event(sku, f"{11 + n}.00") for n in range(100)]
    await produce(kafka_bootstrap, topics.PRICES, burst, at_once=True)
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("110"))
    stored = [price for _, logged, price in log if logged == sku][before:]
    assert stored[-1] == "110"
    # The first change goes at once; the others come while it is in flight or just after, so the SKU is
    # held (BurstHold) until they stop, then pushed once with the last price.
    assert len(stored) <= 2


async def test_a_failing_channel_is_retried_and_recovers_without_delaying_the_others(
    stack: Stack, kafka_bootstrap: str
) -> None:
    # The failing channel starts paused and is enabled once the product's three facts (product, stock,
    # price: three events) are all in, so it gets one push of the final state and the two failures hit
    # that push: a push of an earlier state that failed would be superseded by the next state, not retried.
    failing = await stack.channel(status="paused")
    slow, healthy = await stack.channel(), await stack.channel()
    stack.behave(slow, delay_seconds=2)
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku)

    await listing_where(stack.sync, healthy["id"], sku, in_sync_at("10"))
    assert stack.held(slow, sku) is None
    await listing_where(stack.sync, failing["id"], sku, lambda item: item["desired"]["price"] == "10")
    stack.behave(failing, fail_next=2)
    await stack.set_status(failing, "enabled")
    recovered = await listing_where(stack.sync, failing["id"], sku, in_sync_at("10"))
    assert recovered["last_error"] is None
    pushes = await stack.sync.client.get(
        f"/v1/channels/{failing['id']}/deliveries", headers=stack.sync.reader
    )
    assert any(d["attempts"] == 3 and d["outcome"] == "succeeded" for d in pushes.json()["items"])
    assert stack.reference.channel(failing["code"]).failed == 2
    await stack.pause(slow)


async def test_a_dead_channel_lists_its_failed_deliveries_and_a_replay_recovers_them(
    stack: Stack, kafka_bootstrap: str
) -> None:
    dead = await stack.channel()
    stack.behave(dead, fail=True)
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku)
    failed = await listing_where(stack.sync, dead["id"], sku, lambda item: item["status"] == "failed")
    assert failed["last_error"] == "HTTP 500"
    response = await stack.sync.client.get(
        f"/v1/channels/{dead['id']}/deliveries", params={"outcome": "failed"}, headers=stack.sync.reader
    )
    [delivery] = [d for d in response.json()["items"] if sku in d["skus"]]
    assert delivery["attempts"] == 3
    assert delivery["status_code"] == 500

    stack.behave(dead)
    url = f"/v1/channels/{dead['id']}/deliveries/{delivery['id']}/replay"
    first, second = await asyncio.gather(
        stack.sync.client.post(url, headers=stack.sync.admin),
        stack.sync.client.post(url, headers=stack.sync.admin),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    await listing_where(stack.sync, dead["id"], sku, in_sync_at("10"))
    refused = await stack.sync.client.post(url, headers=stack.sync.reader)
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ({"garbage": True}, "the answer is not a push answer (JSON with listings)"),
        ({"delay_seconds": 1.5}, "timed out"),
    ],
)
async def test_an_endpoint_answering_garbage_or_hanging_fails_its_pushes_and_blocks_no_one(
    stack: Stack, kafka_bootstrap: str, behaviour: dict[str, Any], error: str
) -> None:
    broken, healthy = await stack.channel(), await stack.channel()
    stack.behave(broken, **behaviour)
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku)
    await listing_where(stack.sync, healthy["id"], sku, in_sync_at("10"))
    failed = await listing_where(stack.sync, broken["id"], sku, lambda item: item["status"] == "failed")
    assert failed["last_error"] == error
    await stack.pause(broken)


async def test_a_channel_that_refuses_the_signature_fails_at_once(stack: Stack, kafka_bootstrap: str) -> None:
    channel = await stack.channel()
    stack.reference.secrets[channel["code"]] = "whsec_" + "QUJD" * 8
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku)
    failed = await listing_where(stack.sync, channel["id"], sku, lambda item: item["status"] == "failed")
    assert failed["last_error"] == "HTTP 401"
    response = await stack.sync.client.get(
        f"/v1/channels/{channel['id']}/deliveries", params={"outcome": "failed"}, headers=stack.sync.reader
    )
    attempts = [d["attempts"] for d in response.json()["items"]]
    assert attempts
    assert set(attempts) == {1}
    await stack.pause(channel)


async def test_a_channel_that_loses_an_update_is_acknowledged_but_holds_nothing(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel = await stack.channel()
    stack.behave(channel, lose=True)
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku)
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    assert stack.held(channel, sku) is None
    assert stack.reference.channel(channel["code"]).lost >= 1


async def test_status_reports_shares_latency_and_the_circuit(stack: Stack, kafka_bootstrap: str) -> None:
    channel, _, _ = await listed_in_sync(stack, kafka_bootstrap)
    response = await stack.sync.client.get(f"/v1/channels/{channel['id']}/status", headers=stack.sync.reader)
    assert response.status_code == 200
    status = response.json()
    assert status["in_sync"] >= 1
    counted = ("in_sync", "pending", "failed", "drifted", "unpublished")
    assert status["listings"] == sum(status[name] for name in counted)
    live = status["listings"] - status["unpublished"]
    assert status["in_sync_share"] == pytest.approx(status["in_sync"] / live)
    assert status["latency_p50_ms"] is not None
    assert status["latency_p99_ms"] >= status["latency_p50_ms"]
    assert status["circuit"] == "closed"
    metrics = (await stack.sync.client.get("/metrics")).text
    assert f'sync_deliveries_total{{channel="{channel["code"]}",outcome="succeeded"}}' in metrics
    assert "sync_delivery_latency_seconds_bucket" in metrics
    assert f'sync_listings{{channel="{channel["code"]}",status="in_sync"}}' in metrics


async def test_every_channels_status_comes_in_one_call_as_each_alone_says(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel, _, _ = await listed_in_sync(stack, kafka_bootstrap)
    client, reader = stack.sync.client, stack.sync.reader

    pages: list[dict[str, Any]] = []
    cursor = None
    while True:  # one channel a page, so the cursor is followed too
        params = {"limit": "1", "status": "enabled", **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/v1/sync-status", params=params, headers=reader)
        assert answer.status_code == 200, answer.text
        pages += answer.json()["items"]
        cursor = answer.json()["next_cursor"]
        if not cursor:
            break
    alone = (await client.get(f"/v1/channels/{channel['id']}/status", headers=reader)).json()
    listed = (await client.get("/v1/channels", params={"status": "enabled"}, headers=reader)).json()

    assert [item["channel_id"] for item in pages] == [c["id"] for c in listed["items"]]
    mine = next(item for item in pages if item["channel_id"] == channel["id"])
    assert set(mine) == {*alone, "name"}
    assert (mine["code"], mine["name"]) == (channel["code"], channel["name"])
    assert mine["in_sync"] >= 1
    assert alone["in_sync"] >= 1
    counted = ("in_sync", "pending", "failed", "drifted", "unpublished")
    assert mine["listings"] == sum(mine[name] for name in counted)
    assert (await client.get("/v1/sync-status", params={"status": "nope"}, headers=reader)).status_code == 422
    assert (await client.get("/v1/sync-status")).status_code == 401


async def _listing_row(stack: Stack, channel_id: str, sku: str) -> Listing:
    async with stack.sync.database.session() as session:
        row = (
            await session.execute(select(Listing).where(Listing.channel_id == channel_id, Listing.sku == sku))
        ).scalar_one()
        session.expunge(row)
        return row


async def _pending_again(stack: Stack, channel_id: str, sku: str, **values: Any) -> tuple[Listing, Sent]:
    """Put a listing back to pending (as if its push were in flight) and the push it was sent with."""
    async with stack.sync.database.session() as session:
        await session.execute(
            update(Listing)
            .where(Listing.channel_id == channel_id, Listing.sku == sku)
            .values(status="pending", **values)
        )
    row = await _listing_row(stack, channel_id, sku)
    sent = Sent(
        sku=sku, seq=row.desired_seq, digest=row.desired_hash, publishable=True, desired_at=row.desired_at
    )
    return row, sent


async def _ack(stack: Stack, channel_id: str, sent: Sent, held: dict[str, Any]) -> None:
    async with stack.sync.database.session() as session:
        await deliveries.acknowledge_many(
            session, answers=[(channel_id, sent, held, state_hash(held), utc_now())]
        )


async def _fail(stack: Stack, channel_id: str, sent: Sent) -> None:
    async with stack.sync.database.session() as session:
        await deliveries.fail_many(session, failures=[(channel_id, sent, "HTTP 500", utc_now())])


async def _newer_state(stack: Stack, channel_id: str, sent: Sent) -> None:
    """What a recomputation does: the next desired state, a compare-and-set on the sequence."""
    async with stack.sync.database.session() as session:
        await session.execute(
            update(Listing)
            .where(Listing.channel_id == channel_id, Listing.sku == sent.sku, Listing.desired_seq == sent.seq)
            .values(desired_seq=sent.seq + 1, desired_hash=f"newer-{sent.seq}", status="pending")
        )


async def test_an_acknowledgement_racing_a_newer_desired_state_never_marks_it_in_sync(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel = await stack.channel("feed", endpoint=None)
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku)
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    for _ in range(10):
        row, sent = await _pending_again(stack, channel["id"], sku, acked_seq=Listing.desired_seq - 1)
        await asyncio.gather(
            _ack(stack, channel["id"], sent, row.desired), _newer_state(stack, channel["id"], sent)
        )
        final = await _listing_row(stack, channel["id"], sku)
        assert final.desired_seq == sent.seq + 1
        assert final.acked_seq == sent.seq
        assert final.status == "pending"


async def test_a_failure_racing_an_acknowledgement_of_the_same_push_leaves_one_outcome(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel = await stack.channel("feed", endpoint=None)
    sku = unique("SKU-")
    await publish_product(kafka_bootstrap, sku)
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    for _ in range(10):
        row, sent = await _pending_again(
            stack, channel["id"], sku, acked_seq=0, acked_hash=None, last_error=None
        )
        await asyncio.gather(_ack(stack, channel["id"], sent, row.desired), _fail(stack, channel["id"], sent))
        final = await _listing_row(stack, channel["id"], sku)
        assert final.status in ("in_sync", "failed")
        assert (final.status == "failed") == (final.last_error == "HTTP 500")
        assert (final.status == "in_sync") == (final.acked_seq == sent.seq)


async def test_acknowledgements_record_the_pushed_state_when_it_came_back_and_the_held_one_when_not(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel = await stack.channel("feed", endpoint=None)
    skus = [unique("SKU-K") for _ in range(3)]
    for sku in skus:
        await publish_product(kafka_bootstrap, sku)
    for sku in skus:
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    pushed = [
        await _pending_again(
            stack, channel["id"], sku, acked={"old": True}, acked_hash="old", acked_seq=0, last_error="x"
        )
        for sku in skus
    ]
    other = {**pushed[2][0].desired, "price": "9"}
    now = utc_now()
    answers = [(channel["id"], sent, row.desired, state_hash(row.desired), now) for row, sent in pushed[:2]]
    answers.append((channel["id"], pushed[2][1], other, state_hash(other), now))
    async with stack.sync.database.session() as session:
        await deliveries.acknowledge_many(session, answers=answers)
    for row, sent in pushed[:2]:
        final = await _listing_row(stack, channel["id"], sent.sku)
        assert (final.status, final.last_error) == ("in_sync", None)
        assert (final.acked, final.acked_hash, final.acked_seq) == (row.desired, row.desired_hash, sent.seq)
        assert final.acked_at == now
    drifted = await _listing_row(stack, channel["id"], skus[2])
    assert drifted.status == "drifted"
    assert (drifted.acked, drifted.acked_hash) == (other, state_hash(other))
    assert drifted.last_error == "the channel acknowledged a state other than the one pushed"


async def test_the_acknowledged_state_stays_what_the_channel_holds_when_the_desired_state_moves_on(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel, sku, first = await listed_in_sync(stack, kafka_bootstrap, "SKU-M")
    assert first["acknowledged"] == first["desired"]
    await stack.pause(channel)  # the next state is computed but not pushed
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, "11.00")])
    moved = await listing_where(stack.sync, channel["id"], sku, lambda item: item["desired"]["price"] == "11")
    # The channel still holds the state at 10: the write of the new desired state kept it as acknowledged.
    assert moved["acknowledged"] == first["desired"]
    assert moved["acknowledged_seq"] == first["desired_seq"] < moved["desired_seq"]
    assert moved["status"] == "pending"
    await stack.set_status(channel, "enabled")
    final = await listing_where(stack.sync, channel["id"], sku, in_sync_at("11"))
    assert final["acknowledged"] == final["desired"] == stack.held(channel, sku)
    await stack.pause(channel)


async def _read_as_a_resync_does(stack: Stack, channel_id: str, sku: str) -> list[deliveries.Pending]:
    """Put the listing back to pending and read what its push carries, in one statement, as a resync."""
    table: Any = Listing.__table__  # type: ignore[attr-defined]
    async with stack.sync.database.session() as session:
        moved = await (await session.connection()).execute(
            update(table)
            .where(table.c.channel_id == channel_id, table.c.sku == sku)
            .values(status="pending")
            .returning(*deliveries.PENDING_COLUMNS)
        )
        return deliveries.pending_rows(moved.all())


@pytest.mark.parametrize("superseded_by", ["a change announced after it", "its age"])
async def test_a_listing_handed_in_already_read_is_read_again_once_it_may_be_stale(
    stack: Stack, kafka_bootstrap: str, superseded_by: str
) -> None:
    channel, sku, _ = await listed_in_sync(stack, kafka_bootstrap, "SKU-P")
    stale = await _read_as_a_resync_does(stack, channel["id"], sku)
    assert [row.sent.sku for row in stale] == [sku]
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, "11.00")])
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("11"))
    assert (stack.held(channel, sku) or {})["price"] == "11"

    pipeline = stack.sync.app.state.pipeline
    worker = pipeline.worker(channel["id"])

    async def idle() -> bool:
        return not worker.queued and not worker.in_flight

    await eventually(idle)  # nothing of the SKU queued or in flight (the sweep may have queued it)
    worker.add_prepared(stale)  # no await from here: the worker has not run yet
    assert sku in worker.prepared
    if superseded_by == "its age":
        worker.prepared[sku] = (0.0, stale[0])
    else:
        pipeline.enqueue([(channel["id"], sku)])
        assert sku not in worker.prepared

    await eventually(idle)
    assert sku not in worker.prepared
    assert (stack.held(channel, sku) or {})["price"] == "11"
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("11"))


async def test_a_listing_handed_in_already_read_is_pushed_as_read(stack: Stack, kafka_bootstrap: str) -> None:
    channel = await stack.channel()
    sku = unique("SKU-Q")
    await publish_product(kafka_bootstrap, sku)
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    stack.reference.channel(channel["code"]).listings.clear()
    worker = stack.sync.app.state.pipeline.worker(channel["id"])
    worker.add_prepared(await _read_as_a_resync_does(stack, channel["id"], sku))
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    assert (stack.held(channel, sku) or {})["price"] == "10"
    assert sku not in worker.prepared


async def test_a_change_the_consumer_committed_is_pushed_as_written_without_reading_it_again(
    stack: Stack, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, sku, _ = await listed_in_sync(stack, kafka_bootstrap, "SKU-W")
    worker = stack.sync.app.state.pipeline.worker(channel["id"])
    await asyncio.sleep(worker.hold.window)  # a change now is not a burst: queued at once, not held
    handed: list[Any] = []
    add_prepared = worker.add_prepared

    def spy(rows: list[Any], channel: Any = None) -> None:
        handed.extend(written for written in rows if written.sent.sku == sku)
        add_prepared(rows, channel)

    reads: list[str] = []
    pending_listings = deliveries.pending_listings

    async def reading(connection: Any, *, channel_id: str, skus: Any) -> Any:
        reads.extend(skus)
        return await pending_listings(connection, channel_id=channel_id, skus=skus)

    async def no_sweep() -> None:  # the sweep would queue the SKU by name if it ran between commit and push
        return None

    monkeypatch.setattr(worker, "add_prepared", spy)
    monkeypatch.setattr(deliveries, "pending_listings", reading)
    monkeypatch.setattr(stack.sync.app.state.pipeline, "sweep", no_sweep)
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, "11.00")])
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("11"))
    assert (stack.held(channel, sku) or {})["price"] == "11"
    assert sku not in reads  # pushed as the consumer's transaction wrote it
    # What was handed over is what the database holds: the text the column stores, byte for byte.
    async with stack.sync.database.session() as session:
        [stored] = await deliveries.held_listings(session, channel_id=channel["id"], skus=[sku])
    assert [(w.sent.seq, w.sent.digest, w.sent.publishable, w.desired_json) for w in handed] == [
        (stored.sent.seq, stored.sent.digest, stored.sent.publishable, stored.desired_json)
    ]


@pytest.mark.parametrize("busy", ["queued", "in flight"])
async def test_a_written_listing_whose_sku_is_queued_or_in_flight_is_read_again(
    stack: Stack, kafka_bootstrap: str, busy: str
) -> None:
    channel, sku, _ = await listed_in_sync(stack, kafka_bootstrap, "SKU-V")
    worker = stack.sync.app.state.pipeline.worker(channel["id"])
    await asyncio.sleep(worker.hold.window)
    async with stack.sync.database.session() as session:
        [row] = await deliveries.held_listings(session, channel_id=channel["id"], skus=[sku])
    written = (
        None,
        [deliveries.Pending(Sent(sku, 99, row.sent.digest, True, utc_now()), row.desired_json)],
    )
    # No await from here: the worker does not run meanwhile.
    (worker.queued if busy == "queued" else worker.in_flight).add(sku)
    try:
        worker.add([sku], written=written)
        assert sku not in worker.prepared  # which state is newer is not known: read when pushed
    finally:
        worker.queued.discard(sku)
        worker.in_flight.discard(sku)
        worker.hold.held.pop(sku, None)  # a change while in flight is held (BurstHold) as well
    worker.add([sku], written=written)
    assert worker.prepared[sku][1].sent.seq == 99  # neither queued nor in flight: pushed as written
    worker.prepared.pop(sku)
    worker.queued.discard(sku)


async def _read_as_a_resync_holding_it(stack: Stack, channel_id: str, sku: str) -> list[deliveries.Pending]:
    """Read the listing as a resync reads one the channel holds: to push as it is (`Sent.confirm`)."""
    async with stack.sync.database.session() as session:
        return await deliveries.held_listings(session, channel_id=channel_id, skus=[sku])


@pytest.mark.parametrize("handed", ["fresh", "too old: read again", "while its SKU is in flight"])
async def test_a_listing_the_channel_holds_is_pushed_as_held_and_its_echo_writes_nothing(
    stack: Stack, kafka_bootstrap: str, handed: str
) -> None:
    channel, sku, _ = await listed_in_sync(stack, kafka_bootstrap, "SKU-E")
    before = await _listing_row(stack, channel["id"], sku)
    [row] = await _read_as_a_resync_holding_it(stack, channel["id"], sku)
    assert (row.sent.confirm, row.sent.timed, row.sent.seq) == (True, False, before.desired_seq)
    stack.reference.channel(channel["code"]).listings.clear()
    worker = stack.sync.app.state.pipeline.worker(channel["id"])

    async def idle() -> bool:
        return not worker.queued and not worker.in_flight

    await eventually(idle)
    if handed == "while its SKU is in flight":  # e.g. its acknowledgement being recorded: read again after
        worker.in_flight.add(sku)
        worker.add_prepared([row])
        assert worker.prepared[sku] == (0.0, row)
        worker.in_flight.discard(sku)
        worker.wake.set()
    else:
        worker.add_prepared([row])
        if handed != "fresh":
            worker.prepared[sku] = (0.0, row)

    async def back() -> bool:
        return stack.held(channel, sku) is not None and not worker.queued and not worker.in_flight

    await eventually(back)
    after = await _listing_row(stack, channel["id"], sku)
    assert (after.status, after.updated_at, after.acked_at) == ("in_sync", before.updated_at, before.acked_at)
    assert stack.held(channel, sku) == after.desired == after.acked


async def _confirm(stack: Stack, channel_id: str, row: deliveries.Pending) -> None:
    """What the outcome writer does with a push of a held listing that the channel echoed."""
    async with stack.sync.database.session() as session:
        moved = await deliveries.confirm_many(
            session, confirmed=[(channel_id, row.sent, row.desired_json, utc_now())]
        )
        await deliveries.acknowledge_many(session, answers=moved)


async def _drift(stack: Stack, channel_id: str, sent: Sent, held: dict[str, Any]) -> None:
    """What a reconcile records of a channel found holding `held` instead (same desired sequence)."""
    async with stack.sync.database.session() as session:
        await session.execute(
            update(Listing)
            .where(Listing.channel_id == channel_id, Listing.sku == sent.sku, Listing.desired_seq == sent.seq)
            .values(acked=held, acked_hash=state_hash(held), status="drifted")
        )


async def test_an_echo_of_a_held_listing_racing_a_newer_state_or_a_drift_never_leaves_a_wrong_status(
    stack: Stack, kafka_bootstrap: str
) -> None:
    """The echo of a resync's push of a held listing writes nothing while it is still held at the pushed
    sequence, and is recorded as any acknowledgement once it is not: racing a newer desired state, the
    listing stays pending at it; racing a reconcile that found the channel holding another state, it ends
    in sync (the echo came after) or drifted (the reconcile's read came after), never in sync with a
    state other than its desired one."""
    channel, sku, _ = await listed_in_sync(stack, kafka_bootstrap, "SKU-R")
    other = {"sku": sku, "price": "1"}
    for round_ in range(10):
        [row] = await _read_as_a_resync_holding_it(stack, channel["id"], sku)
        if round_ % 2 == 0:
            await asyncio.gather(
                _confirm(stack, channel["id"], row), _newer_state(stack, channel["id"], row.sent)
            )
            final = await _listing_row(stack, channel["id"], row.sent.sku)
            assert (final.status, final.desired_seq, final.acked_seq) == (
                "pending",
                row.sent.seq + 1,
                row.sent.seq,
            )
        else:
            await asyncio.gather(
                _confirm(stack, channel["id"], row), _drift(stack, channel["id"], row.sent, other)
            )
            final = await _listing_row(stack, channel["id"], row.sent.sku)
            assert final.status in ("in_sync", "drifted")
            assert final.acked_hash == (row.sent.digest if final.status == "in_sync" else state_hash(other))
        # Back to held at the listing's sequence for the next round (as an acknowledgement of it would).
        async with stack.sync.database.session() as session:
            await session.execute(
                update(Listing)
                .where(Listing.channel_id == channel["id"], Listing.sku == sku)
                .values(
                    desired=final.desired,
                    acked=final.desired,
                    desired_hash=state_hash(final.desired),
                    acked_hash=state_hash(final.desired),
                    acked_seq=Listing.desired_seq,
                    status="in_sync",
                )
            )
    await stack.pause(channel)


class _OnePage:
    """A new SKU in sync at 10 on a new channel, and a running resync job whose pages (`run`) cover that SKU
    alone."""

    def __init__(self, stack: Stack, channel: dict[str, Any], sku: str, job_id: str) -> None:
        self.stack, self.channel, self.sku, self.job_id = stack, channel, sku, job_id
        self.worker = stack.sync.app.state.pipeline.worker(channel["id"])

    @classmethod
    async def start(cls, stack: Stack, kafka_bootstrap: str, prefix: str) -> "_OnePage":
        channel = await stack.channel()
        sku = unique(prefix)
        await publish_product(kafka_bootstrap, sku)
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
        async with stack.sync.database.session() as session:
            job = await drift_service.start_job(
                session, channel_id=channel["id"], kind="resync", source="listings", actor="test"
            )
            assert await drift_service.move_job(session, job_id=job.id, expected="queued", to="running")
        return cls(stack, channel, sku, job.id)

    async def run(self) -> None:
        """A page that starts at this SKU and ends with it."""
        runner = self.stack.sync.app.state.jobs
        assert await runner._resync_page(self.job_id, self.channel["id"], self.sku[:-1], True, last=self.sku)

    async def settled(self) -> Listing | None:
        """The listing once nothing of it is pending, queued or in flight."""
        final = await _listing_row(self.stack, self.channel["id"], self.sku)
        busy = (
            self.sku in self.worker.queued or self.sku in self.worker.in_flight or final.status == "pending"
        )
        return None if busy else final

    async def end(self) -> None:
        async with self.stack.sync.database.session() as session:
            await drift_service.move_job(session, job_id=self.job_id, expected="running", to="succeeded")


@pytest.mark.parametrize("stamped", [False, True], ids=["computed again", "taken as stamped"])
@pytest.mark.parametrize(
    "moment", ["before the page", "after its reads, before its writes", "after its commit"]
)
async def test_a_resync_page_racing_a_newer_desired_state_never_acknowledges_it_with_the_older_one(
    stack: Stack, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, moment: str, stamped: bool
) -> None:
    """A resync page computes a listing's state (or, `stamped` by an earlier page with the facts it
    holds, takes it as stored), puts it back to pending and hands the pipeline that state, while a
    recomputation moves the listing to a newer desired state (another price: a state the page's push
    cannot carry, so an acknowledgement of the page's push can only match it if the page handed its
    older state over as the newer one). Before the page's writes, the newer state is one the channel
    had acknowledged already (in sync, which the page puts back to pending too: the hardest case);
    after its commit, an ordinary pending one. Whenever it lands, a listing ends in sync only at a
    desired state the channel holds, never with the page's older state acknowledged as the newer one."""
    one = await _OnePage.start(stack, kafka_bootstrap, "SKU-W")
    channel, sku = one.channel, one.sku
    if stamped:
        await one.run()
        await eventually(one.settled)
    row = await _listing_row(stack, channel["id"], sku)
    assert (row.facts_stamp is not None) == stamped
    sent = Sent(
        sku=sku, seq=row.desired_seq, digest=row.desired_hash, publishable=True, desired_at=row.desired_at
    )
    newer = {**row.desired, "price": "99"}
    recompute_page = pages.recompute_page

    async def newer_state(status: str) -> None:
        """What a recomputation writes (its own transaction, committed now), its stamp cleared as a
        recomputation does; `in_sync`: as if the channel had acknowledged it already."""
        values: dict[str, Any] = {"desired": newer, "desired_hash": state_hash(newer)}
        if status == "in_sync":
            values.update(acked=newer, acked_hash=state_hash(newer))
        async with stack.sync.database.session() as session:
            await session.execute(
                update(Listing)
                .where(
                    Listing.channel_id == channel["id"], Listing.sku == sku, Listing.desired_seq == sent.seq
                )
                .values(desired_seq=sent.seq + 1, status=status, facts_stamp=None, **values)
            )

    async def with_a_newer_state_meanwhile(session: Any, **kwargs: Any) -> pages.Page:
        page = await recompute_page(session, **kwargs)
        assert (sku in page.computed) == (not stamped)  # else taken as stamped
        assert sku not in page.computed or not page.computed[sku].changed
        assert (sku in {stamp["b_sku"] for stamp in page.stamps}) == (not stamped)
        await newer_state("in_sync")
        return page

    if moment == "after its reads, before its writes":
        monkeypatch.setattr(pages, "recompute_page", with_a_newer_state_meanwhile)
    if moment == "before the page":
        await newer_state("in_sync")
    await one.run()
    if moment == "after its commit":
        await newer_state("pending")

    final = await eventually(one.settled)
    held = stack.held(channel, sku)
    assert final.acked_hash == state_hash(held)
    assert final.status == "in_sync"
    assert final.desired_hash == final.acked_hash
    if moment != "before the page":  # the newer state was pushed, as the listing holds it
        assert final.desired_seq == sent.seq + 1
        assert (held or {}).get("price") == "99"
    await one.end()


async def test_a_resync_page_never_pushes_a_held_listing_older_than_one_acknowledged_meanwhile(
    stack: Stack, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page takes a listing the channel holds as stamped, and before its writes the listing moves to a
    newer state that the channel acknowledged (held again, at the next sequence): the page pushes the
    state it finds held while it holds the write turn, the newer one, never the older state it read first
    (that would overwrite the newer one at the channel)."""
    one = await _OnePage.start(stack, kafka_bootstrap, "SKU-V")
    channel, sku = one.channel, one.sku
    await one.run()  # stamps it
    row = await eventually(one.settled)
    newer = {**row.desired, "price": "99"}
    recompute_page = pages.recompute_page

    async def with_a_newer_state_acknowledged_meanwhile(session: Any, **kwargs: Any) -> pages.Page:
        page = await recompute_page(session, **kwargs)
        assert sku not in page.computed  # taken as stamped
        async with stack.sync.database.session() as other:
            await other.execute(
                update(Listing)
                .where(Listing.channel_id == channel["id"], Listing.sku == sku)
                .values(
                    desired=newer,
                    acked=newer,
                    desired_hash=state_hash(newer),
                    acked_hash=state_hash(newer),
                    desired_seq=row.desired_seq + 1,
                    acked_seq=row.desired_seq + 1,
                    status="in_sync",
                    facts_stamp=None,
                )
            )
        return page

    monkeypatch.setattr(pages, "recompute_page", with_a_newer_state_acknowledged_meanwhile)
    log = stack.reference.channel(channel["code"]).log
    logged = len(log)
    await one.run()

    async def pushed_again() -> bool:
        return any(logged_sku == sku for _, logged_sku, _ in list(log)[logged:])

    await eventually(pushed_again)
    final = await eventually(one.settled)
    assert (final.status, final.desired_seq, final.acked_hash) == (
        "in_sync",
        row.desired_seq + 1,
        state_hash(newer),
    )
    assert [price for _, logged_sku, price in list(log)[logged:] if logged_sku == sku] == ["99"]
    assert (stack.held(channel, sku) or {})["price"] == "99"
    await one.end()
    await stack.pause(channel)
