"""Hostile input through the HTTP app: bounds at the edge, structurally broken files, values that used to
be silently accepted or coerced. Every bad value is a 4xx problem+json and nothing is half-written."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from product_support import create_category, create_family, create_product, finished_import, unique

from product_service.transfer.schemas import CSV_COLUMNS
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")

HEADER = ",".join(CSV_COLUMNS) + "\n"
EMPTY_TAIL = "," * (len(CSV_COLUMNS) - 2)  # the cells after sku and product_id's neighbour


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    return body


def _row(sku: str, title: str) -> str:
    cells = dict.fromkeys(CSV_COLUMNS, "")
    cells.update(sku=sku, title=title)
    return ",".join(cells[column] for column in CSV_COLUMNS)


async def _sku_exists(client: httpx.AsyncClient, tokens: TestTokenIssuer, sku: str) -> bool:
    response = await client.get(f"/v1/inventory/{sku}", headers=tokens.auth_header("products:read"))
    found = await client.get("/v1/search", params={"q": sku}, headers=tokens.auth_header("products:read"))
    return response.status_code == 200 or bool(found.json()["items"])


# --- bounds at the edge --------------------------------------------------------------------------


async def test_min_price_beyond_the_storable_range_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    for value in ("1e30", "NaN", "Infinity", "99999999999"):
        response = await client.get(
            "/v1/search",
            params={"q": "x", "currency": "EUR", "min_price": value},
            headers=token_issuer.auth_header("products:read"),
        )
        _problem(response, 422)


async def test_price_filters_at_the_largest_accepted_amount_answer_200(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    for name in ("min_price", "max_price"):
        response = await client.get(
            "/v1/search",
            params={"q": "x", "currency": "EUR", name: "9999999999.99"},
            headers=token_issuer.auth_header("products:read"),
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
async def test_a_price_moment_outside_the_sane_window_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, at: str
) -> None:
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    for path in ("lowest-30d", "effective", ""):
        response = await client.get(
            f"/v1/prices/{sku}/{path}".rstrip("/"),
            params={"currency": "EUR", "at": at},
            headers=token_issuer.auth_header("products:read"),
        )
        _problem(response, 422)


async def test_variant_attributes_nested_500_deep_are_4xx(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    deep: Any = 1
    for _ in range(500):
        deep = {"a": deep}
    body = {"title": "Deep", "variants": [{"sku": unique("SKU-"), "attributes": {"size": deep}}]}

    response = await client.post(
        "/v1/products",
        content=json.dumps(body).encode(),
        headers={**token_issuer.auth_header("products:write"), "content-type": "application/json"},
    )

    _problem(response, 422)


async def test_attributes_nested_deeper_than_the_schema_allows_are_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    deep: Any = 1
    for _ in range(20):
        deep = [deep]

    response = await client.post(
        "/v1/products",
        json={"title": "Deep", "attributes": {"x": deep}, "variants": [{"sku": unique("SKU-")}]},
        headers=token_issuer.auth_header("products:write"),
    )

    _problem(response, 422)


@pytest.mark.parametrize(
    "position",
    [
        {"id": 10**25},
        {"id": 2**40},
        {"id": -1},
        {"id": {"a": 1}},
        {"id": "x" * 300},
        {"x": "y"},
        {"id": None},
    ],
)
async def test_a_hand_made_cursor_is_400(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, position: dict[str, Any]
) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    for path in ("/v1/products", "/v1/imports", f"/v1/inventory/{sku}/movements", "/v1/search"):
        response = await client.get(
            path, params={"cursor": cursor}, headers=token_issuer.auth_header("products:read")
        )
        _problem(response, 400)


# --- silently accepted values --------------------------------------------------------------------


async def test_a_number_attribute_of_nan_from_an_import_is_a_row_error(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(client, token_issuer, [{"code": "pages", "type": "number"}])
    category = await create_category(client, token_issuer, family_id=family["id"])
    sku = unique("SKU-")
    cells = dict.fromkeys(CSV_COLUMNS, "")
    cells.update(sku=sku, title="Book", category_id=category["id"], attributes='"{""pages"": NaN}"')
    content = HEADER + ",".join(cells[column] for column in CSV_COLUMNS) + "\n"

    job = await _import(client, token_issuer, content, "csv")

    assert (job["status"], job["rows_created"], job["rows_failed"]) == ("succeeded", 0, 1), job
    assert not await _sku_exists(client, token_issuer, sku)


@pytest.mark.parametrize("currency", ["XXY", "ABC", "XXX", "XTS", "XAU", "XAG", "XPT", "XPD"])
async def test_a_price_in_an_unknown_currency_or_a_code_of_no_money_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, currency: str
) -> None:
    """ISO 4217 also codes 'no currency' (XXX), testing (XTS) and precious metals (XAU, XAG, XPT, XPD):
    none is money a product is sold in, and they were accepted like EUR."""
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])

    response = await client.post(
        f"/v1/prices/{sku}",
        json={"currency": currency, "amount": "1.00"},
        headers=token_issuer.auth_header("products:write"),
    )

    problem = _problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == ["body.currency"], problem


async def test_a_price_with_more_decimals_than_its_currency_has_is_422_naming_the_field(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """The yen has no minor unit: 10.50 JPY was recorded (and pushed to every channel) as a price no
    shop can charge. Whole yen, or with trailing zeros only, are prices."""
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    write = token_issuer.auth_header("products:write")

    refused = await client.post(
        f"/v1/prices/{sku}", json={"currency": "JPY", "amount": "10.50", "cost": "3.5"}, headers=write
    )
    accepted = await client.post(
        f"/v1/prices/{sku}", json={"currency": "JPY", "amount": "1050.00", "cost": "300"}, headers=write
    )

    problem = _problem(refused, 422)
    fields = {error["field"]: error["message"] for error in problem["errors"]}
    assert set(fields) == {"body.amount", "body.cost"}, problem
    assert "JPY" in fields["body.amount"], problem
    assert accepted.status_code == 201, accepted.text
    current = await client.get(
        f"/v1/prices/{sku}", params={"currency": "JPY"}, headers=token_issuer.auth_header("products:read")
    )
    assert Decimal(current.json()["amount"]) == 1050, current.text


async def test_an_amount_promotion_with_more_decimals_than_its_currency_has_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])

    response = await _promote(client, token_issuer, skus=[sku], kind="amount", value="0.5", currency="JPY")

    problem = _problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == ["body.value"], problem


async def test_a_supplier_cost_with_more_decimals_than_its_currency_has_is_refused(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    supplier_id = await _supplier_with_offer(client, token_issuer)

    feed = await _feed(client, token_issuer, supplier_id, "supplier_sku,cost,currency\nF-1,120.50,JPY\n")
    offer = await _put_offer(
        client, token_issuer, supplier_id, supplier_sku="F-2", cost="120.50", currency="JPY"
    )

    problem = _problem(offer, 422)
    assert [error["field"] for error in problem["errors"]] == ["body.cost"], problem
    assert feed.status_code == 200, feed.text
    assert feed.json()["updated"] == 0, feed.text
    [error] = feed.json()["errors"]
    assert "cost" in error["message"], error
    assert "JPY" in error["message"], error


async def _promote(client: httpx.AsyncClient, tokens: TestTokenIssuer, **body: Any) -> httpx.Response:
    now = datetime.now(UTC)
    body = {
        "title": "Sale",
        "kind": "percentage",
        "value": "10",
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        **body,
    }
    return await client.post("/v1/promotions", json=body, headers=tokens.auth_header("products:write"))


@pytest.mark.parametrize("target", [{"skus": ["NO-SUCH-SKU"]}, {"category_ids": ["no-such-category"]}])
async def test_a_promotion_on_an_unknown_sku_or_category_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, target: dict[str, Any]
) -> None:
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    body = {key: [sku, *value] if key == "skus" else value for key, value in target.items()}

    problem = _problem(await _promote(client, token_issuer, **body), 422)

    assert ("NO-SUCH-SKU" in problem["detail"]) or ("no-such-category" in problem["detail"]), problem


async def test_a_promotion_far_in_the_past_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])

    response = await _promote(
        client, token_issuer, skus=[sku], starts_at="0001-01-01T00:00:00Z", ends_at="0001-01-02T00:00:00Z"
    )

    _problem(response, 422)


async def _put_offer(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, supplier_id: str, **body: Any
) -> httpx.Response:
    """Set the supplier's offer for a new product's SKU."""
    sku = unique("SKU-")
    await create_product(client, tokens, skus=[sku])
    return await client.put(
        f"/v1/suppliers/{supplier_id}/offers/{sku}", json=body, headers=tokens.auth_header("products:write")
    )


async def _supplier_with_offer(client: httpx.AsyncClient, tokens: TestTokenIssuer) -> str:
    response = await client.post(
        "/v1/suppliers",
        json={"code": unique("sup_"), "title": "S"},
        headers=tokens.auth_header("products:write"),
    )
    supplier_id: str = response.json()["id"]
    offer = await _put_offer(client, tokens, supplier_id, supplier_sku="F-1", cost="1.00", currency="EUR")
    assert offer.status_code == 200, offer.text
    return supplier_id


async def _feed(
    client: httpx.AsyncClient,
    tokens: TestTokenIssuer,
    supplier_id: str,
    content: str,
    *,
    multipart: bool = False,
) -> httpx.Response:
    headers = tokens.auth_header("products:write")
    if multipart:
        return await client.post(
            f"/v1/suppliers/{supplier_id}/feed",
            files={"file": ("feed.csv", content.encode())},
            headers=headers,
        )
    return await client.post(
        f"/v1/suppliers/{supplier_id}/feed",
        content=content.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )


async def test_a_supplier_feed_error_names_the_field_and_value(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    supplier_id = await _supplier_with_offer(client, token_issuer)
    content = (
        "supplier_sku,cost,currency,available_quantity\n"
        "F-1,abc,EUR,1\nF-1,1.00,XXY,1\nF-1,1.00,EUR,99999999999999999999\nF-1,1e400,EUR,1\nF-1,NaN,EUR,1\n"
    )

    response = await _feed(client, token_issuer, supplier_id, content)

    assert response.status_code == 200, response.text
    messages = {e["row_number"]: e["message"] for e in response.json()["errors"]}
    assert set(messages) == {1, 2, 3, 4, 5}, messages
    assert "cost" in messages[1], messages
    assert "'abc'" in messages[1], messages
    assert "class" not in messages[1], messages
    assert "XXY" in messages[2], messages
    assert "ISO 4217" in messages[2], messages
    assert "available_quantity" in messages[3], messages
    assert "cost" in messages[4], messages
    assert "cost" in messages[5], messages


async def test_an_unterminated_quote_in_a_feed_is_422_with_its_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    supplier_id = await _supplier_with_offer(client, token_issuer)
    content = 'supplier_sku,cost,currency\nF-1,"2.00,EUR\nF-1,3.00,EUR\n'

    detail = _problem(await _feed(client, token_issuer, supplier_id, content), 422)["detail"]

    assert "line 2" in detail, detail
    assert "quote" in detail, detail


async def test_a_feed_is_accepted_as_multipart_too(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    supplier_id = await _supplier_with_offer(client, token_issuer)

    response = await _feed(
        client, token_issuer, supplier_id, "supplier_sku,cost,currency\nF-1,2.50,EUR\n", multipart=True
    )

    assert response.status_code == 200, response.text
    assert (response.json()["rows"], response.json()["updated"]) == (1, 1)


# --- the product import --------------------------------------------------------------------------


async def _import(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, content: str, fmt: str, *, multipart: bool = False
) -> dict[str, Any]:
    headers = tokens.auth_header("products:write")
    if multipart:
        response = await client.post(
            "/v1/imports",
            params={"format": fmt},
            files={"file": (f"p.{fmt}", content.encode())},
            headers=headers,
        )
    else:
        response = await client.post(
            "/v1/imports",
            params={"format": fmt},
            content=content.encode(),
            headers={**headers, "Content-Type": "text/csv" if fmt == "csv" else "application/x-ndjson"},
        )
    assert response.status_code == 202, response.text
    return await finished_import(client, tokens, response.json()["id"])


async def test_an_unterminated_quote_fails_the_product_import_with_its_line_and_imports_nothing(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    skus = [unique("SKU-") for _ in range(4)]
    rows = [_row(skus[0], "One"), _row(skus[1], '"Two'), _row(skus[2], "Three"), _row(skus[3], "Four")]

    job = await _import(client, token_issuer, HEADER + "\n".join(rows) + "\n", "csv")

    assert job["status"] == "failed", job
    assert "line 3" in job["error"], job
    assert "quote" in job["error"], job
    assert job["rows_created"] == 0
    assert not await _sku_exists(client, token_issuer, skus[0])


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"sku": "A-1", "variant_attributes": {"x": ' + "[" * 500 + "]" * 500 + "}}", "nested deeper"),
        ('{"sku": "A-1", "attributes": {"x": 1e400}}', "finite"),
        ('{"sku": "A-1"', "not valid JSON"),
    ],
)
async def test_a_broken_ndjson_line_fails_the_product_import(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, line: str, fragment: str
) -> None:
    sku = unique("SKU-")
    content = json.dumps({"sku": sku, "title": "Fine"}) + "\n" + line + "\n"

    job = await _import(client, token_issuer, content, "ndjson")

    assert job["status"] == "failed", job
    assert "line 2" in job["error"], job
    assert fragment in job["error"], job
    assert not await _sku_exists(client, token_issuer, sku)


async def test_a_product_import_is_accepted_as_multipart(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("SKU-")

    job = await _import(client, token_issuer, HEADER + _row(sku, "Multi") + "\n", "csv", multipart=True)

    assert (job["status"], job["rows_created"]) == ("succeeded", 1), job


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1e300", "NaN", "inf", "1" + "0" * 30])
async def test_an_attribute_filter_with_an_absurd_number_is_read_as_text(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, value: str
) -> None:
    response = await client.get(
        "/v1/search",
        params={"attribute": f"pages:{value}"},
        headers=token_issuer.auth_header("products:read"),
    )

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


async def test_a_nul_character_is_refused_in_body_path_and_query(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    headers = token_issuer.auth_header("products:read", "products:write")

    body = await client.post("/v1/categories", json={"title": "a\u0000b"}, headers=headers)
    path = await client.get("/v1/products/a%00b", headers=headers)
    query = await client.get("/v1/search", params={"q": "a\u0000b"}, headers=headers)

    assert [error["field"] for error in _problem(body, 422)["errors"]] == ["body.title"]
    _problem(path, 400)
    _problem(query, 400)


async def test_a_large_upload_labelled_json_is_taken_as_a_file_not_refused_as_a_big_body(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    prefix = unique("BIG-")
    lines = [
        json.dumps({"sku": f"{prefix}-{n}", "title": "Big", "description": "x" * 2000}) for n in range(600)
    ]
    content = ("\n".join(lines) + "\n").encode()
    assert len(content) > 1024 * 1024

    response = await client.post(
        "/v1/imports",
        params={"format": "ndjson"},
        content=content,
        headers={**token_issuer.auth_header("products:write"), "Content-Type": "application/json"},
    )

    assert response.status_code == 202, response.text
    job = await finished_import(client, token_issuer, response.json()["id"])
    assert (job["status"], job["rows_created"]) == ("succeeded", 600), job


async def test_a_multipart_upload_without_a_file_part_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/imports",
        headers={
            **token_issuer.auth_header("products:write"),
            "Content-Type": "multipart/form-data; boundary=x",
        },
        content=b'--x\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--x--\r\n',
    )

    assert "no file part" in _problem(response, 422)["detail"]


# --- display text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Invoice\u202egnp.exe"),
        ("title", "Bell\u0007"),
        ("title", "   "),
        ("brand", "Acme\u001b[2J"),
        ("description", "Fine\nlines\tand \u2066hidden\u2069"),
    ],
)
async def test_control_and_bidi_override_characters_in_display_text_are_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, field: str, value: str
) -> None:
    """They reached channel listings and the Google feed (XML 1.0 has no BEL or ESC) as sent."""
    sku = unique("TXT-")
    body = {"title": "Plain", "variants": [{"sku": sku}], field: value}

    response = await client.post(
        "/v1/products", json=body, headers=token_issuer.auth_header("products:write")
    )

    assert [e["field"] for e in _problem(response, 422)["errors"]] == [f"body.{field}"]
    assert not await _sku_exists(client, token_issuer, sku)


async def test_a_description_keeps_its_line_breaks_and_tabs(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    product = await create_product(client, token_issuer, description="Two\r\nlines\tand a tab")

    assert product["description"] == "Two\r\nlines\tand a tab"


async def test_a_title_with_a_control_character_is_a_row_error_of_an_import(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("SKU-")
    content = json.dumps({"sku": sku, "title": "Bell\u0007"}) + "\n"

    job = await _import(client, token_issuer, content, "ndjson")

    assert (job["rows_created"], job["rows_failed"]) == (0, 1), job
    assert not await _sku_exists(client, token_issuer, sku)
