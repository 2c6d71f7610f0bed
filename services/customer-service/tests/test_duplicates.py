"""Duplicates and merge through the HTTP API: candidates with evidence, merge, undo, auto-merge, events."""

import asyncio
import random
from typing import Any

import httpx
import pytest
from customer_helpers import (
    address,
    create_customer,
    duplicate_candidates,
    events_about,
    likely_pair,
    new_phone,
    surname,
)

from contracts import topics, uuid7
from customer_service.duplicates import service as duplicates
from servicekit.testing import TestTokenIssuer

PII = ("customers:read", "customers:write", "customers:pii", "orders:write")


async def _get(client: httpx.AsyncClient, tokens: TestTokenIssuer, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}", headers=tokens.auth_header(*PII))
    result: dict[str, Any] = response.json()
    return result


async def _merge(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, survivor: str, other: str
) -> httpx.Response:
    return await client.post(
        f"/v1/customers/{survivor}/merge", json={"customer_ids": [other]}, headers=tokens.auth_header(*PII)
    )


async def test_likely_duplicates_are_listed_with_per_field_evidence(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)

    (pair,) = await duplicate_candidates(client, token_issuer, b["id"])

    assert {pair["customer_a_id"], pair["customer_b_id"]} == {a["id"], b["id"]}
    assert 0.8 <= pair["score"] < 0.999
    assert pair["evidence"]["last_name"] > 0
    assert pair["evidence"]["locality"] > 0
    assert pair["evidence"]["email"] < 0
    assert "phone" not in pair["evidence"]


async def test_different_people_sharing_a_household_are_not_candidates(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    last, phone = surname(), new_phone()
    await create_customer(
        client,
        token_issuer,
        first_name="Alice",
        last_name=last,
        phones=[{"number": phone}],
        addresses=[address()],
    )
    bob = await create_customer(
        client,
        token_issuer,
        first_name="Bob",
        last_name=last,
        phones=[{"number": phone}],
        addresses=[address()],
    )

    assert await duplicate_candidates(client, token_issuer, bob["id"]) == []


async def test_open_duplicate_lowers_the_quality_score(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, _ = await likely_pair(client, token_issuer)

    profile = await _get(client, token_issuer, a["id"])

    assert profile["quality"]["no_open_duplicate"] is False


async def test_merge_unions_contacts_and_moves_orders(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)
    order = await client.post(
        "/v1/orders",
        json={
            "order_number": f"M-{b['id']}",
            "customer_id": b["id"],
            "channel": "web",
            "currency": "EUR",
            "lines": [{"sku": "X", "quantity": 1, "unit_price": "10", "currency": "EUR"}],
        },
        headers=token_issuer.auth_header(*PII),
    )

    response = await _merge(client, token_issuer, a["id"], b["id"])

    assert response.status_code == 201, response.text
    survivor, merged = await _get(client, token_issuer, a["id"]), await _get(client, token_issuer, b["id"])
    assert {e["address"] for e in survivor["emails"]} == {
        a["emails"][0]["address"],
        b["emails"][0]["address"],
    }
    assert len(survivor["addresses"]) == 2
    assert (merged["status"], merged["merged_into_id"]) == ("merged", a["id"])
    history = await client.get(f"/v1/customers/{a['id']}/orders", headers=token_issuer.auth_header(*PII))
    assert [o["id"] for o in history.json()["items"]] == [order.json()["id"]]
    assert survivor["quality"]["no_open_duplicate"] is True


async def test_identify_finds_the_survivor_by_a_merged_email(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)
    await _merge(client, token_issuer, a["id"], b["id"])

    response = await client.post(
        "/v1/customers/identify",
        json={"email": b["emails"][0]["address"]},
        headers=token_issuer.auth_header(*PII),
    )

    assert response.json()["customer"]["id"] == a["id"]


async def test_undo_restores_both_profiles(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    a, b = await likely_pair(client, token_issuer)
    merge = (await _merge(client, token_issuer, a["id"], b["id"])).json()

    response = await client.post(f"/v1/merges/{merge['id']}/undo", headers=token_issuer.auth_header(*PII))

    assert response.status_code == 200
    assert response.json()["undone_at"] is not None
    survivor, restored = await _get(client, token_issuer, a["id"]), await _get(client, token_issuer, b["id"])
    assert [e["address"] for e in survivor["emails"]] == [a["emails"][0]["address"]]
    assert restored["status"] == "active"
    assert [e["address"] for e in restored["emails"]] == [b["emails"][0]["address"]]
    identified = await client.post(
        "/v1/customers/identify",
        json={"email": b["emails"][0]["address"]},
        headers=token_issuer.auth_header(*PII),
    )
    assert identified.json()["customer"]["id"] == b["id"]


async def test_undo_after_the_survivor_changed_gets_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)
    merge = (await _merge(client, token_issuer, a["id"], b["id"])).json()
    current = await client.get(f"/v1/customers/{a['id']}", headers=token_issuer.auth_header(*PII))
    await client.patch(
        f"/v1/customers/{a['id']}",
        json={"locale": "fr-FR"},
        headers={**token_issuer.auth_header(*PII), "If-Match": current.headers["ETag"]},
    )

    response = await client.post(f"/v1/merges/{merge['id']}/undo", headers=token_issuer.auth_header(*PII))

    assert response.status_code == 409


async def test_merging_an_already_merged_profile_gets_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)
    await _merge(client, token_issuer, a["id"], b["id"])

    response = await _merge(client, token_issuer, a["id"], b["id"])

    assert response.status_code == 409


async def test_merge_with_unknown_customer_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a = await create_customer(client, token_issuer)

    response = await _merge(client, token_issuer, a["id"], "nobody")

    assert response.status_code == 422


async def test_near_identical_profile_is_merged_automatically(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    last, phone = surname(), new_phone()
    first = await create_customer(
        client,
        token_issuer,
        first_name="Maria",
        last_name=last,
        birthday="1980-02-03",
        emails=[{"address": f"maria.{last.lower()}@example.com"}],
        phones=[{"number": phone}],
        addresses=[address()],
    )

    second = await create_customer(
        client,
        token_issuer,
        first_name="Maria",
        last_name=last,
        birthday="1980-02-03",
        emails=[{"address": f"maria.{last.lower()}@exmaple.com"}],
        phones=[{"number": phone}],
        addresses=[address()],
    )

    assert (second["status"], second["merged_into_id"]) == ("merged", first["id"])
    events = await events_about(kafka_bootstrap, topics.CUSTOMERS, first["id"], ["ecom.customer.merged.v1"])
    (merged,) = [e for e in events if e.type == "ecom.customer.merged.v1"]
    assert merged.data["automatic"] is True
    assert merged.data["merged_customer_ids"] == [second["id"]]


async def test_undo_emits_an_unmerged_event(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    a, b = await likely_pair(client, token_issuer)
    merge = (await _merge(client, token_issuer, a["id"], b["id"])).json()
    await client.post(f"/v1/merges/{merge['id']}/undo", headers=token_issuer.auth_header(*PII))

    events = await events_about(
        kafka_bootstrap, topics.CUSTOMERS, a["id"], ["ecom.customer.merged.v1", "ecom.customer.unmerged.v1"]
    )

    (unmerged,) = [e for e in events if e.type == "ecom.customer.unmerged.v1"]
    assert unmerged.data["restored_customer_ids"] == [b["id"]]


async def test_dismissed_pair_is_not_listed_again(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    _, b = await likely_pair(client, token_issuer)
    (pair,) = await duplicate_candidates(client, token_issuer, b["id"])

    await client.post(f"/v1/duplicates/{pair['id']}/dismiss", headers=token_issuer.auth_header(*PII))

    assert await duplicate_candidates(client, token_issuer, b["id"]) == []


async def _pairs(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, customer_id: str, status: str
) -> list[str]:
    response = await client.get(
        "/v1/duplicates",
        params={"status": status, "customer_id": customer_id},
        headers=tokens.auth_header("customers:read"),
    )
    return [pair["id"] for pair in response.json()["items"]]


async def test_dismissing_a_merged_pair_gets_409_and_it_stays_merged(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)
    (pair,) = await duplicate_candidates(client, token_issuer, b["id"])
    assert (await _merge(client, token_issuer, a["id"], b["id"])).status_code == 201

    response = await client.post(
        f"/v1/duplicates/{pair['id']}/dismiss", headers=token_issuer.auth_header(*PII)
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert await _pairs(client, token_issuer, b["id"], "merged") == [pair["id"]]
    assert await _pairs(client, token_issuer, b["id"], "dismissed") == []


async def test_dismisses_racing_a_merge_leave_the_pair_as_the_winner_left_it(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Four dismisses and a merge of the pair at once: if the merge went first every dismiss is 409 and the
    pair stays merged; otherwise the dismisses are 200 (a repeat is a no-op) and the merge, a person's
    explicit decision, still merges. Never a merged pair marked dismissed after the fact."""
    a, b = await likely_pair(client, token_issuer)
    (pair,) = await duplicate_candidates(client, token_issuer, b["id"])
    dismiss = f"/v1/duplicates/{pair['id']}/dismiss"

    merge, *dismisses = await asyncio.gather(
        _merge(client, token_issuer, a["id"], b["id"]),
        *(client.post(dismiss, headers=token_issuer.auth_header(*PII)) for _ in range(4)),
    )

    assert merge.status_code == 201
    codes = {r.status_code for r in dismisses}
    status = "merged" if codes == {409} else "dismissed"
    assert codes in ({409}, {200})
    assert await _pairs(client, token_issuer, b["id"], status) == [pair["id"]]


async def test_two_concurrent_merges_of_the_same_profiles_one_wins(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)

    responses = await asyncio.gather(
        _merge(client, token_issuer, a["id"], b["id"]),
        _merge(client, token_issuer, b["id"], a["id"]),
        _merge(client, token_issuer, a["id"], b["id"]),
    )

    assert sorted(r.status_code for r in responses) == [201, 409, 409]
    winner = next(r.json() for r in responses if r.status_code == 201)
    survivor = await _get(client, token_issuer, winner["survivor_id"])
    merged = await _get(client, token_issuer, winner["merged_ids"][0])
    assert (survivor["status"], merged["status"]) == ("active", "merged")
    assert merged["merged_into_id"] == survivor["id"]


async def test_two_concurrent_undos_of_one_merge_one_wins(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    a, b = await likely_pair(client, token_issuer)
    merge = (await _merge(client, token_issuer, a["id"], b["id"])).json()

    responses = await asyncio.gather(
        *(
            client.post(f"/v1/merges/{merge['id']}/undo", headers=token_issuer.auth_header(*PII))
            for _ in range(3)
        )
    )

    assert sorted(r.status_code for r in responses) == [200, 409, 409]
    assert (await _get(client, token_issuer, b["id"]))["status"] == "active"


async def test_three_records_of_one_person_are_one_cluster_merged_and_undone_at_once(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    last = surname()
    where = {"kind": "shipping", "city": "Lyon", "postcode": "69004", "country": "FR"}
    ids = [
        (await create_customer(client, token_issuer, first_name=first, last_name=last, addresses=[where]))[
            "id"
        ]
        for first in ("Christabel", "Christabell", "Cristabel")
    ]

    cluster = await client.get(
        f"/v1/customers/{ids[2]}/duplicate-cluster", headers=token_issuer.auth_header(*PII)
    )
    members = cluster.json()["customer_ids"]
    merge = await _merge_all(client, token_issuer, ids[0], ids[1:])
    after_merge = [(await _get(client, token_issuer, i))["status"] for i in ids]
    undo = await client.post(f"/v1/merges/{merge.json()['id']}/undo", headers=token_issuer.auth_header(*PII))
    after_undo = [(await _get(client, token_issuer, i))["status"] for i in ids]

    assert cluster.status_code == 200
    assert sorted(members) == sorted(ids)
    assert len(cluster.json()["pairs"]) >= 2
    assert merge.status_code == 201
    assert sorted(merge.json()["merged_ids"]) == sorted(ids[1:])
    assert after_merge == ["active", "merged", "merged"]
    assert undo.status_code == 200
    assert after_undo == ["active", "active", "active"]


async def _merge_all(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, survivor: str, others: list[str]
) -> httpx.Response:
    return await client.post(
        f"/v1/customers/{survivor}/merge", json={"customer_ids": others}, headers=tokens.auth_header(*PII)
    )


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 70, 499, 500, 501, 1_200])
def test_picked_candidates_are_the_most_recent_of_each_kind_in_order(size: int) -> None:
    # pick_candidates sorts small sets and uses heapq.nlargest on large ones (SORT_ALL_UP_TO): either
    # way, the most recent MAX_BLOCK_CANDIDATES sharing a specific key, then the most recent
    # MAX_PHONETIC_CANDIDATES sharing a broad one that are not picked already, largest id first.
    rng = random.Random(size)
    ids = [str(uuid7()) for _ in range(size * 2 + 5)]
    strong = set(rng.sample(ids, size))
    broad = set(rng.sample(ids, size))
    exclude = set(rng.sample(ids, min(3, len(ids))))
    expected = sorted(strong - exclude, reverse=True)[: duplicates.MAX_BLOCK_CANDIDATES]
    expected += [
        cid
        for cid in sorted(broad - exclude, reverse=True)[: duplicates.MAX_PHONETIC_CANDIDATES]
        if cid not in expected
    ]
    assert duplicates.pick_candidates(strong, broad, exclude) == expected
