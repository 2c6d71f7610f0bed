"""Merges can be listed (an automatic one included), so that any merge can be found and undone."""

import random
import string
from typing import Any

import httpx
from customer_helpers import create_customer, new_phone

from servicekit.testing import TestTokenIssuer

PII = ("customers:read", "customers:write", "customers:pii")


def _surname() -> str:
    return "Merge" + "".join(random.choices(string.ascii_lowercase, k=8))


def _address() -> dict[str, Any]:
    return {
        "kind": "shipping",
        "line1": "12 Rue Victor Hugo",
        "city": "Lyon",
        "postcode": "69002",
        "country": "FR",
    }


async def _merges(client: httpx.AsyncClient, tokens: TestTokenIssuer, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/merges", params=params, headers=tokens.auth_header("customers:read"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_an_automatic_merge_is_listed_and_can_be_undone(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    last, phone = _surname(), new_phone()
    profile = {
        "first_name": "Maria",
        "last_name": last,
        "birthday": "1980-02-03",
        "phones": [{"number": phone}],
        "addresses": [_address()],
    }
    first = await create_customer(
        client, token_issuer, **profile, emails=[{"address": f"maria.{last.lower()}@example.com"}]
    )
    second = await create_customer(
        client, token_issuer, **profile, emails=[{"address": f"maria.{last.lower()}@exmaple.com"}]
    )
    assert second["merged_into_id"] == first["id"]

    (merge,) = (await _merges(client, token_issuer, survivor_id=first["id"], automatic="true"))["items"]
    assert (merge["automatic"], merge["merged_ids"], merge["undone_at"]) == (True, [second["id"]], None)
    assert (await _merges(client, token_issuer, survivor_id=first["id"], automatic="false"))["items"] == []

    undone = await client.post(f"/v1/merges/{merge['id']}/undo", headers=token_issuer.auth_header(*PII))
    assert undone.status_code == 200, undone.text
    (listed,) = (await _merges(client, token_issuer, survivor_id=first["id"]))["items"]
    assert listed["undone_at"] is not None


async def test_merges_are_paged_newest_first(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    survivor = await create_customer(client, token_issuer)
    made = []
    for _ in range(3):
        other = await create_customer(client, token_issuer)
        response = await client.post(
            f"/v1/customers/{survivor['id']}/merge",
            json={"customer_ids": [other["id"]]},
            headers=token_issuer.auth_header(*PII),
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])

    first = await _merges(client, token_issuer, survivor_id=survivor["id"], limit=2)
    second = await _merges(
        client, token_issuer, survivor_id=survivor["id"], limit=2, cursor=first["next_cursor"]
    )

    assert [m["id"] for m in first["items"] + second["items"]] == list(reversed(made))
    assert second["next_cursor"] is None
    assert all(m["automatic"] is False for m in first["items"])
