"""Bulk import in chunks: dedupe across chunks and against the base, a failure midway, abandoned jobs."""

import asyncio
import gc
import json
import random
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from customer_helpers import create_customer, duplicate_candidates, new_email, new_phone, run_import, unique
from sqlalchemy import insert, text

from contracts import build_event, uuid7
from contracts.catalog.customers import CustomerCreated
from customer_service.config import Settings
from customer_service.context import CustomerContext
from customer_service.customers import service as customer_service_customers
from customer_service.customers.models import Customer, CustomerIdentifier
from customer_service.customers.schemas import CustomerCreate
from customer_service.customers.service import NormalizedProfile, blocking_key_of_value, normalize_create
from customer_service.duplicates import linkage
from customer_service.duplicates import service as duplicates
from customer_service.duplicates.matching import side_of
from customer_service.imports import bulk, scoring
from customer_service.imports import service as import_service
from customer_service.imports.cleansing import CheckedRow
from customer_service.imports.models import ImportRow
from customer_service.main import create_app
from servicekit.db import Database, WalCheckpointer
from servicekit.events import outbox
from servicekit.events.models import OutboxMessage
from servicekit.testing import TestTokenIssuer, running_app

PII = ("customers:read", "customers:write", "customers:pii")


@asynccontextmanager
async def _app(
    database_url: str, tokens: TestTokenIssuer, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=database_url, kafka_enabled=False, log_json=False, **settings))
    async with running_app(app, tokens) as client:
        yield client


def _surname() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=12)).capitalize()


def _person(
    first: str, last: str, email: str, phone: str | None, tag: str, postcode: str = "69002"
) -> dict[str, Any]:
    """A row; without a phone it also has no street (a probable duplicate of a full row, not a sure one)."""
    street = {"line1": "12 Rue Victor Hugo"} if phone else {}
    return {
        "first_name": first,
        "last_name": last,
        "emails": [{"address": email}],
        "phones": [{"number": phone}] if phone else [],
        "addresses": [{"kind": "shipping", **street, "city": "Lyon", "postcode": postcode, "country": "FR"}],
        "tags": [tag],
    }


def _ndjson(lines: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode()


async def _tagged(client: httpx.AsyncClient, tokens: TestTokenIssuer, tag: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/customers", params={"tag": tag}, headers=tokens.auth_header(*PII))
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_duplicate_rows_in_different_chunks_are_paired(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    tag, last, phone = f"chunk-{unique()}", _surname(), new_phone()
    lines = [
        _person("Jonathan", last, new_email(), phone, tag),
        _person("Zoe", _surname(), new_email(), new_phone(), tag),
        _person("Jonathon", last, f"jon.{last.lower()}@mail.example.org", None, tag),
    ]

    async with _app(database_url, token_issuer, import_chunk_rows=2) as client:
        job = await run_import(client, token_issuer, _ndjson(lines), "c.ndjson")
        imported = {c["first_name"]: c for c in await _tagged(client, token_issuer, tag)}
        (pair,) = await duplicate_candidates(client, token_issuer, imported["Jonathon"]["id"])

    assert (job["status"], job["created_count"], job["processed_rows"]) == ("succeeded", 3, 3)
    assert {pair["customer_a_id"], pair["customer_b_id"]} == {
        imported["Jonathan"]["id"],
        imported["Jonathon"]["id"],
    }
    assert imported["Jonathan"]["quality"]["no_open_duplicate"] is False


async def test_imported_row_is_paired_with_an_existing_customer(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag, last, phone = f"exist-{unique()}", _surname(), new_phone()
    existing = await create_customer(
        client,
        token_issuer,
        **{k: v for k, v in _person("Jonathan", last, new_email(), phone, tag).items() if k != "tags"},
    )

    job = await run_import(
        client, token_issuer, _ndjson([_person("Jonathon", last, new_email(), None, tag)]), "c.ndjson"
    )
    (row,) = await _tagged(client, token_issuer, tag)
    (pair,) = await duplicate_candidates(client, token_issuer, row["id"])

    assert job["status"] == "succeeded"
    assert {pair["customer_a_id"], pair["customer_b_id"]} == {existing["id"], row["id"]}


async def test_near_identical_rows_of_one_file_are_merged_automatically(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag, last, phone = f"auto-{unique()}", _surname(), new_phone()
    first = {
        **_person("Maria", last, f"maria.{last.lower()}@example.com", phone, tag),
        "birthday": "1980-02-03",
    }
    second = {**first, "emails": [{"address": f"maria.{last.lower()}@exmaple.com"}]}

    job = await run_import(client, token_issuer, _ndjson([first, second]), "c.ndjson")
    (survivor,) = await _tagged(client, token_issuer, tag)

    assert (job["status"], job["created_count"]) == ("succeeded", 2)
    assert sorted(e["address"] for e in survivor["emails"]) == sorted(
        [f"maria.{last.lower()}@example.com", f"maria.{last.lower()}@exmaple.com"]
    )


async def _scored_import(
    database_url: str, tokens: TestTokenIssuer, monkeypatch: pytest.MonkeyPatch, *, scoring_process: bool
) -> tuple[Any, ...]:
    """A file of four chunks of three rows with a probable duplicate across chunks, an auto-merge
    across chunks, one within a chunk and a row pairing with an existing customer; what the import
    made of it, by first names (and how many chunks were scored in the scoring worker process). Random
    birth dates and a postcode of its own: the runs share a database, and one run's Ottilie is not the
    other's (with the same address, another run's Philomene was seen merged into this one's)."""
    tag, last, other, third = f"sc-{unique()}", _surname(), _surname(), _surname()
    postcode = f"{random.randrange(10_000, 99_999)}"

    def person(first: str, last: str, email: str, phone: str | None, tag: str) -> dict[str, Any]:
        return _person(first, last, email, phone, tag, postcode)

    phone = new_phone()
    maria = {
        **person("Ottilie", last, f"ottilie.{last.lower()}@example.com", phone, tag),
        "birthday": f"19{random.randrange(40, 99)}-0{random.randrange(1, 9)}-{random.randrange(10, 28)}",
    }
    nadia = {
        **person("Philomene", third, f"philomene.{third.lower()}@example.com", new_phone(), tag),
        "birthday": f"19{random.randrange(40, 99)}-1{random.randrange(0, 2)}-{random.randrange(10, 28)}",
    }
    lines = [
        person("Leopoldine", last, new_email(), new_phone(), tag),
        person("Casimir", _surname(), new_email(), new_phone(), tag),
        maria,
        person("Leopoldina", last, f"leo.{last.lower()}@mail.example.org", None, tag),
        {**maria, "emails": [{"address": f"ottilie.{last.lower()}@exmaple.com"}]},
        person("Clothild", other, new_email(), None, tag),
        person("Evariste", _surname(), new_email(), new_phone(), tag),
        nadia,
        {**nadia, "emails": [{"address": f"philomene.{third.lower()}@exmaple.com"}]},
        person("Gaspard", _surname(), new_email(), new_phone(), tag),
        person("Honorine", _surname(), new_email(), new_phone(), tag),
        person("Isidore", _surname(), new_email(), new_phone(), tag),
    ]
    elsewhere = 0
    score_elsewhere = bulk.BulkImporter._score_elsewhere

    async def counted(self: bulk.BulkImporter, *args: Any) -> Any:
        nonlocal elsewhere
        elsewhere += 1
        return await score_elsewhere(self, *args)

    monkeypatch.setattr(bulk.BulkImporter, "_score_elsewhere", counted)
    async with _app(
        database_url, tokens, import_chunk_rows=3, import_scoring_process=scoring_process
    ) as client:
        existing = await create_customer(
            client,
            tokens,
            **{
                k: v
                for k, v in person("Clothilde", other, new_email(), new_phone(), tag).items()
                if k != "tags"
            },
        )
        job = await run_import(client, tokens, _ndjson(lines), "c.ndjson")
        imported = await _tagged(client, tokens, tag)
        first_name = {c["id"]: c["first_name"] for c in [*imported, existing]}
        pairs = set()
        for customer in imported:
            for pair in await duplicate_candidates(client, tokens, customer["id"]):
                a, b = pair["customer_a_id"], pair["customer_b_id"]
                # The runs share a database, first names and an address: a pair with another run's
                # customer is not this file's.
                if a in first_name and b in first_name:
                    pairs.add((first_name[a], first_name[b], pair["status"]))
        response = await client.get(f"/v1/customers/{existing['id']}", headers=tokens.auth_header(*PII))
        existing_open = not response.json()["quality"]["no_open_duplicate"]
    made = sorted(
        (c["first_name"], len(c["emails"]), not c["quality"]["no_open_duplicate"]) for c in imported
    )
    counts = (job["status"], job["created_count"], job["matched_count"])
    return counts, made, {tuple(sorted(pair[:2])) + pair[2:] for pair in pairs}, existing_open, elsewhere


async def test_chunks_scored_in_the_scoring_process_find_what_scoring_here_finds(
    database_url: str, token_issuer: TestTokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    there = await _scored_import(database_url, token_issuer, monkeypatch, scoring_process=True)
    here = await _scored_import(database_url, token_issuer, monkeypatch, scoring_process=False)

    assert there[-1] == 4  # every chunk scored in the worker process
    assert here[-1] == 0
    assert there[:-1] == here[:-1]
    counts, made, pairs, existing_open, _ = there
    assert counts == ("succeeded", 12, 0)
    # Ottilie and Philomene each merged into one customer with both emails (across chunks, within a chunk).
    assert [m for m in made if m[0] in ("Ottilie", "Philomene")] == [
        ("Ottilie", 2, False),
        ("Philomene", 2, False),
    ]
    assert ("Leopoldine", True) in {(m[0], m[2]) for m in made}
    assert ("Clothild", True) in {(m[0], m[2]) for m in made}
    assert existing_open
    assert {p[:2] for p in pairs if p[2] == "open"} >= {
        ("Leopoldina", "Leopoldine"),
        ("Clothild", "Clothilde"),
    }


async def test_a_scoring_process_that_died_leaves_the_chunks_to_the_service(
    database_url: str, token_issuer: TestTokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    score_elsewhere = bulk.BulkImporter._score_elsewhere

    async def dying(self: bulk.BulkImporter, pool: Any, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the worker process dies before the second chunk is scored
            for process in list(pool._processes.values()):
                process.kill()
                process.join()
        return await score_elsewhere(self, pool, *args)

    here = await _scored_import(database_url, token_issuer, monkeypatch, scoring_process=False)
    monkeypatch.setattr(bulk.BulkImporter, "_score_elsewhere", dying)
    async with _app(database_url, token_issuer, import_chunk_rows=3) as client:
        lines = [_person(f"Died{n}", _surname(), new_email(), new_phone(), f"d-{unique()}") for n in range(9)]
        job = await run_import(client, token_issuer, _ndjson(lines), "c.ndjson")
    scored_there = calls
    # Then a job that starts the scoring process again scores as the service does.
    there = await _scored_import(database_url, token_issuer, monkeypatch, scoring_process=True)

    assert (job["status"], job["created_count"]) == ("succeeded", 9)
    assert scored_there == 2  # the third chunk was scored in the service: the importer let the pool go
    assert there[:-1] == here[:-1]


def test_the_scoring_process_asks_for_the_sides_it_does_not_hold() -> None:
    job = unique()
    jonathan = side_of("Jonathan", "Smith", {"addresses": [{"postcode": "69002", "city": "Lyon"}]})
    jonathon = side_of("Jonathon", "Smith", {"addresses": [{"postcode": "69002", "city": "Lyon"}]})
    args = ({"k": ["a"]}, {"a": 1}, 0.05, None)

    first = scoring.score_chunk(job, None, [], [("b", jonathon, {"k"})], *args)
    second = scoring.score_chunk(job, linkage.DEFAULT_MODEL, [], [("b", jonathon, {"k"})], *args)
    third = scoring.score_chunk(job, None, [(("a", 1), jonathan)], [("b", jonathon, {"k"})], *args)
    # The next chunk: "b" is held since it was scored.
    fourth = scoring.score_chunk(
        job, None, [], [("c", jonathon, {"k"})], {"k": ["b", "a"]}, {"a": 1, "b": 1}, 0.05, None
    )
    scoring.forget_job(job)
    fifth = scoring.score_chunk(job, None, [], [("c", jonathon, {"k"})], *args)

    assert first == scoring.Missing([("a", 1)])  # neither the side nor the model
    assert second == scoring.Missing([("a", 1)])
    assert isinstance(third, scoring.Scored)
    assert [(a, b) for a, b, _, _ in third.pairs] == [("a", "b")]
    assert third == scoring.score_rows(
        [("b", jonathon, {"k"})],
        {"k": ["a"]},
        {"a": 1},
        {("a", 1): jonathan},
        linkage.DEFAULT_MODEL,
        0.05,
        None,
    )
    assert isinstance(fourth, scoring.Scored)
    assert {(a, b) for a, b, _, _ in fourth.pairs} == {("a", "c"), ("b", "c")}
    assert fifth == scoring.Missing([("a", 1)])


def _copies(tag: str, first: str) -> list[dict[str, Any]]:
    """One person three times (typos in the email's domain, the same phone, address and birth date:
    auto-merged), then a row with the second copy's email (matched on ingest to that copy)."""
    last, phone = _surname(), new_phone()
    birthday = f"19{random.randrange(40, 99)}-0{random.randrange(1, 9)}-{random.randrange(10, 28)}"
    local = f"{first.lower()}.{last.lower()}"
    copies = [
        {**_person(first, last, f"{local}@{domain}", phone, tag), "birthday": birthday}
        for domain in ("example.com", "exmaple.com", "exampel.com")
    ]
    return [*copies, {**copies[1], "phones": []}]


async def _row_results(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, job_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/imports/{job_id}/rows", params={"limit": 500}, headers=tokens.auth_header("customers:write")
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_file_whose_rows_mostly_merge_merges_them_a_few_per_transaction(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_service, "MERGES_PER_TRANSACTION", 2)
    sessions: list[int] = []  # the transaction of each merge, numbered
    auto_merge = bulk.BulkImporter.auto_merge

    async def recorded(self: bulk.BulkImporter, session: Any, *args: Any) -> bool:
        sessions.append(session.info.setdefault("number", len(set(sessions))))
        return await auto_merge(self, session, *args)

    monkeypatch.setattr(bulk.BulkImporter, "auto_merge", recorded)
    tag = f"many-{unique()}"
    lines = [line for _ in range(4) for line in _copies(tag, "Ludivine")]

    job = await run_import(client, token_issuer, _ndjson(lines), "c.ndjson")
    survivors = await _tagged(client, token_issuer, tag)
    results = await _row_results(client, token_issuer, job["id"])

    assert (job["status"], job["created_count"], job["matched_count"]) == ("succeeded", 12, 4)
    assert len(survivors) == 4
    assert all(len(c["emails"]) == 3 for c in survivors)
    assert sessions == [0, 0, 1, 1, 2, 2, 3, 3]  # 8 merges, 2 per transaction
    survivor_ids = {c["id"] for c in survivors}
    for person in range(4):
        outcomes = [(r["outcome"], r["customer_id"]) for r in results[person * 4 : person * 4 + 4]]
        # The survivor is the copy with the smallest id (ids made in one millisecond are in any order).
        assert sorted(o for o, _ in outcomes[:3]) == ["created", "merged", "merged"]
        assert outcomes[3][0] == "matched"
        assert len({cid for _, cid in outcomes}) == 1
        assert outcomes[0][1] in survivor_ids


async def test_an_auto_merge_that_lost_a_race_is_skipped_and_the_others_are_carried_out(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer changes the first customer the job's merges claim, each time: that merge is refused
    # (409 inside), its transaction rolls back and is done again one merge at a time without it.
    monkeypatch.setattr(import_service, "MERGES_PER_TRANSACTION", 4)
    claim_version = customer_service_customers.claim_version
    lost: list[str] = []

    async def racing(session: Any, customer: Any, **kwargs: Any) -> bool:
        if not lost:
            lost.append(customer.id)
        if customer.id == lost[0]:
            return False
        return await claim_version(session, customer, **kwargs)

    monkeypatch.setattr(customer_service_customers, "claim_version", racing)
    tag = f"race-{unique()}"
    lines = [line for _ in range(2) for line in _copies(tag, "Anselme")[:2]]  # two people, twice each

    job = await run_import(client, token_issuer, _ndjson(lines), "c.ndjson")
    monkeypatch.setattr(customer_service_customers, "claim_version", claim_version)
    customers_now = await _tagged(client, token_issuer, tag)
    results = await _row_results(client, token_issuer, job["id"])

    assert job["status"] == "succeeded"
    assert len(customers_now) == 3  # one person merged, the other's merge lost the race
    outcomes = [r["outcome"] for r in results]
    assert sorted(outcomes) == ["created", "created", "created", "merged"]
    ids = {c["id"] for c in customers_now}
    pairs = [
        p
        for p in await duplicate_candidates(client, token_issuer, lost[0])
        if {p["customer_a_id"], p["customer_b_id"]} <= ids
    ]
    assert lost[0] in ids
    assert [p["status"] for p in pairs] == ["open"]


async def _install_failure_on(database_url: str, first_name: str) -> None:
    """A trigger that makes the database refuse one customer: a real failure in the middle of a job."""
    database = Database(database_url)
    try:
        async with database.engine.begin() as conn:
            if database.is_sqlite:
                await conn.execute(
                    text(
                        "CREATE TRIGGER refuse_customer BEFORE INSERT ON customers "
                        f"WHEN NEW.first_name = '{first_name}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                    )
                )
            else:
                await conn.execute(
                    text(
                        "CREATE FUNCTION refuse_customer() RETURNS trigger AS $$ BEGIN "
                        f"IF NEW.first_name = '{first_name}' THEN RAISE EXCEPTION 'refused'; END IF; "
                        "RETURN NEW; END $$ LANGUAGE plpgsql"
                    )
                )
                await conn.execute(
                    text(
                        "CREATE TRIGGER refuse_customer BEFORE INSERT ON customers "
                        "FOR EACH ROW EXECUTE FUNCTION refuse_customer()"
                    )
                )
    finally:
        await database.dispose()


async def _remove_failure(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.begin() as conn:
            if database.is_sqlite:
                await conn.execute(text("DROP TRIGGER refuse_customer"))
            else:
                await conn.execute(text("DROP TRIGGER refuse_customer ON customers"))
                await conn.execute(text("DROP FUNCTION refuse_customer()"))
    finally:
        await database.dispose()


async def test_failure_midway_keeps_committed_chunks_and_names_the_first_row_not_imported(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    tag, refused = f"mid-{unique()}", "Refused" + "".join(random.choices(string.ascii_lowercase, k=6))
    lines = [
        {"first_name": name, "last_name": _surname(), "emails": [{"address": new_email()}], "tags": [tag]}
        for name in ("Ana", "Ben", "Cleo", refused, "Eve")
    ]
    await _install_failure_on(database_url, refused)
    try:
        async with _app(database_url, token_issuer, import_chunk_rows=2) as client:
            job = await run_import(client, token_issuer, _ndjson(lines), "c.ndjson")
            imported = sorted(c["first_name"] for c in await _tagged(client, token_issuer, tag))
    finally:
        await _remove_failure(database_url)

    assert (job["status"], job["processed_rows"], job["created_count"]) == ("failed", 2, 2)
    assert job["errors"][0]["row"] == 3
    assert "The first 2 rows (up to row 2) were imported" in job["errors"][0]["reason"]
    assert imported == ["Ana", "Ben"]
    assert gc.isenabled()  # the job paused the cyclic collector, and its failure resumed it


async def _insert_job(database_url: str, *, status: str, heartbeat: datetime, processed: int) -> str:
    job_id = str(uuid7())
    database = Database(database_url)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO import_jobs (id, status, format, actor, total_rows, processed_rows, "
                    "created_count, matched_count, errors, created_at, heartbeat_at) VALUES (:id, :status, "
                    "'csv', 'test', 10, :processed, :processed, 0, '[]', :at, :at)"
                ),
                {"id": job_id, "status": status, "processed": processed, "at": heartbeat},
            )
    finally:
        await database.dispose()
    return job_id


async def test_job_left_running_by_a_stopped_process_is_failed_at_startup(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    job_id = await _insert_job(
        database_url, status="running", heartbeat=datetime.now(UTC) - timedelta(hours=1), processed=4
    )

    async with _app(database_url, token_issuer) as client:
        job = (
            await client.get(f"/v1/imports/{job_id}", headers=token_issuer.auth_header("customers:write"))
        ).json()

    assert (job["status"], job["processed_rows"]) == ("failed", 4)
    assert job["finished_at"] is not None
    assert "service stopped" in job["errors"][0]["reason"]
    assert "The first 4 rows were imported" in job["errors"][0]["reason"]


async def test_job_with_recent_progress_is_left_running(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    job_id = await _insert_job(database_url, status="running", heartbeat=datetime.now(UTC), processed=0)

    async with _app(database_url, token_issuer, import_stale_after_seconds=3600) as client:
        job = (
            await client.get(f"/v1/imports/{job_id}", headers=token_issuer.auth_header("customers:write"))
        ).json()

    assert job["status"] == "running"


async def test_job_that_stops_progressing_is_failed_when_read(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    async with _app(database_url, token_issuer) as client:
        job_id = await _insert_job(
            database_url, status="running", heartbeat=datetime.now(UTC) - timedelta(hours=1), processed=0
        )
        job = (
            await client.get(f"/v1/imports/{job_id}", headers=token_issuer.auth_header("customers:write"))
        ).json()

    assert job["status"] == "failed"
    assert "Nothing was imported" in job["errors"][0]["reason"]


async def test_a_job_failed_as_abandoned_is_never_brought_back_by_its_runner(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    job_id = await _insert_job(
        database_url, status="running", heartbeat=datetime.now(UTC) - timedelta(hours=1), processed=0
    )
    database = Database(database_url)
    async with _app(database_url, token_issuer) as client:
        read = await client.get(f"/v1/imports/{job_id}", headers=token_issuer.auth_header("customers:write"))
        assert read.json()["status"] == "failed"
        with pytest.raises(import_service.JobAbandoned):
            await import_service._update(database, job_id, status="succeeded", finished=True)
        await database.dispose()
        job = (
            await client.get(f"/v1/imports/{job_id}", headers=token_issuer.auth_header("customers:write"))
        ).json()

    assert job["status"] == "failed"
    assert "service stopped" in job["errors"][0]["reason"]


async def test_a_stale_job_read_while_its_runner_writes_progress_ends_in_one_state(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    database = Database(database_url)
    async with _app(database_url, token_issuer, import_stale_after_seconds=60) as client:
        headers = token_issuer.auth_header("customers:write")
        for _ in range(5):
            job_id = await _insert_job(
                database_url, status="running", heartbeat=datetime.now(UTC) - timedelta(hours=1), processed=0
            )

            async def runner(job_id: str = job_id) -> bool:
                try:
                    await import_service._update(database, job_id, status="running")
                except import_service.JobAbandoned:
                    return False
                return True

            results = await asyncio.gather(
                *(client.get(f"/v1/imports/{job_id}", headers=headers) for _ in range(4)), runner()
            )
            runner_went_on = results[-1]
            job = (await client.get(f"/v1/imports/{job_id}", headers=headers)).json()

            if runner_went_on:
                assert (job["status"], job["finished_at"], job["errors"]) == ("running", None, [])
            else:
                assert job["status"] == "failed"
                assert job["finished_at"] is not None
                assert "service stopped" in job["errors"][0]["reason"]
    await database.dispose()


async def test_the_sqlite_chunk_cache_is_set_back_when_the_chunk_ends_or_fails(tmp_path: Any) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}")
    try:
        async with database.session() as session:
            before = (await session.execute(text("PRAGMA cache_size"))).scalar()
            async with import_service._sqlite_chunk_cache(session, True):
                during = (await session.execute(text("PRAGMA cache_size"))).scalar()
            after = (await session.execute(text("PRAGMA cache_size"))).scalar()
            with pytest.raises(RuntimeError):
                async with import_service._sqlite_chunk_cache(session, True):
                    raise RuntimeError("chunk failed")
            after_failure = (await session.execute(text("PRAGMA cache_size"))).scalar()
    finally:
        await database.dispose()
    assert during == -import_service.SQLITE_CHUNK_CACHE_KIB != before
    assert after == after_failure == before


async def test_a_chunk_that_checkpoints_elsewhere_commits_without_auto_checkpoint_and_sets_it_back(
    tmp_path: Any,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'checkpoint.db'}")
    pragma = text("PRAGMA wal_autocheckpoint")
    try:
        async with database.session() as session:
            before = (await session.execute(pragma)).scalar()
            async with import_service._sqlite_chunk_cache(session, True, checkpoints_elsewhere=True):
                during = (await session.execute(pragma)).scalar()
            after = (await session.execute(pragma)).scalar()
            with pytest.raises(RuntimeError):
                async with import_service._sqlite_chunk_cache(session, True, checkpoints_elsewhere=True):
                    raise RuntimeError("chunk failed")
            after_failure = (await session.execute(pragma)).scalar()
            async with import_service._sqlite_chunk_cache(session, True):
                without = (await session.execute(pragma)).scalar()
    finally:
        await database.dispose()
    assert during == 0 != before
    assert after == after_failure == without == before


async def test_an_import_on_a_sqlite_file_checkpoints_after_each_chunk(
    database_url: str, token_issuer: TestTokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chunks' commits leave the write-ahead log alone; the job checkpoints it itself, in a worker
    # thread, after each chunk (and on PostgreSQL there is nothing to checkpoint).
    calls: list[str] = []

    class Counted(WalCheckpointer):
        def checkpoint(self) -> tuple[int, int, int]:
            calls.append(self.path)
            return super().checkpoint()

    monkeypatch.setattr(import_service, "WalCheckpointer", Counted)  # not the service's own, every second
    tag = f"ckpt-{unique()}"
    lines = [_person(f"Name{n}", _surname(), new_email(), new_phone(), tag) for n in range(5)]
    async with _app(database_url, token_issuer, import_chunk_rows=2) as client:
        job = await run_import(client, token_issuer, _ndjson(lines), "people.ndjson")
        assert job["status"] == "succeeded"
        assert job["created_count"] == 5
        assert len(await _tagged(client, token_issuer, tag)) == 5
    if database_url.startswith("sqlite"):
        assert len(calls) == 3
        assert all(path.endswith(".db") for path in calls)
    else:
        assert calls == []


async def test_rows_inserted_through_the_driver_are_stored_as_sqlalchemy_stores_them(
    database_url: str,
) -> None:
    # The importer's inserts hand tuples to the driver (each value through its column type's bind
    # processor); every stored value, with its SQLite storage class, is the one SQLAlchemy's own
    # executemany stores: JSON, bytes, timestamps, NULL and JSON null, non-ASCII text.
    stamp = datetime(2026, 11, 29, 17, 5, 1, 123456, tzinfo=UTC)

    def customer(cid: str) -> dict[str, Any]:
        return {
            "id": cid,
            "version": 1,
            "status": "active",
            "merged_into_id": None,
            "first_name": "Zoé",
            "last_name": None,
            "locale": "fr-FR",
            "country": "FR",
            "attributes": {"b": [1, 2.5, None], "a": "é"},
            "tags": ["vip"],
            "consents": {},
            "quality_score": 0.4,
            "quality": {"valid_email": True, "no_open_duplicate": False},
            "key_id": "k1",
            "wrapped_key": b"\x00\xffkey",
            "pii": b"sealed\x00",
            "index_key_id": "bk1",
            "created_at": stamp,
            "updated_at": stamp,
        }

    def identifier(cid: str) -> dict[str, Any]:
        return {
            "customer_id": cid,
            "kind": "email",
            "blind_index": f"idx-{cid}",
            "unique_key": f"email:idx-{cid}",
            "value": None,
            "created_at": stamp,
        }

    def import_row(job: str, raw: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "job_id": job,
            "row": 1,
            "outcome": "skipped",
            "customer_id": None,
            "errors": [{"field": "email", "reason": "ça"}],
            "raw": raw,
        }

    database = Database(database_url)
    try:
        async with database.session() as session:
            await bulk.insert_rows(session, Customer, [customer("driver")])
            await session.execute(insert(Customer.__table__), [customer("sqlalchemy")])  # type: ignore[attr-defined]
            await bulk.insert_rows(session, CustomerIdentifier, [identifier("driver")])
            await session.execute(insert(CustomerIdentifier.__table__), [identifier("sqlalchemy")])  # type: ignore[attr-defined]
            rows = [import_row("driver", {"email": "x"}), import_row("driver-none", None)]
            await bulk.insert_rows(session, ImportRow, rows)
            await session.execute(
                insert(ImportRow.__table__),  # type: ignore[attr-defined]
                [import_row("sqlalchemy", {"email": "x"}), import_row("sqlalchemy-none", None)],
            )

        async def stored(model: Any, where: str) -> list[Any]:
            # Every value with its storage class (SQLite) or type (PostgreSQL, where both go through
            # SQLAlchemy), leaving out the columns that differ on purpose.
            typeof = "typeof({})" if database.is_sqlite else "CAST(pg_typeof({}) AS TEXT)"
            columns = [
                f'"{c.name}"'
                for c in model.__table__.c
                if c.name not in ("id", "customer_id", "job_id", "blind_index", "unique_key")
            ]
            listed = ", ".join(f"{typeof.format(c)}, {c}" for c in columns)
            async with database.session() as session:
                query = text(f"SELECT {listed} FROM {model.__table__.name} WHERE {where}")
                return [tuple(r) for r in (await session.execute(query)).all()]

        assert await stored(Customer, "id = 'driver'") == await stored(Customer, "id = 'sqlalchemy'")
        assert await stored(CustomerIdentifier, "customer_id = 'driver'") == await stored(
            CustomerIdentifier, "customer_id = 'sqlalchemy'"
        )
        for suffix in ("", "-none"):
            assert await stored(ImportRow, f"job_id = 'driver{suffix}'") == await stored(
                ImportRow, f"job_id = 'sqlalchemy{suffix}'"
            )
        assert (await stored(ImportRow, "job_id = 'driver-none'"))[0][-1] is None
        # The outbox rows of the importer's events (`outbox.row_of`, through insert_rows) as add_many
        # stores them.
        events = [
            build_event(
                "ecom.customer.created.v1",
                CustomerCreated(customer_id=cid, country="FR"),
                subject=cid,
                sequence=1,
            )
            for cid in ("driver", "sqlalchemy")
        ]
        async with database.session() as session:
            await bulk.insert_rows(session, OutboxMessage, [outbox.row_of(events[0], now=stamp)])
            connection = await session.connection()
            await connection.execute(insert(OutboxMessage.__table__), [outbox.row_of(events[1], now=stamp)])  # type: ignore[attr-defined]
        (driver_row,) = await stored(OutboxMessage, "key = 'driver'")
        (sqlalchemy_row,) = await stored(OutboxMessage, "key = 'sqlalchemy'")
        # (storage class, value) per column: the event ids, keys and payloads differ by their values
        # (each event's own id, subject and time), not by their storage class.
        differing = {1, 7, 9}  # event_id, key, payload
        assert [v for n, v in enumerate(driver_row) if n not in differing] == [
            v for n, v in enumerate(sqlalchemy_row) if n not in differing
        ]
        assert len(driver_row) == 18
        assert driver_row[8] == sqlalchemy_row[8]  # the payload's storage class
    finally:
        await database.dispose()


def _profile(context: CustomerContext, email: str, phone: str | None = None) -> NormalizedProfile:
    return normalize_create(
        context,
        CustomerCreate.model_validate(
            {
                "first_name": "Jonathan",
                "last_name": "Smithson",
                "emails": [{"address": email}],
                "phones": [{"number": phone}] if phone else [],
                "addresses": [
                    {
                        "kind": "shipping",
                        "line1": "4 Rue Sala",
                        "city": "Lyon",
                        "postcode": "69002",
                        "country": "FR",
                    }
                ],
            }
        ),
    )


async def _pairs(database: Database) -> set[tuple[str, str]]:
    async with database.session() as session:
        rows = await session.execute(text("SELECT customer_a_id, customer_b_id FROM duplicate_candidates"))
        return {(str(a), str(b)) for a, b in rows.all()}


@pytest.mark.parametrize("writer", ["same pool", "another connection"])
async def test_a_job_sees_the_customers_another_writer_created_between_its_chunks(
    database_url: str, writer: str
) -> None:
    # The importer keeps the holders of blocking keys between chunks (SQLite); a customer created by
    # anyone else between two chunks (through a connection of the same pool or another one) must still
    # be a candidate of the next chunk's rows.
    context = CustomerContext.from_settings(
        Settings(database_url=database_url, kafka_enabled=False, auto_merge_enabled=False)
    )
    database = Database(database_url)
    other = database if writer == "same pool" else Database(database_url)
    try:
        job = await import_service.create_job(database, fmt="ndjson", actor="test", total_rows=2)
        await import_service._update(database, job.id, status="running")
        importer = bulk.BulkImporter(context)

        async def chunk(email: str, done: int) -> str:
            row = CheckedRow(done + 1, _profile(context, email))
            result = await import_service._import_chunk(database, importer, job.id, [row], done=done)
            return result.outcomes[0][1]

        first = await chunk(new_email(), 0)
        async with other.session() as session:  # another job (or any other writer) creates the same person
            between = await bulk.BulkImporter(context).import_chunk(session, [_profile(context, new_email())])
        second = await chunk(new_email(), 1)
        assert between.created == 1
        (created_between,) = (cid for outcome, cid in between.outcomes if outcome == "created")
        pairs = await _pairs(database)
        assert tuple(sorted((second, created_between))) in pairs
        assert tuple(sorted((second, first))) in pairs
    finally:
        if other is not database:
            await other.dispose()
        await database.dispose()


async def test_phone_keys_left_unread_have_no_holder_and_a_held_phone_is_still_read(
    database_url: str,
) -> None:
    # The importer does not query the holders of a new row's phone key (`p:`) when no customer in the
    # database has that phone (its identifiers and blocking keys are written together): such a key must
    # have no holder indeed, and the key of a phone that someone holds must still be read.
    context = CustomerContext.from_settings(
        Settings(database_url=database_url, kafka_enabled=False, auto_merge_enabled=False)
    )
    database = Database(database_url)
    shared, fresh = new_phone(), new_phone()
    try:
        async with database.session() as session:
            first = await bulk.BulkImporter(context).import_chunk(
                session, [_profile(context, new_email(), phone=shared)]
            )
        (holder,) = (cid for outcome, cid in first.outcomes if outcome == "created")
        importer = bulk.BulkImporter(context)  # knows nothing of the database yet
        async with database.session() as session:
            profiles = [_profile(context, new_email(), phone=phone) for phone in (shared, fresh)]
            new, _, _ = await importer._dedupe_on_ingest(session, profiles, bulk.ChunkResult())
            per_phone = await bulk._customers_per_phone(
                session, sorted({p for row in new for p in row.phones})
            )
            unheld = importer._unheld_phone_keys(new, per_phone)
            key_of = {phone: blocking_key_of_value(context, f"p:{phone}") for phone in (shared, fresh)}
            in_database = await duplicates.holders_by_key(session, sorted(key_of.values()))
            keys = sorted({k for row in new for k in row.keys})
            holders, _ = await importer._holders_and_versions(session, keys, unheld)
    finally:
        await database.dispose()
    assert unheld == {key_of[fresh]}
    assert in_database == {key_of[shared]: [holder]}
    assert holders[key_of[shared]] == [holder]
    assert key_of[fresh] not in holders


async def test_repeated_and_empty_values_inserted_through_the_driver_are_stored_each_as_its_own(
    database_url: str,
) -> None:
    # insert_rows processes a value once per run of the same object and once per kind of empty
    # container: each row still stores its own value (a shared timestamp, {} and [], JSON null).
    shared = datetime(2026, 11, 29, 20, 30, tzinfo=UTC)
    values = [({}, []), ({}, []), ({"a": 1}, ["vip"]), ({}, ["x"]), ({}, [])]
    customers = [
        {
            "id": f"memo-{n}",
            "version": 1,
            "status": "active",
            "first_name": None,
            "attributes": attributes,
            "tags": tags,
            "consents": {},
            "quality_score": 0.0,
            "quality": {},
            "created_at": shared if n != 3 else datetime(2026, 1, 1, tzinfo=UTC),
            "updated_at": shared,
        }
        for n, (attributes, tags) in enumerate(values)
    ]
    raws: list[Any] = [{}, {}, None, {"a": 1}, None, []]
    rows = [
        {"job_id": "memo", "row": n, "outcome": "skipped", "customer_id": None, "errors": [], "raw": raw}
        for n, raw in enumerate(raws)
    ]
    database = Database(database_url)
    try:
        async with database.session() as session:
            await bulk.insert_rows(session, Customer, customers)
            await bulk.insert_rows(session, ImportRow, rows)
        async with database.session() as session:
            stored = (
                await session.execute(
                    text(
                        "SELECT attributes, tags, created_at, updated_at FROM customers "
                        "WHERE id LIKE 'memo-%' ORDER BY id"
                    )
                )
            ).all()
            stored_raws = (
                await session.execute(text("SELECT raw FROM import_rows WHERE job_id = 'memo' ORDER BY row"))
            ).all()
    finally:
        await database.dispose()

    def loaded(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    assert [(loaded(a), loaded(t)) for a, t, _, _ in stored] == values
    created = [str(c) for _, _, c, _ in stored]
    assert created[3] != created[0] == created[1] == created[2] == created[4] == str(stored[0][3])
    assert [loaded(r) for (r,) in stored_raws] == raws


async def test_values_a_json_text_cannot_carry_exactly_are_bound_row_by_row_and_stored_whole(
    database_url: str,
) -> None:
    # On SQLite most of a chunk's rows travel in one JSON text (`_insert_through_json`). A NUL character
    # (SQLite's JSON would cut the text there), a blob that is not UTF-8 and a float go row by row
    # instead; every value is stored as it was given, with the storage class a plain insert gives it,
    # and rows keep their order.
    stamp = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    database = Database(database_url)
    values = {
        "plain": ("é 😀 \\ \" '", b'{"a":"\xc3\xa9"}', 0),
        "binary": ("x", b"\xff\xfe\x00", 2),
        "control": ("tab\tnew\nline\x01", b"", 3),
    }
    if database.is_sqlite:  # PostgreSQL's text holds no NUL
        values["nul"] = ("before\x00after", b"{}", 1)

    def row(name: str, suffix: str) -> dict[str, Any]:
        text_value, payload, attempts = values[name]
        return {
            "event_id": f"{name}-{suffix}",
            "event_type": "t",
            "topic": "t",
            "key": name,
            "payload": payload,
            "created_at": stamp,
            "published_at": None,
            "attempts": attempts,
            "last_error": text_value,
        }

    try:
        for name in values:
            async with database.session() as session:
                await bulk.insert_rows(session, OutboxMessage, [row(name, "bulk"), row(name, "bulk2")])
                connection = await session.connection()
                await connection.execute(insert(OutboxMessage.__table__), [row(name, "plain")])  # type: ignore[attr-defined]
        async with database.session() as session:
            typeof = "typeof({0}), {0}" if database.is_sqlite else "CAST(pg_typeof({0}) AS TEXT), {0}"
            listed = ", ".join(typeof.format(c) for c in ("payload", "attempts", "last_error", "created_at"))
            stored = {
                event_id: tuple(rest)
                for event_id, *rest in (
                    await session.execute(text(f"SELECT event_id, {listed} FROM outbox ORDER BY id"))
                ).all()
            }
            order = list(stored)
    finally:
        await database.dispose()
    for name, (text_value, payload, attempts) in values.items():
        assert stored[f"{name}-bulk"] == stored[f"{name}-plain"] == stored[f"{name}-bulk2"]
        _, stored_payload, _, stored_attempts, _, stored_text, _, _ = stored[f"{name}-bulk"]
        assert (bytes(stored_payload), stored_attempts, stored_text) == (payload, attempts, text_value)
        assert order.index(f"{name}-bulk") + 1 == order.index(f"{name}-bulk2")
