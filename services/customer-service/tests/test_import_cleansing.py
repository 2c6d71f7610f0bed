"""Imports that cleanse: error modes, normalisation before refusing, per-row results, the rejected rows
as a file, survivorship of a row matching a customer, region codes kept as codes."""

import csv
import io
import json
import random
import string
from typing import Any

import httpx
from customer_helpers import create_customer, new_email, unique

from servicekit.testing import TestTokenIssuer

HEADER = "first_name,last_name,email,birthday,line1,city,postcode,region,address_country,tags\n"
WRITE = ("customers:read", "customers:write", "customers:pii")


async def _import(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, content: str, on_error: str | None = None
) -> dict[str, Any]:
    params = {"on_error": on_error} if on_error else {}
    response = await client.post(
        "/v1/imports",
        params=params,
        files={"file": ("customers.csv", content.encode())},
        headers=tokens.auth_header("customers:write"),
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    for _ in range(200):
        job: dict[str, Any] = (
            await client.get(f"/v1/imports/{job_id}", headers=tokens.auth_header("customers:write"))
        ).json()
        if job["status"] in ("succeeded", "failed"):
            return job
    raise AssertionError(f"import job did not finish: {job}")


async def _rows(client: httpx.AsyncClient, tokens: TestTokenIssuer, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/imports/{job_id}/rows", params={"limit": 2}, headers=tokens.auth_header("customers:write")
    )
    items: list[dict[str, Any]] = response.json()["items"]
    while response.json()["next_cursor"]:
        response = await client.get(
            f"/v1/imports/{job_id}/rows",
            params={"limit": 2, "cursor": response.json()["next_cursor"]},
            headers=tokens.auth_header("customers:write"),
        )
        items += response.json()["items"]
    return items


def _name() -> str:
    """A letters-only name that resembles no other test's (rows of these tests must not pair up)."""
    return "".join(random.choices(string.ascii_lowercase, k=12)).capitalize()


def _bad_file(tag: str) -> str:
    return HEADER + "\n".join(
        [
            f"{_name()},{_name()},{new_email()},1990-01-02,1 Rue A,Lyon,69001,,FR,{tag}",
            f"{_name()},{_name()},not-an-email,1990-01-02,1 Rue B,Lyon,69001,,FR,{tag}",
            f"{_name()},{_name()},{new_email()},1990-01-02,1 Main St,Springfield,ABCDE,,US,{tag}",
            f"{_name()},{_name()},{new_email()},1990-02-31,2 Rue C,Lyon,69002,,FR,{tag}",
        ]
    )


async def _tagged(client: httpx.AsyncClient, tokens: TestTokenIssuer, tag: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/customers", params={"tag": tag}, headers=tokens.auth_header(*WRITE))
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_refuse_mode_imports_nothing_and_offers_the_bad_rows_as_csv(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"refuse-{unique()}"
    job = await _import(client, token_issuer, _bad_file(tag))

    rejected = await client.get(f"/v1/imports/{job['id']}/rejected", headers=token_issuer.auth_header(*WRITE))
    lines = list(csv.DictReader(io.StringIO(rejected.text)))

    assert (job["status"], job["on_error"]) == ("failed", "refuse")
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(2, "email"), (3, "postcode"), (4, "birthday")]
    assert await _tagged(client, token_issuer, tag) == []
    assert rejected.headers["content-type"].startswith("text/csv")
    assert lines[0]["email"] == "not-an-email"
    assert "email" in lines[0]["errors"]
    assert [r["outcome"] for r in await _rows(client, token_issuer, job["id"])] == ["refused"] * 3


async def test_skip_row_mode_imports_the_good_rows_and_reports_the_others(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"skip-{unique()}"
    job = await _import(client, token_issuer, _bad_file(tag), "skip_row")

    rows = await _rows(client, token_issuer, job["id"])
    imported = await _tagged(client, token_issuer, tag)

    assert (job["status"], job["created_count"], job["skipped_count"]) == ("succeeded", 1, 3)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(2, "email"), (3, "postcode"), (4, "birthday")]
    assert [(r["row"], r["outcome"]) for r in rows] == [
        (1, "created"),
        (2, "skipped"),
        (3, "skipped"),
        (4, "skipped"),
    ]
    assert rows[0]["customer_id"] == imported[0]["id"]
    assert rows[1]["errors"][0]["field"] == "email"


async def test_drop_field_mode_keeps_the_row_without_the_invalid_field(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"drop-{unique()}"
    job = await _import(client, token_issuer, _bad_file(tag), "drop_field")

    rows = await _rows(client, token_issuer, job["id"])
    by_id = {c["id"]: c for c in await _tagged(client, token_issuer, tag)}

    assert (job["status"], job["created_count"], job["skipped_count"]) == ("succeeded", 4, 0)
    assert [r["outcome"] for r in rows] == ["created"] * 4
    assert all(e["dropped"] for e in job["errors"])
    no_email, no_postcode, no_birthday = (by_id[r["customer_id"]] for r in rows[1:])
    assert no_email["emails"] == []
    assert no_postcode["addresses"][0]["postcode"] is None
    assert no_postcode["addresses"][0]["city"] == "Springfield"
    assert no_birthday["birthday"] is None


async def test_values_that_can_be_normalised_are_not_refused(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"norm-{unique()}"
    content = HEADER + "\n".join(
        [
            f"  ana  ,  LOPEZ{unique()} , {new_email().upper()} ,04/03/1990,1 rue a,LYON, 69 001 ,,fr,{tag}",
            f"Ben,Okafor{unique()},{new_email()},19850721,10 Downing St,London,sw1a2aa,,GB,{tag}",
        ]
    )

    job = await _import(client, token_issuer, content)
    imported = sorted(await _tagged(client, token_issuer, tag), key=lambda c: c["first_name"])

    assert job["status"] == "succeeded", job["errors"]
    assert [c["birthday"] for c in imported] == ["1990-03-04", "1985-07-21"]
    assert imported[0]["first_name"] == "Ana"
    assert imported[0]["addresses"][0]["postcode"] == "69001"
    assert imported[1]["addresses"][0]["postcode"] == "SW1A 2AA"


async def test_a_row_matching_a_customer_brings_its_birthday_and_address(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    existing = await create_customer(client, token_issuer, first_name="Ines", emails=[{"address": email}])
    content = HEADER + f"Ines,,{email},1979-11-30,5 Rue Neuve,Lyon,69002,,FR,\n"

    job = await _import(client, token_issuer, content)
    (row,) = await _rows(client, token_issuer, job["id"])
    profile = (
        await client.get(f"/v1/customers/{existing['id']}", headers=token_issuer.auth_header(*WRITE))
    ).json()

    assert (job["status"], job["matched_count"], job["created_count"]) == ("succeeded", 1, 0)
    assert (row["outcome"], row["customer_id"]) == ("matched", existing["id"])
    assert profile["birthday"] == "1979-11-30"
    assert [a["line1"] for a in profile["addresses"]] == ["5 Rue Neuve"]
    assert profile["version"] == existing["version"] + 1


async def test_rows_of_one_file_for_one_customer_are_one_profile(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email, tag = new_email(), f"fold-{unique()}"
    content = HEADER + "\n".join(
        [
            f"Lea,Martin{unique()},{email},,1 Rue A,Lyon,69001,,FR,{tag}",
            f"Lea,,{email},1988-05-06,,,,,,{tag}",
        ]
    )

    job = await _import(client, token_issuer, content)
    rows = await _rows(client, token_issuer, job["id"])
    (profile,) = await _tagged(client, token_issuer, tag)

    assert [r["outcome"] for r in rows] == ["created", "matched"]
    assert rows[0]["customer_id"] == rows[1]["customer_id"] == profile["id"]
    assert profile["birthday"] == "1988-05-06"


async def test_row_results_download_as_csv(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    job = await _import(client, token_issuer, _bad_file(f"csv-{unique()}"), "skip_row")

    response = await client.get(f"/v1/imports/{job['id']}/rows.csv", headers=token_issuer.auth_header(*WRITE))
    lines = list(csv.DictReader(io.StringIO(response.text)))

    assert [(line["row"], line["outcome"]) for line in lines] == [
        ("1", "created"),
        ("2", "skipped"),
        ("3", "skipped"),
        ("4", "skipped"),
    ]
    assert lines[0]["customer_id"]


async def test_ndjson_rejected_rows_come_back_as_ndjson(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    lines = [{"first_name": "Ok", "emails": [{"address": new_email()}]}, {"emails": [{"address": "nope"}]}]
    response = await client.post(
        "/v1/imports",
        params={"on_error": "skip_row"},
        files={"file": ("c.ndjson", "\n".join(json.dumps(line) for line in lines).encode())},
        headers=token_issuer.auth_header("customers:write"),
    )
    job_id = response.json()["id"]
    job = (
        await client.get(f"/v1/imports/{job_id}", headers=token_issuer.auth_header("customers:write"))
    ).json()
    assert job["status"] == "succeeded", job

    rejected = await client.get(f"/v1/imports/{job_id}/rejected", headers=token_issuer.auth_header(*WRITE))
    lines = [json.loads(text) for text in rejected.text.splitlines()]
    assert len(lines) == 1, rejected.text
    (line,) = lines

    assert line["emails"] == [{"address": "nope"}]
    assert line["_errors"][0]["field"] == "emails.0.address"


async def test_state_codes_stay_codes(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    tag = f"region-{unique()}"
    content = HEADER + "\n".join(
        [
            f"Kim,Ng{unique()},{new_email()},,1 George St,SYDNEY,2000,NSW,AU,{tag}",
            f"Sam,Ng{unique()},{new_email()},,1 King William St,adelaide,5000,sa,AU,{tag}",
            f"Max,Ng{unique()},{new_email()},,1 Collins St,Melbourne,3000,VICTORIA,AU,{tag}",
        ]
    )

    job = await _import(client, token_issuer, content)
    imported = sorted(await _tagged(client, token_issuer, tag), key=lambda c: c["first_name"])

    assert job["status"] == "succeeded", job["errors"]
    assert [(c["addresses"][0]["city"], c["addresses"][0]["region"]) for c in imported] == [
        ("Sydney", "NSW"),
        ("Melbourne", "Victoria"),
        ("Adelaide", "SA"),
    ]


async def test_import_jobs_are_listed_newest_first_by_status_page_by_page(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"list-{unique()}"
    good = HEADER + f"Ana,Lima,{new_email()},,,Lyon,69002,,FR,{tag}\n"
    jobs = [
        await _import(client, token_issuer, good),
        await _import(client, token_issuer, _bad_file(tag)),
        await _import(client, token_issuer, HEADER + f"Ana,Lima,{new_email()},,,Lyon,69002,,FR,{tag}\n"),
    ]
    headers = token_issuer.auth_header("customers:write")

    listed = (await client.get("/v1/imports", params={"limit": 100}, headers=headers)).json()
    failed = (await client.get("/v1/imports", params={"status": "failed"}, headers=headers)).json()
    first = (await client.get("/v1/imports", params={"limit": 2}, headers=headers)).json()
    second = (
        await client.get("/v1/imports", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)
    ).json()

    ids = [job["id"] for job in listed["items"]]
    assert [i for i in ids if i in {job["id"] for job in jobs}] == [job["id"] for job in reversed(jobs)]
    assert ids == sorted(ids, reverse=True)
    assert listed["items"][ids.index(jobs[0]["id"])] == jobs[0]
    assert jobs[1]["id"] in {job["id"] for job in failed["items"]}
    assert {job["status"] for job in failed["items"]} == {"failed"}
    assert [job["id"] for job in first["items"] + second["items"]] == ids[:4]
    bad_status = await client.get("/v1/imports", params={"status": "done"}, headers=headers)
    bad_cursor = await client.get("/v1/imports", params={"cursor": "not-a-cursor"}, headers=headers)
    anonymous = await client.get("/v1/imports")
    reader = await client.get("/v1/imports", headers=token_issuer.auth_header("customers:read"))
    assert (bad_status.status_code, bad_cursor.status_code, anonymous.status_code) == (422, 400, 401)
    assert reader.status_code == 403
    assert bad_status.headers["content-type"].startswith("application/problem+json")
