"""Bulk import through the HTTP API: a job with progress, a row-level report, all or nothing, dedupe."""

import json
from typing import Any

import httpx
import pytest
from customer_helpers import create_customer, new_email, run_import, unique

from servicekit.testing import TestTokenIssuer

HEADER = "first_name,last_name,email,phone,birthday,country,tags,line1,city,postcode,address_country\n"


async def _by_tag(client: httpx.AsyncClient, tokens: TestTokenIssuer, tag: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/customers", params={"tag": tag}, headers=tokens.auth_header("customers:read")
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_csv_import_creates_every_row(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    tag = f"imp-{unique()}"
    rows = [
        f"Ana,Lopez{unique()},{new_email()},+34612345678,1991-01-02,ES,{tag},Calle Mayor 1,Madrid,28013,ES",
        f"Ben,Okafor{unique()},{new_email()},,,GB,{tag};vip,10 Downing St,London,sw1a2aa,GB",
    ]

    job = await run_import(client, token_issuer, (HEADER + "\n".join(rows) + "\n").encode(), "customers.csv")

    assert (job["status"], job["created_count"], job["processed_rows"], job["total_rows"]) == (
        "succeeded",
        2,
        2,
        2,
    )
    imported = await _by_tag(client, token_issuer, tag)
    assert len(imported) == 2


async def test_bad_rows_are_reported_by_row_and_field_and_nothing_is_imported(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"bad-{unique()}"
    rows = [
        f"Ana,Ok,{new_email()},,,FR,{tag},,,,",
        f"Bad,Email,not-an-email,,,FR,{tag},,,,",
        f"Bad,Postcode,{new_email()},,,US,{tag},1 Main St,Springfield,ABCDE,US",
        f"Bad,Phone,{new_email()},12,,FR,{tag},,,,",
    ]

    job = await run_import(client, token_issuer, (HEADER + "\n".join(rows) + "\n").encode(), "customers.csv")

    assert job["status"] == "failed"
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(2, "email"), (3, "postcode"), (4, "phone")]
    assert await _by_tag(client, token_issuer, tag) == []


async def test_ndjson_import_dedupes_known_and_repeated_emails(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag, known, fresh = f"nd-{unique()}", new_email(), new_email()
    await create_customer(client, token_issuer, emails=[{"address": known}])
    lines = [
        {"first_name": "Kim", "emails": [{"address": known.upper()}], "tags": [tag]},
        {"first_name": "Lee", "emails": [{"address": fresh}], "tags": [tag]},
        {"first_name": "Lee", "emails": [{"address": f" {fresh} "}], "tags": [tag]},
    ]

    job = await run_import(
        client, token_issuer, ("\n".join(json.dumps(x) for x in lines)).encode(), "customers.ndjson"
    )

    assert (job["status"], job["created_count"], job["matched_count"]) == ("succeeded", 1, 2)


def _repeated_key_file(tag: str) -> bytes:
    """Line 2 gives first_name twice, line 3 an email's address twice: json.loads would keep the last."""
    last, one, other = f"Roe{unique()}", new_email(), new_email()
    return "\n".join(
        [
            json.dumps({"first_name": "Kim", "last_name": last, "tags": [tag]}),
            f'{{"first_name": "Kim", "first_name": "Kam", "last_name": "{last}x", "tags": ["{tag}"]}}',
            f'{{"first_name": "Lee", "emails": [{{"address": "{one}", "address": "{other}"}}], '
            f'"tags": ["{tag}"]}}',
        ]
    ).encode()


@pytest.mark.parametrize(
    ("mode", "status", "imported"),
    [("refuse", "failed", 0), ("skip_row", "succeeded", 1), ("drop_field", "succeeded", 3)],
)
async def test_ndjson_key_given_twice_is_an_invalid_field_of_its_row(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, mode: str, status: str, imported: int
) -> None:
    tag = f"twice-{unique()}"

    job = await run_import(client, token_issuer, _repeated_key_file(tag), "customers.ndjson", mode)

    assert job["status"] == status
    problems = [(e["row"], e["field"], e.get("dropped", False)) for e in job["errors"]]
    dropped = mode == "drop_field"
    assert problems == [(2, "first_name", dropped), (3, "emails.0.address", dropped)]
    assert "line 2" in job["errors"][0]["reason"]
    customers = await _by_tag(client, token_issuer, tag)
    assert len(customers) == imported
    assert not any(c["first_name"] == "Kam" for c in customers)
    assert all(c["emails"] == [] for c in customers if c["first_name"] == "Lee")


async def test_ndjson_line_that_is_not_json_fails_the_file_with_its_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/imports",
        files={"file": ("x.ndjson", b'{"first_name": "A"}\n{oops\n')},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 422
    assert "line 2: not valid JSON" in response.json()["detail"]


async def test_unknown_csv_column_gets_422(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.post(
        "/v1/imports",
        files={"file": ("c.csv", b"first_name,shoe_size\nA,42\n")},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 422
    assert "shoe_size" in response.json()["errors"][0]["message"]
    assert response.json()["detail"].endswith("external_id.")  # one full stop, not two


async def test_file_of_unknown_format_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/imports", files={"file": ("c.xlsx", b"PK")}, headers=token_issuer.auth_header("customers:write")
    )

    assert response.status_code == 422
