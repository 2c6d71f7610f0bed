"""Promotions can be listed, changed (If-Match) and ended; the effective price follows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from product_support import create_product, unique, walk_pages

from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _priced_sku(client: httpx.AsyncClient, tokens: TestTokenIssuer, amount: str) -> str:
    sku = unique("SKU-")
    await create_product(client, tokens, skus=[sku])
    response = await client.post(
        f"/v1/prices/{sku}",
        json={"currency": "EUR", "amount": amount},
        headers=tokens.auth_header("products:write"),
    )
    assert response.status_code == 201, response.text
    return sku


async def _promote(
    client: httpx.AsyncClient,
    tokens: TestTokenIssuer,
    sku: str,
    *,
    starts_in: timedelta = timedelta(minutes=-1),
) -> httpx.Response:
    now = datetime.now(UTC)
    body = {
        "title": "Sale",
        "kind": "percentage",
        "value": "10",
        "skus": [sku],
        "starts_at": (now + starts_in).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
    }
    response = await client.post("/v1/promotions", json=body, headers=tokens.auth_header("products:write"))
    assert response.status_code == 201, response.text
    return response


async def _effective(client: httpx.AsyncClient, tokens: TestTokenIssuer, sku: str) -> dict[str, Any]:
    response = await client.get(
        f"/v1/prices/{sku}/effective", params={"currency": "EUR"}, headers=tokens.auth_header("products:read")
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _write(tokens: TestTokenIssuer, etag: str | None = None) -> dict[str, str]:
    headers = tokens.auth_header("products:write")
    if etag is not None:
        headers["If-Match"] = etag
    return headers


async def test_promotions_are_listed_newest_first_and_by_status(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    running = [(await _promote(client, token_issuer, sku)).json()["id"] for _ in range(3)]
    scheduled = (await _promote(client, token_issuer, sku, starts_in=timedelta(hours=1))).json()["id"]
    read = token_issuer.auth_header("products:read")
    items, pages = await walk_pages(client, "/v1/promotions", read, limit=2)
    ids = [item["id"] for item in items]
    assert ids == sorted(ids, reverse=True)
    assert [i for i in ids if i in {*running, scheduled}] == [scheduled, *reversed(running)]
    assert pages >= 2
    running_now, _ = await walk_pages(client, "/v1/promotions", read, params={"status": "running"})
    assert set(running) <= {item["id"] for item in running_now}
    assert scheduled not in {item["id"] for item in running_now}
    assert all(item["status"] == "running" for item in running_now)


async def test_a_scheduled_promotion_changes_with_if_match_and_a_stale_one_gets_412(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    created = await _promote(client, token_issuer, sku, starts_in=timedelta(hours=1))
    promotion_id, etag = created.json()["id"], created.headers["ETag"]
    url = f"/v1/promotions/{promotion_id}"

    assert (await client.patch(url, json={"value": "20"}, headers=_write(token_issuer))).status_code == 428
    changed = await client.patch(
        url, json={"value": "20", "title": "Bigger"}, headers=_write(token_issuer, etag)
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["value"], changed.json()["title"]) == ("20.00", "Bigger")
    assert changed.headers["ETag"] != etag
    stale = await client.patch(url, json={"value": "30"}, headers=_write(token_issuer, etag))
    assert stale.status_code == 412, stale.text
    read = await client.get(url, headers=token_issuer.auth_header("products:read"))
    assert (read.json()["value"], read.headers["ETag"]) == ("20.00", changed.headers["ETag"])


async def test_two_concurrent_changes_of_one_version_let_exactly_one_win(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    created = await _promote(client, token_issuer, sku, starts_in=timedelta(hours=1))
    url, etag = f"/v1/promotions/{created.json()['id']}", created.headers["ETag"]
    answers = await asyncio.gather(
        *(
            client.patch(url, json={"value": str(value)}, headers=_write(token_issuer, etag))
            for value in (20, 30, 40, 50)
        )
    )
    assert sorted(answer.status_code for answer in answers) == [200, 412, 412, 412]


async def test_a_running_promotion_changes_only_its_title_and_end(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    created = await _promote(client, token_issuer, sku)
    url, etag = f"/v1/promotions/{created.json()['id']}", created.headers["ETag"]
    refused = await client.patch(url, json={"value": "50"}, headers=_write(token_issuer, etag))
    assert refused.status_code == 409, refused.text
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    extended = await client.patch(url, json={"ends_at": later}, headers=_write(token_issuer, etag))
    assert extended.status_code == 200, extended.text
    assert extended.json()["status"] == "running"
    assert datetime.fromisoformat(extended.json()["ends_at"]) == datetime.fromisoformat(later)


async def test_ending_a_running_promotion_restores_the_base_price(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    created = await _promote(client, token_issuer, sku)
    assert (await _effective(client, token_issuer, sku))["effective_amount"] == "9.00"
    url = f"/v1/promotions/{created.json()['id']}/end"
    ended = await client.post(url, headers=_write(token_issuer))
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    assert (await _effective(client, token_issuer, sku))["effective_amount"] == "10.00"
    assert (await client.post(url, headers=_write(token_issuer))).status_code == 409
    change = await client.patch(
        f"/v1/promotions/{created.json()['id']}",
        json={"title": "Too late"},
        headers=_write(token_issuer, ended.headers["ETag"]),
    )
    assert change.status_code == 409, change.text


async def test_ending_a_scheduled_promotion_cancels_it(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    created = await _promote(client, token_issuer, sku, starts_in=timedelta(seconds=1))
    ended = await client.post(f"/v1/promotions/{created.json()['id']}/end", headers=_write(token_issuer))
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    await asyncio.sleep(1.2)
    assert (await _effective(client, token_issuer, sku))["promotion_id"] is None


async def test_concurrent_ends_of_one_promotion_let_exactly_one_win(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    created = await _promote(client, token_issuer, sku)
    url = f"/v1/promotions/{created.json()['id']}/end"
    answers = await asyncio.gather(*(client.post(url, headers=_write(token_issuer)) for _ in range(5)))
    assert sorted(answer.status_code for answer in answers) == [200, 409, 409, 409, 409]


async def test_changing_a_scheduled_promotion_to_an_unknown_sku_or_category_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    created = await _promote(client, token_issuer, sku, starts_in=timedelta(hours=1))
    url = f"/v1/promotions/{created.json()['id']}"
    for change in ({"skus": [sku, "NO-SUCH-SKU"]}, {"category_ids": ["no-such-category"]}):
        response = await client.patch(url, json=change, headers=_write(token_issuer, created.headers["etag"]))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "unknown" in response.json()["detail"]
    unchanged = await client.get(url, headers=token_issuer.auth_header("products:read"))
    assert unchanged.json()["skus"] == [sku]
    assert unchanged.headers["etag"] == created.headers["etag"]
