"""Drift detection, reconcile and resync jobs against the reference channel server (a real HTTP server)
through the real broker: a channel that silently lost an update is found and healed; report-only
channels keep the drift; snapshots; a channel answering garbage fails the job and nothing else; the
job transitions raced."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from sqlalchemy import delete, select, update
from sqlmodel import col
from sync_support import (
    ChannelStack,
    eventually,
    listing_where,
    price_event,
    produce,
    product_event,
    reference_server,
    register,
    running_service,
    stock_event,
    unique,
)

from contracts import topics
from contracts.catalog.products import ProductDetails
from servicekit.errors import Conflict
from servicekit.testing import TestTokenIssuer
from sync_service.common import utc_now
from sync_service.drift import service
from sync_service.drift.models import SyncJob
from sync_service.listings import facts
from sync_service.listings.models import CatalogPromotion, Listing
from sync_service.reference_channel import Behaviour

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST = {
    "push_backoff_seconds": 0.05,
    "push_backoff_max_seconds": 0.2,
    "push_timeout_seconds": 0.5,
    "push_max_attempts": 2,
    "push_sweep_seconds": 0.5,
    "drift_check_seconds": 0,
}


class Stack(ChannelStack):
    """The push stack, with the reconcile/resync jobs and the drift they find."""

    async def job_done(self, job_id: str) -> dict[str, Any]:
        async def ended() -> dict[str, Any] | None:
            response = await self.sync.client.get(f"/v1/jobs/{job_id}", headers=self.sync.reader)
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            return job if job["status"] in ("succeeded", "failed") else None

        result: dict[str, Any] = await eventually(ended)
        return result

    async def start(self, channel: dict[str, Any], what: str = "reconcile") -> dict[str, Any]:
        response = await self.sync.client.post(
            f"/v1/channels/{channel['id']}/{what}", headers=self.sync.admin
        )
        assert response.status_code == 202, response.text
        assert response.headers["Location"] == f"/v1/jobs/{response.json()['id']}"
        return await self.job_done(response.json()["id"])

    async def drift(self, channel: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.sync.client.get(f"/v1/channels/{channel['id']}/drift", headers=self.sync.reader)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Stack]:
    async with (
        reference_server() as (url, reference),
        running_service(database_url, kafka_bootstrap, token_issuer, consumers=True, **FAST) as sync,
    ):
        yield Stack(sync, url, reference)


async def publish(kafka_bootstrap: str, sku: str, price: str) -> None:
    await produce(kafka_bootstrap, topics.PRODUCTS, [product_event(sku)])
    await produce(kafka_bootstrap, topics.INVENTORY, [stock_event(sku, {"wh": 4})])
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, price)])


def in_sync_at(price: str) -> Any:
    return lambda item: item["status"] == "in_sync" and item["desired"]["price"] == price


async def listed_at_7(
    stack: Stack, kafka_bootstrap: str, channel: dict[str, Any], prefix: str, count: int
) -> list[str]:
    """`count` new SKUs published at 7.00, once the channel holds each of them in sync."""
    skus = [unique(prefix) for _ in range(count)]
    for sku in skus:
        await publish(kafka_bootstrap, sku, "7.00")
    for sku in skus:
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("7"))
    return skus


async def lose_an_update(stack: Stack, kafka_bootstrap: str, channel: dict[str, Any], sku: str) -> None:
    """The channel holds the SKU at 10, then acknowledges 12.5 without storing it."""
    await publish(kafka_bootstrap, sku, "10.00")
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("10"))
    stack.reference.channel(channel["code"]).behaviour = Behaviour(lose=True)
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, "12.50")])
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("12.5"))
    assert (stack.held(channel, sku) or {})["price"] == "10"
    stack.reference.channel(channel["code"]).behaviour = Behaviour()


def drift_count(code: str) -> float:
    return REGISTRY.get_sample_value("sync_drift_detected_total", {"channel": code}) or 0.0


async def test_a_channel_that_silently_lost_an_update_is_found_and_healed(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel = await stack.channel(drift_policy="heal")
    sku = unique("SKU-D")
    await lose_an_update(stack, kafka_bootstrap, channel, sku)

    job = await stack.start(channel)
    assert job["status"] == "succeeded", job
    assert (job["kind"], job["source"], job["drifted"], job["healed"]) == (
        "reconcile",
        "state_endpoint",
        1,
        1,
    )
    assert job["processed"] == job["total"] >= 1
    findings = [f for f in await stack.drift(channel) if f["sku"] == sku]
    assert [(f["field"], f["expected"], f["actual"]) for f in findings] == [("price", "12.5", "10")]
    assert drift_count(channel["code"]) == 1

    await listing_where(stack.sync, channel["id"], sku, in_sync_at("12.5"))

    async def healed() -> bool:
        return (stack.held(channel, sku) or {}).get("price") == "12.5"

    await eventually(healed)

    again = await stack.start(channel)
    assert (again["status"], again["drifted"]) == ("succeeded", 0)
    assert [f for f in await stack.drift(channel) if f["sku"] == sku] == []


async def test_a_report_only_channel_keeps_the_listing_drifted_and_the_difference_listed(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel = await stack.channel(drift_policy="report")
    sku = unique("SKU-R")
    await lose_an_update(stack, kafka_bootstrap, channel, sku)
    stack.reference.channel(channel["code"]).listings["STRAY-1"] = {"sku": "STRAY-1", "price": "1"}

    job = await stack.start(channel)
    assert (job["status"], job["drifted"], job["healed"]) == ("succeeded", 1, 0)
    listing = await listing_where(stack.sync, channel["id"], sku, lambda item: item["status"] == "drifted")
    assert "price" in listing["last_error"]
    assert (stack.held(channel, sku) or {})["price"] == "10"
    fields = {(f["sku"], f["field"]) for f in await stack.drift(channel)}
    assert {(sku, "price"), ("STRAY-1", "listing")} <= fields
    one = await stack.sync.client.get(
        f"/v1/channels/{channel['id']}/drift", params={"sku": sku}, headers=stack.sync.reader
    )
    assert [f["field"] for f in one.json()["items"]] == ["price"]


async def test_a_posted_snapshot_is_compared_field_by_field(stack: Stack, kafka_bootstrap: str) -> None:
    channel = await stack.channel(drift_policy="report")
    sku, gone = unique("SKU-S"), unique("SKU-S")
    await publish(kafka_bootstrap, sku, "8.00")
    await publish(kafka_bootstrap, gone, "9.00")
    held = await listing_where(stack.sync, channel["id"], sku, in_sync_at("8"))
    await listing_where(stack.sync, channel["id"], gone, in_sync_at("9"))
    state = {**held["desired"], "quantity": 99, "title": "Renamed on the marketplace"}
    response = await stack.sync.client.post(
        f"/v1/channels/{channel['id']}/snapshot",
        json={"listings": [{"sku": sku, "state": state}]},
        headers=stack.sync.admin,
    )
    assert response.status_code == 202, response.text
    job = await stack.job_done(response.json()["id"])
    assert (job["status"], job["source"]) == ("succeeded", "snapshot")
    assert job["drifted"] >= 2  # every listing the snapshot leaves out is missing on the channel
    found = {(f["sku"], f["field"]): (f["expected"], f["actual"]) for f in await stack.drift(channel)}
    assert found[(sku, "quantity")] == (4, 99)
    assert found[(sku, "title")] == ("Linen shirt", "Renamed on the marketplace")
    assert found[(gone, "listing")] == ("published", None)

    bad_bodies: list[Any] = [{"listings": "nope"}, {"listings": [{"sku": 1}]}, {"other": []}, [1, 2]]
    for bad in bad_bodies:
        refused = await stack.sync.client.post(
            f"/v1/channels/{channel['id']}/snapshot", json=bad, headers=stack.sync.admin
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"


async def test_a_snapshot_naming_a_sku_twice_or_a_sku_past_its_bound_is_refused_whole(stack: Stack) -> None:
    """A snapshot holding one SKU twice with two states used to keep the later state silently (and start a
    job on it); a SKU longer than a SKU can be, which no drift finding can store, was taken too. Both are
    422 naming the entries, and no job starts."""
    channel = await stack.channel(drift_policy="report")
    sku = unique("SKU-D")
    url = f"/v1/channels/{channel['id']}/snapshot"
    twice = {"listings": [{"sku": sku, "state": {"price": "8.00"}}, {"sku": sku, "state": None}]}
    too_long = {"listings": [{"sku": "S" * 101, "state": None}]}

    refused = [
        await stack.sync.client.post(url, json=body, headers=stack.sync.admin) for body in (twice, too_long)
    ]

    assert [r.status_code for r in refused] == [422, 422], [r.text for r in refused]
    assert all(r.headers["content-type"] == "application/problem+json" for r in refused)
    assert "listings[0] and listings[1] both name SKU" in refused[0].json()["errors"][0]["message"]
    assert refused[1].json()["errors"][0]["field"] == "body.listings.0.sku"
    accepted = await stack.sync.client.post(url, json={"listings": []}, headers=stack.sync.admin)
    assert accepted.status_code == 202, accepted.text  # no job of the refused ones holds the channel
    await stack.job_done(accepted.json()["id"])


async def test_a_channel_answering_garbage_or_nothing_fails_the_job_and_changes_nothing(
    stack: Stack,
) -> None:
    garbage = await stack.channel(endpoint=f"{stack.url}/healthz", status="paused")
    dead = await stack.channel(endpoint="http://127.0.0.1:9/state", status="paused")
    for channel, error in ((garbage, "is not"), (dead, "failed")):
        job = await stack.start(channel)
        assert job["status"] == "failed"
        assert error in job["error"]
        assert await stack.drift(channel) == []
    for path, status in (("/v1/channels/nope/reconcile", 404), ("/v1/channels/nope/resync", 404)):
        response = await stack.sync.client.post(path, headers=stack.sync.admin)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
    feed = await register(stack.sync, code=unique("feed-"), kind="feed", endpoint=None)
    refused = await stack.sync.client.post(f"/v1/channels/{feed['id']}/reconcile", headers=stack.sync.admin)
    assert refused.status_code == 409
    assert "snapshot" in refused.json()["detail"]
    reader = await stack.sync.client.post(f"/v1/channels/{feed['id']}/resync", headers=stack.sync.reader)
    assert reader.status_code == 403
    assert (await stack.sync.client.get("/v1/jobs/nope", headers=stack.sync.reader)).status_code == 404


async def test_a_second_job_while_one_runs_is_refused_and_job_transitions_race(stack: Stack) -> None:
    channel = await stack.channel(status="paused")
    database = stack.sync.database

    async def start() -> str:
        async with database.session() as session:
            job = await service.start_job(
                session, channel_id=channel["id"], kind="reconcile", source="state_endpoint", actor="test"
            )
            return job.id

    results = await asyncio.gather(start(), start(), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1
    assert any(isinstance(r, Conflict) for r in results)
    for what in ("reconcile", "resync"):
        busy = await stack.sync.client.post(f"/v1/channels/{channel['id']}/{what}", headers=stack.sync.admin)
        assert busy.status_code == 409
        assert busy.headers["content-type"] == "application/problem+json"

    async def move(expected: str, to: str) -> bool:
        async with database.session() as session:
            won = await service.move_job(session, job_id=winners[0], expected=expected, to=to)
            await session.commit()
            return won

    assert sorted(await asyncio.gather(move("queued", "running"), move("queued", "running"))) == [False, True]
    ends = await asyncio.gather(move("running", "succeeded"), move("running", "failed"))
    assert sorted(ends) == [False, True]
    job = await stack.job_done(winners[0])
    assert job["status"] == ("succeeded" if ends[0] else "failed")
    assert not await move("failed" if ends[0] else "succeeded", "running")
    freed = await stack.start(channel)
    assert freed["status"] == "succeeded"


async def test_a_full_resync_pushes_every_listing_of_a_channel_again(
    stack: Stack, kafka_bootstrap: str
) -> None:
    channel = await stack.channel()
    skus = await listed_at_7(stack, kafka_bootstrap, channel, "SKU-Y", 3)
    state = stack.reference.channel(channel["code"])
    state.listings.clear()
    received = state.received

    job = await stack.start(channel, "resync")
    assert (job["status"], job["kind"], job["source"], job["phase"]) == (
        "succeeded",
        "resync",
        "projection",
        "push",
    )
    assert job["pulled"] == 0
    assert job["processed"] == job["total"] >= 3

    async def all_back() -> bool:
        return all(stack.held(channel, sku) is not None for sku in skus)

    await eventually(all_back)
    assert state.received > received
    for sku in skus:
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("7"))


async def _rows(stack: Stack, channel: dict[str, Any], skus: list[str]) -> dict[str, Listing]:
    async with stack.sync.database.session() as session:
        rows = (
            await session.execute(
                select(Listing).where(col(Listing.channel_id) == channel["id"], col(Listing.sku).in_(skus))
            )
        ).scalars()
        return {row.sku: row for row in rows}


async def test_a_resync_pushes_the_listings_the_channel_holds_again_and_writes_nothing_for_them(
    stack: Stack, kafka_bootstrap: str
) -> None:
    """A listing the channel holds by what was recorded (in sync, acknowledged at its desired state) is
    pushed by a resync as it is, not put back to pending; the channel's echo of it changes nothing, so
    nothing is written: the row is as it was, the pushes are in the deliveries. A listing that is not
    held (failed here) goes back to pending and is acknowledged as any push."""
    channel = await stack.channel()
    skus = await listed_at_7(stack, kafka_bootstrap, channel, "SKU-HELD", 3)
    failed = skus[0]
    async with stack.sync.database.session() as session:
        await session.execute(
            update(Listing)
            .where(col(Listing.channel_id) == channel["id"], col(Listing.sku) == failed)
            .values(status="failed", last_error="HTTP 500")
        )
        await session.commit()
    before = await _rows(stack, channel, skus)
    state = stack.reference.channel(channel["code"])
    state.listings.clear()  # the channel lost everything

    job = await stack.start(channel, "resync")
    assert job["status"] == "succeeded"

    async def all_back() -> bool:
        return all(stack.held(channel, sku) is not None for sku in skus)

    await eventually(all_back)
    recovered = await listing_where(stack.sync, channel["id"], failed, in_sync_at("7"))
    assert recovered["last_error"] is None
    after = await _rows(stack, channel, skus)
    assert after[failed].acked_at is not None
    assert after[failed].acked_at > before[failed].updated_at
    for sku in skus[1:]:
        was, now = before[sku], after[sku]
        assert (now.status, now.updated_at, now.acked_at, now.acked_seq, now.desired_seq) == (
            "in_sync",
            was.updated_at,
            was.acked_at,
            was.acked_seq,
            was.desired_seq,
        )
        assert stack.held(channel, sku) == now.desired == now.acked
    response = await stack.sync.client.get(
        f"/v1/channels/{channel['id']}/deliveries", headers=stack.sync.reader
    )
    pushed = {
        sku for item in response.json()["items"] if item["outcome"] == "succeeded" for sku in item["skus"]
    }
    assert set(skus) <= pushed


async def test_a_failed_resync_push_of_a_listing_the_channel_held_fails_it_and_a_replay_sends_it(
    stack: Stack, kafka_bootstrap: str
) -> None:
    """The channel did not take a resync's push of a listing it held: whether it holds it is no longer
    known, so the listing is failed (a compare-and-set: still held at the pushed sequence), listed with
    its delivery, and a replay sends it again."""
    channel = await stack.channel()
    [sku] = await listed_at_7(stack, kafka_bootstrap, channel, "SKU-HFAIL", 1)
    state = stack.reference.channel(channel["code"])
    state.listings.clear()
    stack.behave(channel, fail=True)
    assert (await stack.start(channel, "resync"))["status"] == "succeeded"
    failed = await listing_where(stack.sync, channel["id"], sku, lambda item: item["status"] == "failed")
    assert failed["last_error"] == "HTTP 500"
    assert stack.held(channel, sku) is None
    response = await stack.sync.client.get(
        f"/v1/channels/{channel['id']}/deliveries", params={"outcome": "failed"}, headers=stack.sync.reader
    )
    [delivery] = [d for d in response.json()["items"] if sku in d["skus"]]
    stack.behave(channel)
    replayed = await stack.sync.client.post(
        f"/v1/channels/{channel['id']}/deliveries/{delivery['id']}/replay", headers=stack.sync.admin
    )
    assert replayed.status_code == 200, replayed.text
    await listing_where(stack.sync, channel["id"], sku, in_sync_at("7"))
    assert (stack.held(channel, sku) or {})["price"] == "7"


async def test_a_resync_does_not_time_its_pushes_of_states_the_channel_holds(
    stack: Stack, kafka_bootstrap: str
) -> None:
    """Delivery latency is event time to acknowledgement. A resync pushes again states the channel holds
    already: no change is delivered, and timing those pushes from their events would put the listings' age
    (an hour here) in the channel's latency figures and histogram."""
    channel = await stack.channel()
    skus = await listed_at_7(stack, kafka_bootstrap, channel, "SKU-L", 2)
    async with stack.sync.database.session() as session:
        await session.execute(
            update(Listing)
            .where(col(Listing.channel_id) == channel["id"])
            .values(desired_at=utc_now() - timedelta(hours=1))
        )
    url = f"/v1/channels/{channel['id']}/deliveries"
    before = (await stack.sync.client.get(url, headers=stack.sync.reader)).json()["items"]
    labels = {"channel": channel["code"]}
    timed = REGISTRY.get_sample_value("sync_delivery_latency_seconds_count", labels)
    state = stack.reference.channel(channel["code"])
    state.listings.clear()

    job = await stack.start(channel, "resync")
    assert job["status"] == "succeeded"

    async def pushed_again() -> list[dict[str, Any]] | None:
        if not all(stack.held(channel, sku) is not None for sku in skus):
            return None
        response = await stack.sync.client.get(url, headers=stack.sync.reader)
        items: list[dict[str, Any]] = response.json()["items"]
        return items if len(items) > len(before) else None

    after = await eventually(pushed_again)
    resync = [item for item in after if item["id"] not in {b["id"] for b in before}]
    assert resync
    assert all(item["outcome"] == "succeeded" for item in resync)
    assert [item["latency_ms"] for item in resync] == [None] * len(resync)
    assert REGISTRY.get_sample_value("sync_delivery_latency_seconds_count", labels) == timed
    response = await stack.sync.client.get(f"/v1/channels/{channel['id']}/status", headers=stack.sync.reader)
    assert response.json()["latency_p99_ms"] < 60_000
    for sku in skus:
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("7"))


async def test_a_resync_creates_the_listings_a_channel_lacks_and_pushes_them(
    stack: Stack, kafka_bootstrap: str
) -> None:
    """A SKU in the projection without a listing on the channel (its facts came in another way than the
    events that create listings) gets one from the resync's page, pushed and acknowledged; a feed's is
    acknowledged as computed."""
    channel = await stack.channel()
    feed = await stack.channel("feed", endpoint=None)
    sku = unique("SKU-N")
    await publish(kafka_bootstrap, sku, "8.00")
    for target in (channel, feed):
        await listing_where(stack.sync, target["id"], sku, in_sync_at("8"))
    async with stack.sync.database.session() as session:
        await session.execute(delete(Listing).where(col(Listing.sku) == sku))
    stack.reference.channel(channel["code"]).listings.pop(sku, None)

    for target in (channel, feed):
        job = await stack.start(target, "resync")
        assert job["status"] == "succeeded", job
        await listing_where(stack.sync, target["id"], sku, in_sync_at("8"))
    assert (stack.held(channel, sku) or {})["price"] == "8"


async def _stamps(stack: Stack, channel_id: str, skus: list[str]) -> dict[str, tuple[str | None, int]]:
    async with stack.sync.database.read() as connection:
        rows = (
            await connection.execute(
                select(col(Listing.sku), col(Listing.facts_stamp), col(Listing.desired_seq)).where(
                    col(Listing.channel_id) == channel_id, col(Listing.sku).in_(skus)
                )
            )
        ).all()
    return {sku: (stamp, seq) for sku, stamp, seq in rows}


async def test_a_resync_recomputes_only_what_changed_since_its_stamp_and_pushes_every_listing(
    stack: Stack, kafka_bootstrap: str
) -> None:
    """A resync takes a listing stamped with the facts it was computed from as it is, and still pushes
    it; facts that changed without a recomputation (as a pull writes them), or a promotion that started
    by the clock since, make the next resync compute it again."""
    channel = await stack.channel()
    skus = sorted(unique("SKU-S") for _ in range(3))
    for sku in skus:
        await publish(kafka_bootstrap, sku, "7.00")
    for sku in skus:
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("7"))
    assert {stamp for stamp, _ in (await _stamps(stack, channel["id"], skus)).values()} == {None}

    assert (await stack.start(channel, "resync"))["status"] == "succeeded"
    stamped = await _stamps(stack, channel["id"], skus)
    assert all(stamp is not None for stamp, _ in stamped.values())
    state = stack.reference.channel(channel["code"])
    state.listings.clear()
    assert (await stack.start(channel, "resync"))["status"] == "succeeded"
    for sku in skus:  # every listing pushed again, none computed again
        await listing_where(stack.sync, channel["id"], sku, in_sync_at("7"))
        assert (stack.held(channel, sku) or {})["price"] == "7"
    assert await _stamps(stack, channel["id"], skus) == stamped

    async with stack.sync.database.session() as session:  # facts in, no recomputation (as a pull does)
        changed = await facts.apply_prices(
            session, [facts.PriceFact(skus[0], "EUR", None, Decimal("9.00"), utc_now())]
        )
        assert changed == {skus[0]}
    assert (await stack.start(channel, "resync"))["status"] == "succeeded"
    await listing_where(stack.sync, channel["id"], skus[0], in_sync_at("9"))
    assert (stack.held(channel, skus[0]) or {})["price"] == "9"
    restamped = await _stamps(stack, channel["id"], skus)
    assert restamped[skus[0]] != stamped[skus[0]]
    assert {sku: restamped[sku] for sku in skus[1:]} == {sku: stamped[sku] for sku in skus[1:]}

    # A product's new details that no longer list its variant: the variant still shows the product.
    async with stack.sync.database.session() as session:
        product_id = (await session.get(Listing, (channel["id"], skus[2]))).product_id  # type: ignore[union-attr]
        details = ProductDetails(title="Wool shirt", variants=[])
        await facts.apply_products(session, [facts.ProductFact(product_id, "active", 2, details)])
    assert (await stack.start(channel, "resync"))["status"] == "succeeded"

    async def retitled() -> bool:
        return (stack.held(channel, skus[2]) or {}).get("title") == "Wool shirt"

    await eventually(retitled)
    restamped = await _stamps(stack, channel["id"], skus)

    starts = utc_now() + timedelta(seconds=1)
    async with stack.sync.database.session() as session:  # known before it starts, as its event leaves it
        session.add(
            CatalogPromotion(
                promotion_id=unique("promo-"),
                kind="percentage",
                percent_bp=5000,
                skus=[skus[1]],
                category_ids=[],
                channels=[],
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
            )
        )
    assert (await stack.start(channel, "resync"))["status"] == "succeeded"
    assert (stack.held(channel, skus[1]) or {})["sale"] is None
    await asyncio.sleep(max(0.0, (starts - utc_now()).total_seconds()) + 0.1)
    assert (await stack.start(channel, "resync"))["status"] == "succeeded"

    async def on_sale() -> bool:
        return ((stack.held(channel, skus[1]) or {}).get("sale") or {}).get("price") == "3.5"

    await eventually(on_sale)
    for sku in (skus[0], skus[2]):  # computed again (the promotions running changed), the same states
        assert (await _stamps(stack, channel["id"], [sku]))[sku][1] == restamped[sku][1]


async def test_a_resync_from_product_service_without_its_credential_is_refused(stack: Stack) -> None:
    channel = await stack.channel(status="paused")
    url = f"/v1/channels/{channel['id']}/resync"
    refused = await stack.sync.client.post(url, json={"source": "product-service"}, headers=stack.sync.admin)
    assert refused.status_code == 409
    assert "SYNC_CLIENT_ID" in refused.json()["detail"]
    for body in ({"source": "elsewhere"}, {"source": "projection", "extra": 1}):
        invalid = await stack.sync.client.post(url, json=body, headers=stack.sync.admin)
        assert invalid.status_code == 422
        assert invalid.headers["content-type"] == "application/problem+json"
    assert (await stack.start(channel, "resync"))["source"] == "projection"


async def test_a_job_whose_process_died_is_abandoned_and_frees_its_channel(stack: Stack) -> None:
    channel = await stack.channel(status="paused")
    async with stack.sync.database.session() as session:
        job = await service.start_job(
            session, channel_id=channel["id"], kind="resync", source="projection", actor="test"
        )
        await session.execute(
            update(SyncJob)
            .where(col(SyncJob.id) == job.id)
            .values(
                status="running", heartbeat_at=utc_now() - timedelta(seconds=service.STALE_JOB_SECONDS + 1)
            )
        )
        await session.commit()
    fresh = await stack.start(channel)
    assert fresh["status"] == "succeeded"
    dead = await stack.job_done(job.id)
    assert dead["status"] == "failed"
    assert "abandoned" in dead["error"]
