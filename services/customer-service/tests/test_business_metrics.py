"""Business metrics on /metrics: customers, open duplicates, merges, quality, risk flags, orders and
revenue by channel, import rows; each with the right value after the action that changes it."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from customer_helpers import create_customer, likely_pair, new_email, run_import, unique
from prometheus_client.parser import text_string_to_metric_families

from servicekit.testing import ServiceUnderTest, TestTokenIssuer, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS

PII = ("customers:read", "customers:write", "customers:pii", "orders:write")


@pytest.fixture
async def client(
    service: ServiceUnderTest, database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The service on this module's own database, its database figures recomputed at every scrape."""
    settings = service.settings_class(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
        metrics_refresh_seconds=0,
    )
    async with running_app(service.create_app(settings), token_issuer) as http:
        yield http


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _order(client: httpx.AsyncClient, tokens: TestTokenIssuer, customer_id: str, **fields: Any) -> None:
    body = {
        "order_number": f"M-{unique()}",
        "customer_id": customer_id,
        "channel": "pos",
        "currency": "EUR",
        "lines": [{"sku": "A", "quantity": 2, "unit_price": "12.50", "currency": "EUR"}],
        **fields,
    }
    response = await client.post("/v1/orders", json=body, headers=tokens.auth_header(*PII))
    assert response.status_code == 201, response.text


async def test_customers_quality_merges_and_duplicates(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    assert value(await scrape(client), "customers", status="active") == 0
    a, b = await likely_pair(client, token_issuer)
    c = await create_customer(client, token_issuer)
    samples = await scrape(client)
    assert value(samples, "customers", status="active") == 3
    scores = [
        (await client.get(f"/v1/customers/{x['id']}", headers=token_issuer.auth_header(*PII))).json()[
            "quality_score"
        ]
        for x in (a, b, c)
    ]
    expected_quality = sum(scores) / 3
    assert value(samples, "customer_quality_score_average") == pytest.approx(expected_quality)
    duplicates = await client.get(
        "/v1/duplicates", params={"status": "open"}, headers=token_issuer.auth_header(*PII)
    )
    open_pairs = len(duplicates.json()["items"])
    assert open_pairs >= 1
    assert value(samples, "customer_duplicates_open") == open_pairs

    merged = await client.post(
        f"/v1/customers/{a['id']}/merge",
        json={"customer_ids": [c["id"]]},
        headers=token_issuer.auth_header(*PII),
    )
    assert merged.status_code == 201, merged.text
    samples = await scrape(client)
    assert value(samples, "customer_merges", kind="manual") == 1
    assert value(samples, "customer_merges", kind="automatic") == 0
    assert (value(samples, "customers", status="active"), value(samples, "customers", status="merged")) == (
        2,
        1,
    )

    undone = await client.post(
        f"/v1/merges/{merged.json()['id']}/undo", headers=token_issuer.auth_header(*PII)
    )
    assert undone.status_code == 200, undone.text
    assert value(await scrape(client), "customer_merges", kind="manual") == 0


async def test_orders_revenue_and_risk_flags(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    before = await scrape(client)
    customer = await create_customer(client, token_issuer)
    await _order(client, token_issuer, customer["id"])
    await _order(client, token_issuer, customer["id"], billing_country="FR", shipping_country="NG")
    after = await scrape(client)

    assert value(after, "orders_total", channel="pos") - value(before, "orders_total", channel="pos") == 2
    revenue = ("order_revenue_total", {"channel": "pos", "currency": "EUR"})
    assert value(after, revenue[0], **revenue[1]) - value(before, revenue[0], **revenue[1]) == 50.0
    assert value(after, "customer_risk_flags_open", rule="country_mismatch") == (
        value(before, "customer_risk_flags_open", rule="country_mismatch") + 1
    )


async def test_a_replayed_order_is_not_counted_twice(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    body = {
        "order_number": f"M-{unique()}",
        "customer_id": customer["id"],
        "channel": "marketplace",
        "currency": "EUR",
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "5", "currency": "EUR"}],
    }
    before = value(await scrape(client), "orders_total", channel="marketplace")
    for _ in range(2):
        response = await client.post("/v1/orders", json=body, headers=token_issuer.auth_header(*PII))
        assert response.status_code in (200, 201), response.text
    assert value(await scrape(client), "orders_total", channel="marketplace") - before == 1


async def test_import_rows_processed_and_failed(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    header = "first_name,last_name,email,country\n"
    before = await scrape(client)
    good = f"Ana,Lopez,{new_email()},ES\nBen,Okafor,{new_email()},GB\nCy,Ng,{new_email()},FR\n"
    assert (await run_import(client, token_issuer, (header + good).encode(), "ok.csv"))[
        "status"
    ] == "succeeded"
    bad = f"Di,Ok,{new_email()},FR\nBad,Email,not-an-email,FR\n"
    assert (await run_import(client, token_issuer, (header + bad).encode(), "bad.csv"))["status"] == "failed"
    after = await scrape(client)

    processed = "customer_import_rows_processed_total"
    failed = "customer_import_rows_failed_total"
    assert value(after, processed) - value(before, processed) == 3
    assert value(after, failed) - value(before, failed) == 2
