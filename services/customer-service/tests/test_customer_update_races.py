"""Concurrent updates of one profile with the same If-Match: exactly one is applied, the others get 412
(a compare-and-set on the version read, not a read-check-write that lets several overwrite each other)."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from customer_helpers import create_customer, new_email

from customer_service.config import Settings
from customer_service.consent import service as consent
from customer_service.consent.schemas import ConsentChange
from customer_service.context import CustomerContext
from customer_service.customers import service
from customer_service.customers.schemas import CustomerUpdate
from servicekit.db import Database
from servicekit.errors import PreconditionFailed
from servicekit.testing import TestTokenIssuer

RACERS = 8
PII = ("customers:read", "customers:pii")


@pytest.fixture
async def direct(database_url: str) -> AsyncIterator[tuple[CustomerContext, Database]]:
    """The service's context and a database of its own on the client's database, to run two
    transactions in a chosen interleaving."""
    context = CustomerContext.from_settings(Settings(database_url=database_url, kafka_enabled=False))
    database = Database(database_url)
    yield context, database
    await database.dispose()


async def test_concurrent_patches_with_one_etag_apply_once(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    headers = {**token_issuer.auth_header("customers:write", *PII), "If-Match": '"1"'}

    emails = [new_email() for _ in range(RACERS)]

    async def patch(n: int) -> httpx.Response:
        body = {"last_name": f"Racer{n}", "emails": [{"address": emails[n]}]}
        return await client.patch(f"/v1/customers/{customer['id']}", json=body, headers=headers)

    responses = await asyncio.gather(*(patch(n) for n in range(RACERS)))

    assert sorted(r.status_code for r in responses) == [200] + [412] * (RACERS - 1)
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert winner["version"] == 2
    now = await client.get(f"/v1/customers/{customer['id']}", headers=token_issuer.auth_header(*PII))
    assert now.headers["etag"] == '"2"'
    stored = now.json()
    assert (stored["last_name"], stored["emails"], stored["version"]) == (
        winner["last_name"],
        winner["emails"],
        2,
    )
    # Only the winner's email finds the customer: a loser's update left nothing behind.
    for n, response in enumerate(responses):
        found = await client.get(
            "/v1/customers", params={"email": emails[n]}, headers=token_issuer.auth_header(*PII)
        )
        assert [c["id"] for c in found.json()["items"]] == (
            [customer["id"]] if response.status_code == 200 else []
        )
        if response.status_code == 412:
            assert "changed" in response.json()["detail"]


async def test_patches_with_successive_etags_all_apply_in_turn(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """The compare-and-set refuses only stale writes: updates that each send the ETag of the one before
    are all applied."""
    customer = await create_customer(client, token_issuer)
    for version in range(1, 5):
        response = await client.patch(
            f"/v1/customers/{customer['id']}",
            json={"last_name": f"Step{version}"},
            headers={**token_issuer.auth_header("customers:write", *PII), "If-Match": f'"{version}"'},
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version + 1


async def test_an_update_read_before_another_committed_is_refused(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, direct: tuple[CustomerContext, Database]
) -> None:
    """The interleaving made certain: two transactions read the profile at version 1 and pass If-Match
    "1"; the first commits; the second's write is refused (412) and changes nothing."""
    customer = await create_customer(client, token_issuer)
    context, database = direct
    async with database.sessionmaker() as first, database.sessionmaker() as second:
        mine = await service.get(first, customer_id=customer["id"])
        theirs = await service.get(second, customer_id=customer["id"])
        await service.update(
            first, context, customer=mine, changes=CustomerUpdate(last_name="First"), expected='"1"'
        )
        await first.commit()
        with pytest.raises(PreconditionFailed):
            await service.update(
                second,
                context,
                customer=theirs,
                changes=CustomerUpdate(last_name="Second"),
                expected='"1"',
            )
        await second.rollback()
    async with database.sessionmaker() as session:
        stored = await service.get(session, customer_id=customer["id"])
        assert (stored.last_name, stored.version) == ("First", 2)


async def test_consents_recorded_by_transactions_that_read_the_same_profile_are_all_kept(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, direct: tuple[CustomerContext, Database]
) -> None:
    """Two consent changes of different purposes whose transactions read the profile before either
    committed: the current state keeps both (the second re-reads the profile under its lock), and the
    version moves once per change of state."""
    customer = await create_customer(client, token_issuer)
    context, database = direct
    async with database.sessionmaker() as first, database.sessionmaker() as second:
        mine = await service.get(first, customer_id=customer["id"])
        theirs = await service.get(second, customer_id=customer["id"])
        grant = {"status": "granted", "source": "web", "lawful_basis": "consent"}
        await consent.record(first, context, customer=mine, change=ConsentChange(purpose="sms", **grant))
        await first.commit()
        await consent.record(
            second, context, customer=theirs, change=ConsentChange(purpose="email_marketing", **grant)
        )
        await second.commit()
    async with database.sessionmaker() as session:
        stored = await service.get(session, customer_id=customer["id"])
        assert sorted(stored.consents) == ["email_marketing", "sms"]
        assert stored.version == 3
