"""Marketing spend by JSON and CSV, and expenses: recorded, replaced per key, bad input refused whole."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from analytics_support import unique
from conftest import settings_for

from analytics_service.main import create_app
from servicekit.testing import TestTokenIssuer, running_app


async def test_spend_is_recorded_and_a_later_entry_for_the_same_key_replaces_it(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    writer, reader = token_issuer.auth_header("analytics:write"), token_issuer.auth_header("analytics:read")
    channel = unique("paid")
    entries = [
        {"day": "2026-05-01", "channel": channel, "campaign": "may", "amount": "100.00", "currency": "EUR"},
        {"day": "2026-05-02", "channel": channel, "amount": "20.50", "currency": "EUR"},
    ]
    assert (await client.post("/v1/spend", json={"entries": entries}, headers=writer)).json() == {
        "recorded": 2
    }
    again = [
        {"day": "2026-05-01", "channel": channel, "campaign": "may", "amount": "80.00", "currency": "EUR"}
    ]
    assert (await client.post("/v1/spend", json={"entries": again}, headers=writer)).status_code == 200
    listed = await client.get(
        "/v1/spend", params={"start": "2026-05-01", "end": "2026-05-31", "channel": channel}, headers=reader
    )
    assert [(s["day"], s["campaign"], s["amount"]) for s in listed.json()] == [
        ("2026-05-01", "may", 80.0),
        ("2026-05-02", "", 20.5),
    ]


async def test_spend_is_found_by_its_channel_in_any_letter_case(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Spend of `Google` is stored as `google`; `GET /v1/spend?channel=Google` compared the filter as typed
    and found nothing."""
    writer, reader = token_issuer.auth_header("analytics:write"), token_issuer.auth_header("analytics:read")
    channel = unique("Paid")
    entry = {"day": "2026-05-10", "channel": channel.upper(), "amount": "42.00", "currency": "EUR"}
    assert (await client.post("/v1/spend", json={"entries": [entry]}, headers=writer)).status_code == 200

    found = {
        name: await client.get(
            "/v1/spend", params={"start": "2026-05-10", "end": "2026-05-10", "channel": name}, headers=reader
        )
        for name in (channel, channel.upper(), f" {channel.lower()} ")
    }
    blank = await client.get(
        "/v1/spend", params={"start": "2026-05-10", "end": "2026-05-10", "channel": "  "}, headers=reader
    )

    for name, response in found.items():
        assert response.status_code == 200, response.text
        assert [(s["channel"], s["amount"]) for s in response.json()] == [(channel.lower(), 42.0)], name
    assert blank.status_code == 422, blank.text


async def test_spend_from_a_csv_and_a_broken_csv_refused_whole_with_its_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    writer, reader = token_issuer.auth_header("analytics:write"), token_issuer.auth_header("analytics:read")
    channel = unique("csv")
    header = "day,channel,campaign,amount,currency\n"
    good = f"{header}2026-06-01,{channel},june,12.00,EUR\n2026-06-02,{channel},,3.00,EUR\n"
    response = await client.post(
        "/v1/spend/upload", content=good.encode(), headers={**writer, "Content-Type": "text/csv"}
    )
    assert response.json() == {"recorded": 2}
    bad = f"{header}2026-06-03,{channel},,1.00,EUR\n2026-13-01,{channel},,2.00,EUR\n"
    response = await client.post(
        "/v1/spend/upload", content=bad.encode(), headers={**writer, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    assert "Line 3" in response.json()["detail"]
    listed = await client.get(
        "/v1/spend", params={"start": "2026-06-01", "end": "2026-06-30", "channel": channel}, headers=reader
    )
    assert [s["day"] for s in listed.json()] == ["2026-06-01", "2026-06-02"]


async def test_spend_in_another_currency_or_without_the_scope_is_refused(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    entry = {"day": "2026-05-01", "channel": "x", "amount": "1.00", "currency": "USD"}
    response = await client.post(
        "/v1/spend", json={"entries": [entry]}, headers=token_issuer.auth_header("analytics:write")
    )
    assert response.status_code == 422
    assert "reporting currency EUR" in response.json()["detail"]
    response = await client.post(
        "/v1/spend", json={"entries": [entry]}, headers=token_issuer.auth_header("analytics:read")
    )
    assert response.status_code == 403


async def test_expenses_are_recorded_and_listed(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    body = {
        "day": "2026-07-01",
        "category": "rent",
        "amount": "1500.00",
        "currency": "EUR",
        "description": "July",
    }
    created = await client.post(
        "/v1/expenses", json=body, headers=token_issuer.auth_header("analytics:write")
    )
    assert created.status_code == 201
    listed = await client.get(
        "/v1/expenses",
        params={"start": "2026-07-01", "end": "2026-07-01"},
        headers=token_issuer.auth_header("analytics:read"),
    )
    assert [(e["category"], e["amount"]) for e in listed.json()] == [("rent", 1500.0)]


async def test_a_retried_expense_with_its_idempotency_key_is_recorded_once(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """A retry (after a timeout, say) with the same Idempotency-Key returns the first answer and records
    nothing more, so the net profit margin does not subtract the expense twice; the key with another
    body is 422."""
    headers = {**token_issuer.auth_header("analytics:write"), "Idempotency-Key": unique("exp-")}
    body = {"day": "2026-07-03", "category": unique("fees-"), "amount": "99.50", "currency": "EUR"}
    first = await client.post("/v1/expenses", json=body, headers=headers)
    again = await client.post("/v1/expenses", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    listed = await client.get(
        "/v1/expenses",
        params={"start": "2026-07-03", "end": "2026-07-03"},
        headers=token_issuer.auth_header("analytics:read"),
    )
    assert [e["category"] for e in listed.json()].count(body["category"]) == 1
    other = await client.post("/v1/expenses", json={**body, "amount": "99.51"}, headers=headers)
    assert other.status_code == 422


async def test_a_request_naming_one_day_channel_and_campaign_twice_is_refused_and_records_nothing(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Two entries for the same key (the channel compared lower-cased) used to keep the later amount
    silently; which one was meant is unknown, so the request is 422 naming both and nothing is stored."""
    writer, reader = token_issuer.auth_header("analytics:write"), token_issuer.auth_header("analytics:read")
    channel = unique("dup")
    entries = [
        {"day": day, "channel": name, "campaign": "aug", "amount": amount, "currency": "EUR"}
        for day, name, amount in [
            ("2026-08-01", channel, "10.00"),
            ("2026-08-02", channel, "5.00"),
            ("2026-08-01", channel.upper(), "99.00"),
        ]
    ]
    response = await client.post("/v1/spend", json={"entries": entries}, headers=writer)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "entries[0] and entries[2]" in response.json()["detail"]
    assert [e["field"] for e in response.json()["errors"]] == ["body.entries.2"]
    listed = await client.get(
        "/v1/spend", params={"start": "2026-08-01", "end": "2026-08-31", "channel": channel}, headers=reader
    )
    assert listed.json() == []


async def test_a_csv_naming_one_day_channel_and_campaign_twice_is_refused_naming_both_lines(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    writer, reader = token_issuer.auth_header("analytics:write"), token_issuer.auth_header("analytics:read")
    channel = unique("dupcsv")
    text = (
        "day,channel,campaign,amount,currency\n"
        f"2026-08-01,{channel},,1.00,EUR\n"
        f"2026-08-02,{channel},,2.00,EUR\n"
        f"2026-08-01,{channel}, ,3.00,EUR\n"
    )
    response = await client.post(
        "/v1/spend/upload", content=text.encode(), headers={**writer, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    assert "line 2 and line 4 both set" in response.json()["detail"]
    listed = await client.get(
        "/v1/spend", params={"start": "2026-08-01", "end": "2026-08-31", "channel": channel}, headers=reader
    )
    assert listed.json() == []


async def test_a_spend_file_of_the_largest_size_is_recorded_whole(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """20,000 rows (the most a file may hold) went to the database as one INSERT of 120,000 values, past
    PostgreSQL's 32,767 bind parameters: a 500 on PostgreSQL, where the guide promises the file."""
    writer, reader = token_issuer.auth_header("analytics:write"), token_issuer.auth_header("analytics:read")
    channel = unique("bulk")
    rows = "".join(
        f"{date(2026, 1, 1) + timedelta(days=n % 400)},{channel}{n // 400},c,1.00,EUR\n"
        for n in range(20_000)
    )
    response = await client.post(
        "/v1/spend/upload",
        content=("day,channel,campaign,amount,currency\n" + rows).encode(),
        headers={**writer, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 20_000}
    listed = await client.get(
        "/v1/spend",
        params={"start": "2026-01-01", "end": "2027-02-04", "channel": f"{channel}49"},
        headers=reader,
    )
    assert len(listed.json()) == 400


async def test_a_yen_amount_with_decimals_is_refused_naming_the_field(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> None:
    """A shop reporting in yen (no minor unit): 1500.50 JPY of spend and 99.5 JPY of expense were recorded
    (as 150050 and 9950 hundredths of a yen)."""
    app = create_app(settings_for(database_url, kafka_bootstrap, consumers=False, reporting_currency="JPY"))
    writer, reader = token_issuer.auth_header("analytics:write"), token_issuer.auth_header("analytics:read")
    channel = unique("yen")
    async with running_app(app, token_issuer) as client:
        spend = await client.post(
            "/v1/spend",
            json={
                "entries": [
                    {"day": "2026-07-01", "channel": channel, "amount": "1500", "currency": "JPY"},
                    {"day": "2026-07-02", "channel": channel, "amount": "1500.50", "currency": "JPY"},
                ]
            },
            headers=writer,
        )
        expense = await client.post(
            "/v1/expenses",
            json={"day": "2026-07-01", "category": "rent", "amount": "99.5", "currency": "JPY"},
            headers=writer,
        )
        csv = f"day,channel,campaign,amount,currency\n2026-07-03,{channel},,12.5,JPY\n"
        upload = await client.post(
            "/v1/spend/upload", content=csv.encode(), headers={**writer, "Content-Type": "text/csv"}
        )
        listed = await client.get(
            "/v1/spend",
            params={"start": "2026-07-01", "end": "2026-07-31", "channel": channel},
            headers=reader,
        )

    assert spend.status_code == 422, spend.text
    assert [e["field"] for e in spend.json()["errors"]] == ["body.entries.1.amount"], spend.text
    assert expense.status_code == 422, expense.text
    assert [e["field"] for e in expense.json()["errors"]] == ["body.amount"], expense.text
    assert upload.status_code == 422, upload.text
    assert "Line 2: amount" in upload.json()["detail"], upload.text
    assert listed.json() == []
