"""Listings: each channel's desired state of each SKU, computed from product-service's events (read off
the real broker): price with the channel's own series, promotions and adjustment, stock of its locations
minus its buffer, publishable by status and completeness."""

import pytest
from sync_support import (
    Running,
    listing,
    listing_where,
    price_event,
    produce,
    product_event,
    promotion_event,
    register,
    stock_event,
    unique,
)

from contracts import topics

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_listings_carry_price_promotion_adjustment_and_stock_per_channel(
    live: Running, kafka_bootstrap: str
) -> None:
    web = await register(live, location_codes=["wh"], code=unique("web-"))
    market = await register(
        live, code=unique("mkt-"), price_adjustment_percent="10", location_codes=["wh"], safety_buffer=2
    )
    feed = await register(live, code=unique("feed-"), kind="feed", endpoint=None)
    sku = unique("SKU-")
    await produce(kafka_bootstrap, topics.PRODUCTS, [product_event(sku)])
    await produce(
        kafka_bootstrap,
        topics.PRICES,
        [price_event(sku, "20.00"), price_event(sku, "30.00", channel=web["code"])],
    )
    await produce(kafka_bootstrap, topics.INVENTORY, [stock_event(sku, {"wh": 5, "store": 7})])
    await produce(
        kafka_bootstrap,
        topics.PRICES,
        [promotion_event(True, skus=[sku], percent="25", channels=[market["code"]])],
    )

    # prices and stock arrive on different topics: wait for the state that holds both
    on_web = await listing_where(
        live,
        web["id"],
        sku,
        lambda item: item["desired"]["quantity"] == 5 and item["desired"]["price"] == "30",
    )
    assert on_web["desired"]["price"] == "30"
    assert on_web["desired"]["sale"] is None
    assert on_web["status"] == "pending"
    assert on_web["publishable"] is True
    on_market = await listing_where(
        live,
        market["id"],
        sku,
        lambda item: item["desired"]["sale"] is not None and item["desired"]["quantity"] == 3,
    )
    assert on_market["desired"]["price"] == "22"
    assert on_market["desired"]["sale"]["price"] == "16.5"
    assert on_market["desired"]["quantity"] == 3
    on_feed = await listing_where(live, feed["id"], sku, lambda item: item["desired"]["quantity"] == 12)
    assert on_feed["status"] == "in_sync"
    assert on_feed["desired"]["title"] == "Linen shirt"
    assert on_feed["desired"]["gtin"] == "4006381333931"


async def test_a_product_below_a_channels_completeness_threshold_is_not_published_there(
    live: Running, kafka_bootstrap: str
) -> None:
    strict = await register(live, code=unique("strict-"), completeness_threshold=1.0)
    lenient = await register(live, code=unique("lenient-"), completeness_threshold=0.5)
    sku = unique("SKU-")
    completeness = {strict["code"]: 0.6, lenient["code"]: 0.6}
    await produce(kafka_bootstrap, topics.PRODUCTS, [product_event(sku, completeness=completeness)])
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, "10.00")])

    on_strict = await listing_where(
        live, strict["id"], sku, lambda item: item["desired"]["price"] is not None
    )
    assert on_strict["publishable"] is False
    assert on_strict["status"] == "unpublished"
    assert "completeness" in on_strict["desired"]["unpublished_because"][0]
    on_lenient = await listing_where(
        live, lenient["id"], sku, lambda item: item["desired"]["price"] is not None
    )
    assert on_lenient["publishable"] is True
    assert on_lenient["status"] == "pending"


async def test_an_archived_product_is_unpublished_and_a_price_burst_ends_on_the_last_price(
    live: Running, kafka_bootstrap: str
) -> None:
    channel = await register(live, code=unique("shop-"), kind="feed", endpoint=None)
    sku, product_id = unique("SKU-"), unique("p-")
    await produce(kafka_bootstrap, topics.PRODUCTS, [product_event(sku, product_id=product_id)])
    await produce(kafka_bootstrap, topics.PRICES, [price_event(sku, f"{n}.00") for n in range(1, 41)])
    burst = await listing_where(live, channel["id"], sku, lambda item: item["desired"]["price"] == "40")
    assert burst["desired_seq"] < 41
    await produce(
        kafka_bootstrap,
        topics.PRODUCTS,
        [product_event(sku, product_id=product_id, status="archived", version=2)],
    )
    archived = await listing_where(live, channel["id"], sku, lambda item: item["publishable"] is False)
    assert archived["status"] == "unpublished"


async def test_listings_filter_by_status_page_by_sku_and_refuse_bad_input(
    live: Running, kafka_bootstrap: str
) -> None:
    channel = await register(live, code=unique("pages-"), kind="feed", endpoint=None)
    skus = sorted(unique("SKU-") for _ in range(5))
    await produce(kafka_bootstrap, topics.PRODUCTS, [product_event(sku) for sku in skus])
    await listing_where(live, channel["id"], skus[-1], lambda item: True)
    await listing_where(live, channel["id"], skus[0], lambda item: True)
    seen: list[str] = []
    params: dict[str, object] = {"limit": 2, "status": "unpublished"}
    for _ in range(20):
        response = await live.client.get(
            f"/v1/channels/{channel['id']}/listings", params=params, headers=live.reader
        )
        assert response.status_code == 200
        page = response.json()
        seen += [item["sku"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [sku for sku in seen if sku in skus] == skus
    assert seen == sorted(seen)
    bad_status = await live.client.get(
        f"/v1/channels/{channel['id']}/listings", params={"status": "lost"}, headers=live.reader
    )
    assert bad_status.status_code == 422
    unknown = await live.client.get(f"/v1/channels/{unique()}/listings", headers=live.reader)
    assert unknown.status_code == 404
    assert await listing(live, channel["id"], unique("SKU-")) is None
