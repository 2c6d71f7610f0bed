"""Hostile input through the HTTP app: every bad value is a 4xx problem+json, nothing is silently
dropped, coerced or half-imported."""

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from customer_helpers import create_customer, new_email, unique

from servicekit.testing import TestTokenIssuer

WRITE = ("customers:write", "customers:pii")
HEADER = "first_name,last_name,email,country,tags\n"


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    return body


async def _by_tag(client: httpx.AsyncClient, tokens: TestTokenIssuer, tag: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/customers", params={"tag": tag}, headers=tokens.auth_header("customers:read")
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _post_raw(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, path: str, body: str
) -> httpx.Response:
    return await client.post(
        path,
        content=body.encode(),
        headers={**tokens.auth_header(*WRITE), "content-type": "application/json"},
    )


# --- bounds at the edge --------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e400", "NaN", "Infinity", "-Infinity"])
async def test_a_non_finite_attribute_number_is_422_not_stored(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, number: str
) -> None:
    response = await _post_raw(
        client, token_issuer, "/v1/customers", '{"first_name": "Ann", "attributes": {"n": ' + number + "}}"
    )

    problem = _problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["body.attributes.n"]


async def test_a_body_nested_2000_deep_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    body = '{"first_name": "Ann", "attributes": {"n": ' + "[" * 2000 + "]" * 2000 + "}}"

    response = await _post_raw(client, token_issuer, "/v1/customers", body)

    assert "nested deeper" in _problem(response, 422)["detail"]


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    body = json.dumps({"first_name": "Ann", "tags": ["x" * 1000] * 2000})

    response = await _post_raw(client, token_issuer, "/v1/customers", body)

    assert "larger than 1 MiB" in _problem(response, 413)["detail"]


async def test_a_huge_integer_attribute_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await _post_raw(
        client, token_issuer, "/v1/customers", '{"first_name": "Ann", "attributes": {"n": 1%s}}' % ("0" * 25)
    )

    _problem(response, 422)


@pytest.mark.parametrize(
    "position", [{"id": 10**25}, {"id": "x" * 5000}, {"id": [1]}, {"id": 1.5e300}, {"x": "y"}, {"id": None}]
)
async def test_a_hand_made_cursor_is_400(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, position: dict[str, Any]
) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
    for path in ("/v1/customers", "/v1/duplicates", "/v1/risk/flags"):
        response = await client.get(
            path, params={"cursor": cursor}, headers=token_issuer.auth_header("customers:read")
        )
        _problem(response, 400)


# --- silently accepted values --------------------------------------------------------------------


async def test_an_empty_customer_is_422(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    for body in ({}, {"tags": ["vip"]}, {"attributes": {"a": 1}}, {"first_name": "  "}):
        response = await client.post("/v1/customers", json=body, headers=token_issuer.auth_header(*WRITE))
        messages = [error["message"] for error in _problem(response, 422)["errors"]]
        assert any("identifying field" in message for message in messages), (body, messages)


@pytest.mark.parametrize(
    "body",
    [
        {"first_name": "Ann", "country": "XX"},
        {
            "first_name": "Ann",
            "addresses": [{"kind": "shipping", "line1": "1 A St", "city": "B", "country": "ZZ"}],
        },
    ],
)
async def test_an_unknown_country_code_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/customers", json=body, headers=token_issuer.auth_header(*WRITE))

    _problem(response, 422)


async def test_a_known_lower_case_country_is_stored_upper_case(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer, country="de")

    assert customer["country"] == "DE"


async def test_a_consent_recorded_in_the_future_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()

    response = await client.post(
        f"/v1/customers/{customer['id']}/consents",
        json={"purpose": "email_marketing", "status": "granted", "source": "checkout", "recorded_at": future},
        headers=token_issuer.auth_header(*WRITE),
    )

    assert [e["field"] for e in _problem(response, 422)["errors"]] == ["body.recorded_at"]


def _order(**fields: Any) -> dict[str, Any]:
    return {
        "order_number": unique(),
        "customer": {"email": new_email()},
        "channel": "web",
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "9.99", "currency": "EUR"}],
        **fields,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {
            "currency": "XXY",
            "lines": [{"sku": "S", "quantity": 1, "unit_price": "1", "currency": "XXY"}],
        },
        {"shipping_country": "QQ"},
        {"billing_country": "qq"},
        {
            "currency": "ABC",
            "lines": [{"sku": "S", "quantity": 1, "unit_price": "1", "currency": "ABC"}],
        },
        {"placed_at": "0001-01-01T00:00:00Z"},
        {"placed_at": "2150-01-01T00:00:00Z"},  # in the future: an order placed is a moment that happened
    ],
)
async def test_an_order_with_an_unknown_code_or_absurd_date_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, fields: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/orders", json=_order(**fields), headers=token_issuer.auth_header("orders:write", *WRITE)
    )

    _problem(response, 422)


# --- imports: structural errors and limits -------------------------------------------------------


async def test_an_unterminated_quote_fails_the_whole_import_with_its_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"q-{unique()}"
    rows = [
        f"Ana,One,{new_email()},ES,{tag}",
        f'Ben,"Two,{new_email()},ES,{tag}',
        f"Cid,Three,{new_email()},ES,{tag}",
        f"Dan,Four,{new_email()},ES,{tag}",
    ]

    response = await client.post(
        "/v1/imports",
        files={"file": ("c.csv", (HEADER + "\n".join(rows) + "\n").encode())},
        headers=token_issuer.auth_header("customers:write"),
    )

    problem = _problem(response, 422)
    assert "line 3" in problem["detail"], problem
    assert "quote" in problem["detail"], problem
    assert await _by_tag(client, token_issuer, tag) == []


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (HEADER + "Ana,One,a@example.com,ES\n", "line 2: the row has 4 cells"),
        (HEADER + "Ana,One," + "x" * (130 * 1024) + ",ES,t\n", "line 2: a cell is longer"),
        (HEADER + "Ana,One," + "x" * (70 * 1024) + ",ES,t\n", "line 2: the cell of column 'email'"),
        (
            HEADER + "Ana,One,a@example.com,ES,t\nB\x00b,Two,b@example.com,ES,t\n",
            "line 3: the line holds a NUL",
        ),
        ((HEADER + "Ana,One,a@example.com,ES,t\n").encode("utf-16"), "line 1"),
    ],
)
async def test_a_structurally_broken_csv_is_422_with_its_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, content: str | bytes, fragment: str
) -> None:
    data = content.encode() if isinstance(content, str) else content
    response = await client.post(
        "/v1/imports", files={"file": ("c.csv", data)}, headers=token_issuer.auth_header("customers:write")
    )

    assert fragment in _problem(response, 422)["detail"]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"first_name": "A", "attributes": {"n": ' + "[" * 2000 + "]" * 2000 + "}}", "nested deeper"),
        ('{"first_name": "A", "attributes": {"n": 1e400}}', "finite"),
        ('{"first_name": "A", "attributes": {"n": NaN}}', "finite"),
        ('{"first_name": "A"', "not valid JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
async def test_a_broken_ndjson_line_fails_the_import_with_its_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, line: str, fragment: str
) -> None:
    content = json.dumps({"first_name": "Ok", "emails": [{"address": new_email()}]}) + "\n\n" + line + "\n"

    response = await client.post(
        "/v1/imports",
        files={"file": ("c.ndjson", content.encode())},
        headers=token_issuer.auth_header("customers:write"),
    )

    detail = _problem(response, 422)["detail"]
    assert "line 3" in detail, detail
    assert fragment in detail, detail


async def test_an_import_is_accepted_as_a_raw_body_too(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"raw-{unique()}"
    content = HEADER + f"Ana,One,{new_email()},ES,{tag}\n"

    response = await client.post(
        "/v1/imports",
        content=content.encode(),
        headers={**token_issuer.auth_header("customers:write"), "content-type": "text/csv"},
    )

    assert response.status_code == 202, response.text
    job = await _finished(client, token_issuer, response.json()["id"])
    assert (job["status"], job["created_count"]) == ("succeeded", 1)
    assert len(await _by_tag(client, token_issuer, tag)) == 1


async def _finished(client: httpx.AsyncClient, tokens: TestTokenIssuer, job_id: str) -> dict[str, Any]:
    for _ in range(200):
        job: dict[str, Any] = (
            await client.get(f"/v1/imports/{job_id}", headers=tokens.auth_header("customers:write"))
        ).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("import job did not finish")


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01"])
async def test_a_search_date_outside_the_sane_window_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, moment: str
) -> None:
    for name in ("created_from", "created_to", "updated_from", "updated_to"):
        response = await client.get(
            "/v1/customers", params={name: moment}, headers=token_issuer.auth_header("customers:read")
        )
        _problem(response, 422)


async def test_an_order_at_the_largest_values_is_stored_or_refused_never_a_500(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    line = {"sku": "S", "quantity": 100_000, "unit_price": "9999999999.9999", "currency": "EUR"}
    bodies = [
        _order(lines=[line] * 500),
        _order(lines=[line], discount_total="9999999999.9999"),
        _order(lines=[line], total="1", subtotal="1"),
    ]
    for body in bodies:
        response = await client.post(
            "/v1/orders", json=body, headers=token_issuer.auth_header("orders:write", *WRITE)
        )
        assert response.status_code in (201, 422), response.text
