"""Bulk import (CSV and NDJSON, upsert by SKU, job progress, row errors) and catalog export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from product_support import (
    create_category,
    create_family,
    create_product,
    finished_import,
    random_gtin,
    unique,
)

from product_service.transfer.schemas import CSV_COLUMNS
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")

HEADER = ",".join(CSV_COLUMNS) + "\n"


async def _import(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, content: str, fmt: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/imports",
        params={"format": fmt},
        content=content.encode(),
        headers={
            **tokens.auth_header("products:write"),
            "Content-Type": "text/csv" if fmt == "csv" else "application/x-ndjson",
        },
    )
    assert response.status_code == 202, response.text
    return await finished_import(client, tokens, response.json()["id"])


async def _product_of(client: httpx.AsyncClient, tokens: TestTokenIssuer, sku: str) -> dict[str, Any]:
    page = (
        await client.get("/v1/search", params={"q": sku}, headers=tokens.auth_header("products:read"))
    ).json()
    assert len(page["items"]) == 1, page
    product_id = page["items"][0]["id"]
    result: dict[str, Any] = (
        await client.get(f"/v1/products/{product_id}", headers=tokens.auth_header("products:read"))
    ).json()
    return result


async def test_csv_import_creates_products(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    family = await create_family(client, token_issuer, [{"code": "material", "type": "text"}])
    category = await create_category(client, token_issuer, family_id=family["id"])
    sku_a, sku_b, gtin = unique("IMP-"), unique("IMP-"), random_gtin()
    content = HEADER + (
        f'{sku_a},,Linen shirt,Acme,Cool,{category["id"]},active,{gtin},"{{""material"": ""linen""}}",'
        f'"{{""size"": ""M""}}",https://img.example/a.jpg|https://img.example/b.jpg\n'
        f"{sku_b},,Plain mug,,,,,,,,\n"
    )
    job = await _import(client, token_issuer, content, "csv")
    assert (job["status"], job["rows_processed"], job["rows_created"], job["rows_failed"]) == (
        "succeeded",
        2,
        2,
        0,
    )
    product = await _product_of(client, token_issuer, sku_a)
    assert (product["title"], product["status"], product["attributes"]) == (
        "Linen shirt",
        "active",
        {"material": "linen"},
    )
    assert product["variants"] == [{"sku": sku_a, "gtin": gtin, "attributes": {"size": "M"}}]
    assert len(product["media_urls"]) == 2


async def test_import_upserts_by_sku(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    sku = unique("UPS-")
    existing = await create_product(client, token_issuer, skus=[sku], title="Old title", brand="Keep")
    line = json.dumps({"sku": sku, "title": "New title"})
    job = await _import(client, token_issuer, line + "\n", "ndjson")
    assert (job["rows_created"], job["rows_updated"]) == (0, 1)
    product = (
        await client.get(f"/v1/products/{existing['id']}", headers=token_issuer.auth_header("products:read"))
    ).json()
    assert (product["title"], product["brand"], product["version"]) == ("New title", "Keep", 2)


async def test_bad_rows_are_reported_and_write_nothing(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(client, token_issuer, [{"code": "pages", "type": "number"}])
    category = await create_category(client, token_issuer, family_id=family["id"])
    good, bad_gtin, bad_attr = unique("OK-"), unique("BG-"), unique("BA-")
    lines = [
        {"sku": good, "title": "Fine"},
        {"sku": bad_gtin, "title": "Bad GTIN", "gtin": "4006381333932"},
        {
            "sku": bad_attr,
            "title": "Bad attribute",
            "category_id": category["id"],
            "attributes": {"pages": "many"},
        },
        {"title": "No SKU"},
        {"sku": unique("NT-")},
    ]
    content = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    job = await _import(client, token_issuer, content, "ndjson")
    assert (job["rows_processed"], job["rows_created"], job["rows_failed"]) == (5, 1, 4)
    errors = (
        await client.get(f"/v1/imports/{job['id']}/errors", headers=token_issuer.auth_header("products:read"))
    ).json()["items"]
    assert [e["row_number"] for e in errors] == [2, 3, 4, 5]
    assert errors[0]["sku"] == bad_gtin
    assert "GTIN" in errors[0]["message"]
    found = await client.get(
        "/v1/search", params={"q": bad_attr}, headers=token_issuer.auth_header("products:read")
    )
    assert found.json()["items"] == []


async def test_a_key_given_twice_refuses_its_row_with_the_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """`{"title": "A", "title": "B"}` would silently keep "B": the row is refused, naming the key and
    its line, in NDJSON and in a CSV JSON cell alike; the other rows are imported."""
    good, twice, cell = unique("OK-"), unique("TW-"), unique("TC-")
    ndjson = "\n".join(
        [
            json.dumps({"sku": good, "title": "Fine"}),
            f'{{"sku": "{twice}", "title": "First", "title": "Second"}}',
        ]
    )
    csv_file = HEADER + f'{cell},,Cell,,,,,,"{{""colour"": ""red"", ""colour"": ""blue""}}",,\n'

    jobs = [await _import(client, token_issuer, ndjson + "\n", "ndjson")]
    jobs.append(await _import(client, token_issuer, csv_file, "csv"))

    assert [(j["rows_created"], j["rows_failed"]) for j in jobs] == [(1, 1), (0, 1)]
    headers = token_issuer.auth_header("products:read")
    errors = [
        (await client.get(f"/v1/imports/{job['id']}/errors", headers=headers)).json()["items"][0]
        for job in jobs
    ]
    assert errors[0]["row_number"] == 2
    assert "line 2" in errors[0]["message"]
    assert "'title'" in errors[0]["message"]
    assert "'attributes.colour'" in errors[1]["message"]
    for sku in (twice, cell):
        found = await client.get("/v1/search", params={"q": sku}, headers=headers)
        assert found.json()["items"] == []


async def test_duplicate_sku_within_a_file_is_refused_the_second_time(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("DUP-")
    content = HEADER + f"{sku},,First,,,,,,,,\n{sku},,Second,,,,,,,,\n"
    job = await _import(client, token_issuer, content, "csv")
    assert (job["rows_created"], job["rows_failed"]) == (1, 1)
    assert (await _product_of(client, token_issuer, sku))["title"] == "First"


async def test_import_needs_products_write(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.post(
        "/v1/imports", content=b"sku\n", headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 403


async def test_unknown_import_job_is_404(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.get("/v1/imports/nope", headers=token_issuer.auth_header("products:read"))
    assert response.status_code == 404


async def test_export_round_trips_through_import(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("EXP-")
    product = await create_product(client, token_issuer, skus=[sku], title="Exported", brand="B")
    headers = token_issuer.auth_header("products:read")
    exported_csv = await client.get("/v1/exports/products", params={"format": "csv"}, headers=headers)
    exported_ndjson = await client.get("/v1/exports/products", params={"format": "ndjson"}, headers=headers)
    assert exported_csv.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported_csv.text)))
    row = next(r for r in rows if r["sku"] == sku)
    assert (row["product_id"], row["title"], row["brand"]) == (product["id"], "Exported", "B")
    lines = [json.loads(line) for line in exported_ndjson.text.splitlines()]
    assert next(line for line in lines if line["sku"] == sku)["title"] == "Exported"
    job = await _import(client, token_issuer, exported_csv.text, "csv")
    assert job["rows_failed"] == 0
    assert job["rows_created"] == 0
