"""Search: full text over name, description and attributes, with filters and cursor pagination."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from product_support import create_category, create_family, create_product, unique

from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _search(client: httpx.AsyncClient, tokens: TestTokenIssuer, **params: Any) -> list[str]:
    response = await client.get("/v1/search", params=params, headers=tokens.auth_header("products:read"))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_words_in_title_description_or_attributes_find_the_product(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    word = unique("zq")
    family = await create_family(client, token_issuer, [{"code": "material", "type": "text"}])
    category = await create_category(client, token_issuer, family_id=family["id"])
    by_title = await create_product(client, token_issuer, title=f"Jacket {word}")
    by_description = await create_product(client, token_issuer, description=f"A very {word} coat")
    by_attribute = await create_product(
        client, token_issuer, category_id=category["id"], attributes={"material": f"{word} wool"}
    )
    found = await _search(client, token_issuer, q=word)
    assert found == [by_title["id"], by_description["id"], by_attribute["id"]]


async def test_every_word_must_match_and_prefixes_count(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    word = unique("zr")
    both = await create_product(client, token_issuer, title=f"Rain {word} boots")
    await create_product(client, token_issuer, title=f"Snow {word} boots")
    assert await _search(client, token_issuer, q=f"rai {word}") == [both["id"]]


@pytest.mark.parametrize("code", ["0e4a030bd3", "1e5", "12.5e3x", "ab-0e4cd"])
async def test_skus_that_look_like_numbers_are_found_whole_and_by_part(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, code: str
) -> None:
    sku = unique("NUM-") + f"-{code}"
    product = await create_product(client, token_issuer, skus=[sku])
    assert await _search(client, token_issuer, q=sku) == [product["id"]]
    assert product["id"] in await _search(client, token_issuer, q=code)


async def test_a_query_of_punctuation_only_finds_nothing(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    assert await _search(client, token_issuer, q='"*) OR (') == []


async def test_filters_by_category_status_and_attribute(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(
        client,
        token_issuer,
        [
            {"code": "colour", "type": "enum", "options": ["red", "blue"]},
            {"code": "waterproof", "type": "boolean"},
        ],
    )
    category = await create_category(client, token_issuer, family_id=family["id"])
    red = await create_product(
        client,
        token_issuer,
        category_id=category["id"],
        status="active",
        attributes={"colour": "red", "waterproof": True},
    )
    await create_product(
        client, token_issuer, category_id=category["id"], status="active", attributes={"colour": "blue"}
    )
    await create_product(
        client, token_issuer, category_id=category["id"], status="draft", attributes={"colour": "red"}
    )
    found = await _search(
        client,
        token_issuer,
        category_id=category["id"],
        status="active",
        attribute=["colour:red", "waterproof:true"],
    )
    assert found == [red["id"]]


async def test_filters_by_price_range(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    category = await create_category(client, token_issuer)
    ids = []
    for amount in ("5.00", "15.00", "25.00"):
        sku = unique("SKU-")
        product = await create_product(client, token_issuer, skus=[sku], category_id=category["id"])
        await client.post(
            f"/v1/prices/{sku}",
            json={"currency": "EUR", "amount": amount},
            headers=token_issuer.auth_header("products:write"),
        )
        ids.append(product["id"])
    found = await _search(
        client, token_issuer, category_id=category["id"], currency="EUR", min_price="10", max_price="20"
    )
    assert found == [ids[1]]


async def test_filters_by_stock_state(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    category = await create_category(client, token_issuer)
    stocked_sku = unique("SKU-")
    stocked = await create_product(client, token_issuer, skus=[stocked_sku], category_id=category["id"])
    empty = await create_product(client, token_issuer, category_id=category["id"])
    location = await client.post(
        "/v1/locations",
        json={"code": unique("l_"), "title": "W", "kind": "warehouse"},
        headers=token_issuer.auth_header("inventory:write"),
    )
    await client.post(
        "/v1/inventory/movements",
        json={"kind": "receipt", "sku": stocked_sku, "location_id": location.json()["id"], "quantity": 1},
        headers=token_issuer.auth_header("inventory:write"),
    )
    assert await _search(client, token_issuer, category_id=category["id"], stock="in_stock") == [
        stocked["id"]
    ]
    assert await _search(client, token_issuer, category_id=category["id"], stock="out_of_stock") == [
        empty["id"]
    ]


async def test_results_page_with_a_cursor(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    word = unique("zp")
    ids = [(await create_product(client, token_issuer, title=f"{word} {i}"))["id"] for i in range(5)]
    headers = token_issuer.auth_header("products:read")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": word, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/search", params=params, headers=headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids


async def test_updated_title_is_searchable(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    product = await create_product(client, token_issuer)
    word = unique("zu")
    await client.patch(
        f"/v1/products/{product['id']}",
        json={"title": f"Now {word}"},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"1"'},
    )
    assert await _search(client, token_issuer, q=word) == [product["id"]]


async def test_price_range_without_currency_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get(
        "/v1/search", params={"min_price": "1"}, headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 422


async def test_malformed_attribute_filter_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get(
        "/v1/search", params={"attribute": "no-colon"}, headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "query", ["_", "a_b", "été", "AND", "NEAR", "OR x", "*", "x:y", "'; drop", "ß" * 150]
)
async def test_odd_queries_are_answered_not_failed(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, query: str
) -> None:
    response = await client.get(
        "/v1/search", params={"q": query}, headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 200, response.text


async def test_attribute_filter_matches_numbers_and_never_fails_on_other_types(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(
        client, token_issuer, [{"code": "pages", "type": "number"}, {"code": "material", "type": "text"}]
    )
    category = await create_category(client, token_issuer, family_id=family["id"])
    numbered = await create_product(
        client, token_issuer, category_id=category["id"], attributes={"pages": 12}
    )
    texted = await create_product(
        client, token_issuer, category_id=category["id"], attributes={"material": "12"}
    )
    await create_product(client, token_issuer, category_id=category["id"], attributes={"material": "wool"})
    assert await _search(client, token_issuer, category_id=category["id"], attribute="pages:12") == [
        numbered["id"]
    ]
    assert await _search(client, token_issuer, category_id=category["id"], attribute="material:12") == [
        texted["id"]
    ]
    assert await _search(client, token_issuer, category_id=category["id"], attribute="material:true") == []


async def test_a_product_with_a_very_long_word_is_created_and_found_by_its_other_words(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    marker = unique("longword")
    product = await create_product(client, token_issuer, title=f"Plain {marker}", description="0" * 5000)
    assert await _search(client, token_issuer, q=marker) == [product["id"]]
