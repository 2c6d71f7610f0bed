"""Catalog through the HTTP API: families, categories, products, variants, GTINs, ETags, events."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest
from product_support import (
    create_category,
    create_family,
    create_product,
    random_gtin,
    unique,
    wait_for_events,
)

from contracts.topics import PRODUCTS
from servicekit.testing import TestTokenIssuer

ATTRIBUTES = [
    {"code": "material", "type": "text", "required_channels": ["web"]},
    {
        "code": "weight",
        "type": "measurement",
        "units": ["g", "kg"],
        "required_channels": ["web", "marketplace"],
    },
    {"code": "waterproof", "type": "boolean"},
    {"code": "colour", "type": "enum", "options": ["red", "blue"], "required_channels": ["marketplace"]},
    {"code": "pages", "type": "number"},
]

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _family_category(client: httpx.AsyncClient, tokens: TestTokenIssuer) -> str:
    family = await create_family(client, tokens, ATTRIBUTES)
    category = await create_category(client, tokens, family_id=family["id"])
    return str(category["id"])


async def test_created_product_is_read_back_with_its_variants_and_etag(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("SKU-")
    created = await create_product(client, token_issuer, skus=[sku], brand="Acme")
    response = await client.get(
        f"/v1/products/{created['id']}", headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    body = response.json()
    assert body["brand"] == "Acme"
    assert body["status"] == "draft"
    assert [v["sku"] for v in body["variants"]] == [sku]


async def test_valid_typed_attributes_are_accepted(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    category_id = await _family_category(client, token_issuer)
    attributes = {
        "material": "cotton",
        "weight": {"value": 250, "unit": "g"},
        "waterproof": False,
        "colour": "red",
        "pages": 12,
    }
    product = await create_product(client, token_issuer, category_id=category_id, attributes=attributes)
    assert product["attributes"] == attributes


async def test_attribute_values_that_do_not_fit_the_family_get_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    category_id = await _family_category(client, token_issuer)
    bad = {
        "weight": {"value": 2, "unit": "lb"},
        "waterproof": "yes",
        "colour": "green",
        "unknown": 1,
        "pages": True,
    }
    response = await client.post(
        "/v1/products",
        json={"title": "Bad", "category_id": category_id, "attributes": bad},
        headers=token_issuer.auth_header("products:write"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert len(response.json()["attribute_errors"]) == 5


async def test_enum_attribute_without_options_is_refused(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/families",
        json={"code": unique("f_"), "title": "F", "attributes": [{"code": "size", "type": "enum"}]},
        headers=token_issuer.auth_header("products:write"),
    )
    assert response.status_code == 422


async def test_gtin_with_a_wrong_check_digit_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    good = random_gtin()
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    response = await client.post(
        "/v1/products",
        json={"title": "X", "variants": [{"sku": unique("S-"), "gtin": bad}]},
        headers=token_issuer.auth_header("products:write"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("body.variants.0.gtin")


async def test_valid_gtin_is_stored(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    gtin = random_gtin()
    product = await create_product(client, token_issuer, variants=[{"sku": unique("S-"), "gtin": gtin}])
    assert product["variants"][0]["gtin"] == gtin


async def test_duplicate_sku_gets_409(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    response = await client.post(
        "/v1/products",
        json={"title": "Again", "variants": [{"sku": sku}]},
        headers=token_issuer.auth_header("products:write"),
    )
    assert response.status_code == 409


async def test_duplicate_gtin_gets_409(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    gtin = random_gtin()
    await create_product(client, token_issuer, variants=[{"sku": unique("S-"), "gtin": gtin}])
    response = await client.post(
        "/v1/products",
        json={"title": "Again", "variants": [{"sku": unique("S-"), "gtin": gtin}]},
        headers=token_issuer.auth_header("products:write"),
    )
    assert response.status_code == 409


async def test_update_with_current_etag_changes_the_product_and_bumps_the_etag(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    product = await create_product(client, token_issuer)
    response = await client.patch(
        f"/v1/products/{product['id']}",
        json={"title": "Renamed", "status": "active"},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    assert response.json()["title"] == "Renamed"
    assert response.json()["brand"] == product["brand"]


async def test_stale_if_match_returns_412(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    product = await create_product(client, token_issuer)
    url = f"/v1/products/{product['id']}"
    headers = {**token_issuer.auth_header("products:write"), "If-Match": '"1"'}
    first = await client.patch(url, json={"title": "First writer"}, headers=headers)
    second = await client.patch(url, json={"title": "Second writer"}, headers=headers)
    assert first.status_code == 200
    assert second.status_code == 412
    assert second.headers["content-type"] == "application/problem+json"
    current = await client.get(url, headers=token_issuer.auth_header("products:read"))
    assert current.json()["title"] == "First writer"


async def test_update_without_if_match_returns_428(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    product = await create_product(client, token_issuer)
    response = await client.patch(
        f"/v1/products/{product['id']}",
        json={"title": "X"},
        headers=token_issuer.auth_header("products:write"),
    )
    assert response.status_code == 428


async def test_concurrent_updates_with_the_same_etag_let_exactly_one_win(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    product = await create_product(client, token_issuer)
    headers = {**token_issuer.auth_header("products:write"), "If-Match": '"1"'}
    responses = await asyncio.gather(
        *(
            client.patch(f"/v1/products/{product['id']}", json={"title": f"W{i}"}, headers=headers)
            for i in range(8)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1
    assert codes.count(412) == 7


async def test_reading_requires_products_read_scope(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    product = await create_product(client, token_issuer)
    response = await client.get(
        f"/v1/products/{product['id']}", headers=token_issuer.auth_header("orders:write")
    )
    assert response.status_code == 403


async def test_unknown_product_gets_404_problem(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get("/v1/products/nope", headers=token_issuer.auth_header("products:read"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_added_variant_appears_on_the_product(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    product = await create_product(client, token_issuer)
    sku = unique("V-")
    response = await client.post(
        f"/v1/products/{product['id']}/variants",
        json={"sku": sku, "attributes": {"size": "M"}},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"1"'},
    )
    assert response.status_code == 201, response.text
    assert sku in [v["sku"] for v in response.json()["variants"]]
    assert response.headers["ETag"] == '"2"'


async def test_variants_added_at_the_same_moment_without_if_match_are_all_added(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Without If-Match there is no precondition to fail: concurrent additions are each applied to the
    product as the last one left it (before, the losers of the version's compare-and-set got a 412 they
    never asked for). With If-Match, only one of the racing calls holding the same ETag wins."""
    product = await create_product(client, token_issuer)
    writer = token_issuer.auth_header("products:write")
    skus = [unique("VR-") for _ in range(6)]
    added = await asyncio.gather(
        *(
            client.post(f"/v1/products/{product['id']}/variants", json={"sku": sku}, headers=writer)
            for sku in skus
        )
    )
    assert [r.status_code for r in added] == [201] * 6, [r.text for r in added if r.status_code != 201]
    now = await client.get(f"/v1/products/{product['id']}", headers=token_issuer.auth_header("products:read"))
    assert set(skus) <= {v["sku"] for v in now.json()["variants"]}
    assert now.headers["ETag"] == f'"{1 + 6}"'
    assert sorted(r.headers["ETag"] for r in added) == sorted(f'"{v}"' for v in range(2, 8))

    conditional = await asyncio.gather(
        *(
            client.post(
                f"/v1/products/{product['id']}/variants",
                json={"sku": unique("VI-")},
                headers={**writer, "If-Match": '"7"'},
            )
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in conditional) == [201, 412, 412, 412]


async def test_category_tree_nests_children(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    root = await create_category(client, token_issuer)
    child = await create_category(client, token_issuer, parent_id=root["id"])
    response = await client.get("/v1/categories", headers=token_issuer.auth_header("products:read"))
    node = next(n for n in response.json() if n["id"] == root["id"])
    assert [c["id"] for c in node["children"]] == [child["id"]]


async def test_products_of_a_subcategory_inherit_the_family(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(client, token_issuer, ATTRIBUTES)
    root = await create_category(client, token_issuer, family_id=family["id"])
    child = await create_category(client, token_issuer, parent_id=root["id"])
    product = await create_product(client, token_issuer, category_id=child["id"], attributes={"pages": 3})
    assert product["family_id"] == family["id"]


async def test_list_filters_by_category_subtree_and_paginates(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    root = await create_category(client, token_issuer)
    child = await create_category(client, token_issuer, parent_id=root["id"])
    ids = [
        (await create_product(client, token_issuer, category_id=c["id"]))["id"] for c in (root, child, child)
    ]
    headers = token_issuer.auth_header("products:read")
    first = await client.get("/v1/products", params={"category_id": root["id"], "limit": 2}, headers=headers)
    second = await client.get(
        "/v1/products",
        params={"category_id": root["id"], "limit": 2, "cursor": first.json()["next_cursor"]},
        headers=headers,
    )
    seen = [p["id"] for p in first.json()["items"] + second.json()["items"]]
    assert seen == ids
    assert second.json()["next_cursor"] is None


async def test_bad_cursor_gets_400(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.get(
        "/v1/products", params={"cursor": "%%%"}, headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 400


async def test_product_lifecycle_events_are_published(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku = unique("SKU-")
    product = await create_product(client, token_issuer, skus=[sku])
    url = f"/v1/products/{product['id']}"
    headers = token_issuer.auth_header("products:write")
    await client.patch(url, json={"title": "New"}, headers={**headers, "If-Match": '"1"'})
    await client.patch(url, json={"status": "archived"}, headers={**headers, "If-Match": '"2"'})
    events = await wait_for_events(kafka_bootstrap, PRODUCTS, lambda e: e.subject == product["id"], count=3)
    assert [e.type for e in events] == [
        "ecom.product.created.v1",
        "ecom.product.updated.v1",
        "ecom.product.archived.v1",
    ]
    assert events[0].data["skus"] == [sku]
    assert events[1].data["changed_fields"] == ["title"]
    assert [e.sequence for e in events] == [1, 2, 3]


def _has_offset(value: str) -> bool:
    return datetime.fromisoformat(value).utcoffset() is not None


async def test_created_at_has_an_offset_on_create_and_on_a_later_read(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    created = await create_product(client, token_issuer)
    read = await client.get(
        f"/v1/products/{created['id']}", headers=token_issuer.auth_header("products:read")
    )
    assert read.status_code == 200, read.text
    for body in (created, read.json()):
        assert _has_offset(body["created_at"]), body["created_at"]
