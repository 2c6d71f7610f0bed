"""Import jobs: the jobs list (newest first, status filter, cursor pagination) and imports larger than
one batch (batches written in file order, upserts across batches, one event per product)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from product_support import create_product, finished_import, random_gtin, unique, wait_for_events

from contracts.topics import PRODUCTS
from product_service.transfer.service import BATCH_SIZE
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _start(client: httpx.AsyncClient, tokens: TestTokenIssuer, lines: list[Any]) -> str:
    content = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    response = await client.post(
        "/v1/imports",
        params={"format": "ndjson"},
        content=content.encode(),
        headers={**tokens.auth_header("products:write"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def _import(client: httpx.AsyncClient, tokens: TestTokenIssuer, lines: list[Any]) -> dict[str, Any]:
    return await finished_import(client, tokens, await _start(client, tokens, lines))


async def _all_jobs(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every job the list returns, following next_cursor; and how many pages that took."""
    jobs: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/imports", params=query, headers=tokens.auth_header("products:read"))
        assert response.status_code == 200, response.text
        body = response.json()
        jobs += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return jobs, pages


async def test_jobs_are_listed_newest_first_with_progress(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    first = await _import(client, token_issuer, [{"sku": unique("JL-"), "title": "First"}])
    second = await _import(
        client, token_issuer, [{"sku": unique("JL-"), "title": "Second"}, {"title": "No SKU"}]
    )
    jobs, _ = await _all_jobs(client, token_issuer)
    ours = [job for job in jobs if job["id"] in (first["id"], second["id"])]
    assert [job["id"] for job in ours] == [second["id"], first["id"]]
    assert (
        ours[0]["status"],
        ours[0]["rows_processed"],
        ours[0]["rows_created"],
        ours[0]["rows_failed"],
    ) == (
        "succeeded",
        2,
        1,
        1,
    )
    assert ours[0]["actor"] == ours[1]["actor"] != ""


async def test_jobs_list_pages_with_a_cursor(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    created = [
        (await _import(client, token_issuer, [{"sku": unique("JP-"), "title": "T"}]))["id"] for _ in range(3)
    ]
    jobs, pages = await _all_jobs(client, token_issuer, limit=1)
    ids = [job["id"] for job in jobs]
    assert len(ids) == len(set(ids))
    assert pages == len(ids)
    assert [job_id for job_id in ids if job_id in created] == list(reversed(created))


async def test_jobs_list_filters_by_status(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    job = await _import(client, token_issuer, [{"sku": unique("JS-"), "title": "T"}])
    succeeded, _ = await _all_jobs(client, token_issuer, status="succeeded")
    failed, _ = await _all_jobs(client, token_issuer, status="failed")
    assert job["id"] in [j["id"] for j in succeeded]
    assert job["id"] not in [j["id"] for j in failed]
    assert {j["status"] for j in succeeded} == {"succeeded"}


async def test_jobs_list_refuses_an_unknown_status(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get(
        "/v1/imports", params={"status": "done"}, headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_jobs_list_refuses_a_bad_cursor(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get(
        "/v1/imports", params={"cursor": "not-a-cursor"}, headers=token_issuer.auth_header("products:read")
    )
    assert response.status_code == 400


async def test_jobs_list_needs_products_read(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get("/v1/imports", headers=token_issuer.auth_header("inventory:write"))
    assert response.status_code == 403


async def test_import_larger_than_a_batch_upserts_across_batches(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    prefix = unique("BIG-")
    count = BATCH_SIZE * 2 + 10
    lines: list[Any] = [{"sku": f"{prefix}-n{n}", "title": f"Item {n}"} for n in range(count)]
    first = f"{prefix}-first"
    lines[0] = {"sku": first, "title": "Item 0"}
    # the first row again in the second and third batches: updates of a product the file created
    lines[BATCH_SIZE + 1] = {"sku": first, "title": "Renamed once"}
    lines[BATCH_SIZE * 2 + 1] = {"sku": first, "title": "Renamed twice"}
    lines[BATCH_SIZE * 2 + 2] = {"sku": f"{prefix}-bad"}  # no title: refused, writes nothing
    job = await _import(client, token_issuer, lines)
    assert (
        job["status"],
        job["rows_processed"],
        job["rows_created"],
        job["rows_updated"],
        job["rows_failed"],
    ) == ("succeeded", count, count - 3, 2, 1)
    headers = token_issuer.auth_header("products:read")
    errors = (await client.get(f"/v1/imports/{job['id']}/errors", headers=headers)).json()["items"]
    assert [(e["row_number"], e["sku"]) for e in errors] == [(BATCH_SIZE * 2 + 3, f"{prefix}-bad")]
    found = (await client.get("/v1/search", params={"q": first}, headers=headers)).json()["items"]
    assert len(found) == 1
    product = (await client.get(f"/v1/products/{found[0]['id']}", headers=headers)).json()
    assert (product["title"], product["version"]) == ("Renamed twice", 3)
    last = (await client.get("/v1/search", params={"q": f"{prefix}-n{count - 1}"}, headers=headers)).json()
    assert [item["title"] for item in last["items"]] == [f"Item {count - 1}"]


async def test_import_emits_one_event_per_created_or_updated_product(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    new_sku, updated_sku = unique("EV-"), unique("EV-")
    await _import(client, token_issuer, [{"sku": updated_sku, "title": "Before"}])
    await _import(
        client,
        token_issuer,
        [{"sku": new_sku, "title": "New"}, {"sku": updated_sku, "title": "After"}],
    )
    events = await wait_for_events(
        kafka_bootstrap,
        PRODUCTS,
        lambda e: bool({new_sku, updated_sku} & set(e.data.get("skus", []))),
        count=3,
    )
    kinds = sorted((event.type, event.data["skus"][0], event.sequence) for event in events)
    assert kinds == sorted(
        [
            ("ecom.product.created.v1", updated_sku, 1),
            ("ecom.product.created.v1", new_sku, 1),
            ("ecom.product.updated.v1", updated_sku, 2),
        ]
    )
    updated = next(event for event in events if event.type == "ecom.product.updated.v1")
    assert updated.data["changed_fields"] == ["title"]


async def test_import_updates_variants_and_adds_them_to_existing_products(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku_a, sku_b, added = unique("UV-"), unique("UV-"), unique("UV-")
    product = await create_product(client, token_issuer, skus=[sku_a, sku_b], title="Two variants")
    gtin = random_gtin()
    job = await _import(
        client,
        token_issuer,
        [
            {"sku": sku_a, "gtin": gtin, "variant_attributes": {"size": "L"}},
            {"sku": sku_b, "title": "Renamed"},
            {"sku": added, "product_id": product["id"], "variant_attributes": {"size": "XL"}},
        ],
    )
    assert (job["rows_created"], job["rows_updated"], job["rows_failed"]) == (0, 3, 0)
    headers = token_issuer.auth_header("products:read")
    current = (await client.get(f"/v1/products/{product['id']}", headers=headers)).json()
    assert (current["title"], current["version"]) == ("Renamed", 4)
    by_sku = {variant["sku"]: variant for variant in current["variants"]}
    assert (by_sku[sku_a]["gtin"], by_sku[sku_a]["attributes"]) == (gtin, {"size": "L"})
    assert by_sku[added]["attributes"] == {"size": "XL"}
    found = (await client.get("/v1/search", params={"q": added}, headers=headers)).json()["items"]
    assert [item["id"] for item in found] == [product["id"]]
    events = await wait_for_events(
        kafka_bootstrap,
        PRODUCTS,
        lambda e: e.subject == product["id"] and e.type == "ecom.product.updated.v1",
        count=3,
    )
    assert [(e.sequence, e.data["changed_fields"], e.data["skus"]) for e in events] == [
        (2, ["variants"], sorted([sku_a, sku_b])),
        (3, ["title"], sorted([sku_a, sku_b])),
        (4, ["variants"], sorted([sku_a, sku_b, added])),
    ]
