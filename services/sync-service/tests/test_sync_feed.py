"""The Google Merchant Center feed of a feed channel, from listings computed through the real broker: every
item has the fields Google requires, hostile characters are escaped or removed, ETag and 304, and clear
problems for other channels."""

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from sync_support import (
    Running,
    listing_where,
    price_event,
    produce,
    promotion_event,
    register,
    stock_event,
    unique,
)

from contracts import CloudEvent, build_event, topics
from contracts.catalog.products import ProductCreated, ProductDetails, VariantFacts

pytestmark = pytest.mark.asyncio(loop_scope="module")

G = "{http://base.google.com/ns/1.0}"
REQUIRED = ("g:id", "title", "description", "link", "g:image_link", "g:availability", "g:price")
HOSTILE_TITLE = "Tom & Jerry <script>alert(1)</script> \U0001f455 \x07bell\x1f"


def _qualified(name: str) -> str:
    return f"{G}{name[2:]}" if name.startswith("g:") else name


def _product(
    sku: str, *, title: str, brand: str | None, gtin: str | None, variants: bool, **attributes: Any
) -> CloudEvent:
    product_id = unique("p-")
    details = ProductDetails(
        title=title,
        brand=brand,
        description="Soft & light; <b>not</b> bold \x0b\U0001f600",
        attributes=attributes,
        media_urls=["https://images.example.com/1.jpg?a=1&b=2"],
        category_path=[],
        completeness={},
        variants=[VariantFacts(sku=sku, gtin=gtin, attributes={"size": "M"} if variants else {})],
    )
    data = ProductCreated(product_id=product_id, status="active", skus=[sku], version=1, details=details)
    return build_event("ecom.product.created.v1", data, subject=product_id, sequence=1)


async def test_the_feed_has_every_required_field_and_escapes_hostile_text(
    live: Running, kafka_bootstrap: str
) -> None:
    feed = await register(live, code=unique("feed-"), kind="feed", endpoint=None)
    hostile, plain, used, unpriced = (unique("SKU-F") for _ in range(4))
    await produce(
        kafka_bootstrap,
        topics.PRODUCTS,
        [
            _product(hostile, title=HOSTILE_TITLE, brand="Acme & Sons", gtin="4006381333931", variants=True),
            _product(plain, title="Plain mug", brand=None, gtin=None, variants=False, backorder=True),
            _product(used, title="Used lamp", brand="Lumen", gtin=None, variants=False, condition="used"),
            _product(unpriced, title="No price", brand="Acme", gtin=None, variants=False),
        ],
    )
    await produce(
        kafka_bootstrap,
        topics.PRICES,
        [price_event(hostile, "12.99"), price_event(plain, "5"), price_event(used, "40.10")],
    )
    await produce(kafka_bootstrap, topics.INVENTORY, [stock_event(hostile, {"wh": 3})])
    await produce(
        kafka_bootstrap,
        topics.PRICES,
        [promotion_event(True, skus=[hostile], percent="10", channels=[feed["code"]])],
    )
    await listing_where(live, feed["id"], hostile, lambda item: item["desired"]["sale"] is not None)
    await listing_where(live, feed["id"], used, lambda item: item["publishable"])
    await listing_where(live, feed["id"], plain, lambda item: item["publishable"])

    response = await live.client.get(f"/v1/channels/{feed['id']}/feed.xml", headers=live.reader)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/rss+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    assert f'xmlns:g="{G[1:-1]}"' in response.text
    items = {item.findtext(f"{G}id"): item for item in root.iter("item")}
    assert {hostile, plain, used} <= set(items)
    assert unpriced not in items  # not publishable without a price
    for sku, item in items.items():
        for name in REQUIRED:
            assert (item.findtext(_qualified(name)) or "").strip(), f"{sku} lacks {name}"
        identifiers = [item.findtext(f"{G}{n}") for n in ("brand", "gtin", "mpn")]
        assert any(identifiers) or item.findtext(f"{G}identifier_exists") == "no"
        assert item.findtext(f"{G}availability") in ("in_stock", "out_of_stock", "backorder")
        assert item.findtext(f"{G}condition") in ("new", "used", "refurbished")

    shirt = items[hostile]
    assert shirt.findtext("title") == "Tom & Jerry <script>alert(1)</script> \U0001f455 bell"
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
    assert shirt.findtext("description") == "Soft & light; <b>not</b> bold \U0001f600"
    assert shirt.findtext(f"{G}price") == "12.99 EUR"
    assert shirt.findtext(f"{G}sale_price") == "11.69 EUR"
    start, end = (shirt.findtext(f"{G}sale_price_effective_date") or "").split("/")
    assert start < end
    assert shirt.findtext(f"{G}availability") == "in_stock"
    assert shirt.findtext(f"{G}gtin") == "4006381333931"
    assert shirt.findtext(f"{G}brand") == "Acme & Sons"
    assert shirt.findtext(f"{G}item_group_id")
    assert shirt.findtext(f"{G}image_link") == "https://images.example.com/1.jpg?a=1&b=2"
    assert (shirt.findtext("link") or "").startswith(f"{live.settings.feed_link_base}/products/")

    mug = items[plain]
    assert mug.findtext(f"{G}price") == "5.00 EUR"
    assert mug.findtext(f"{G}availability") == "backorder"
    assert mug.findtext(f"{G}identifier_exists") == "no"
    assert mug.find(f"{G}item_group_id") is None
    assert items[used].findtext(f"{G}condition") == "used"
    assert items[used].findtext(f"{G}availability") == "out_of_stock"

    etag = response.headers["ETag"]
    again = await live.client.get(
        f"/v1/channels/{feed['id']}/feed.xml", headers={**live.reader, "If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    assert again.content == b""
    await produce(kafka_bootstrap, topics.PRICES, [price_event(plain, "6")])
    await listing_where(live, feed["id"], plain, lambda item: item["desired"]["price"] == "6")
    changed = await live.client.get(
        f"/v1/channels/{feed['id']}/feed.xml", headers={**live.reader, "If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


async def test_the_feed_of_a_channel_that_is_not_a_feed_or_unknown_is_a_clear_problem(live: Running) -> None:
    web = await register(live, code=unique("web-"))
    response = await live.client.get(f"/v1/channels/{web['id']}/feed.xml", headers=live.reader)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "only feed channels" in response.json()["detail"]
    missing = await live.client.get("/v1/channels/nope/feed.xml", headers=live.reader)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    anonymous = await live.client.get(f"/v1/channels/{web['id']}/feed.xml")
    assert anonymous.status_code == 401
    wrong_scope = await live.client.get(
        f"/v1/channels/{web['id']}/feed.xml", headers=live.tokens.auth_header("catalog:read")
    )
    assert wrong_scope.status_code == 403
