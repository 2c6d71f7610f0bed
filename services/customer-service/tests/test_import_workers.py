"""Import validation in worker processes: the same rows, errors and profiles as validation in the
service process, in every error mode, and a worker that dies leaves its blocks to the service."""

import asyncio
import dataclasses
import multiprocessing.forkserver
import os
import random
import string
from typing import Any

import httpx
import pytest
from customer_helpers import new_email, unique

from customer_service.config import Settings
from customer_service.context import CustomerContext
from customer_service.imports import service as import_service
from customer_service.imports import workers
from customer_service.imports.cleansing import CheckedRow, check_packed, check_rows, unpack_checked
from servicekit.testing import TestTokenIssuer

WRITE = ("customers:read", "customers:write", "customers:pii")
HEADER = "first_name,last_name,email,phone,birthday,line1,city,postcode,region,address_country,tags\n"
ROWS = 16


def _name() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=12)).capitalize()


def _die(*args: Any) -> None:
    os._exit(3)  # a worker process killed in the middle of a block


def _file(tag: str) -> str:
    """Good rows, a row with a bad email, one with a bad postcode and one with an impossible birthday,
    mixed through the file so that every block has some."""
    rows = []
    for n in range(ROWS):
        first, last, street = _name(), _name(), _name()  # rows that resemble no other row
        email, postcode, birthday = new_email(), f"6900{n % 9 + 1}", "1990-01-02"
        if n % 5 == 1:
            email = "not-an-email"
        elif n % 5 == 2:
            postcode = "ABCDE"
        elif n % 5 == 3:
            birthday = "1990-02-31"
        rows.append(
            f"{first},{last},{email},+3361{n:07d},{birthday},{n} Rue {street},Lyon,{postcode},ara,FR,{tag}"
        )
    return HEADER + "\n".join(rows)


def _comparable(rows: list[CheckedRow]) -> list[Any]:
    """The rows without what differs from one validation to the next (address ids, time stamps)."""
    out = []
    for row in rows:
        data = dataclasses.asdict(row)
        profile = data["profile"]
        if profile is not None:
            for address in profile["contact"]["addresses"]:
                address.pop("id")
            for item in profile["contact"]["emails"] + profile["contact"]["phones"]:
                item.pop("added_at")
            profile["external_ids"] = [(e.source, e.id) for e in row.profile.external_ids or []]  # type: ignore[union-attr]
        out.append(data)
    return out


@pytest.mark.parametrize("mode", ["refuse", "skip_row", "drop_field"])
def test_a_packed_block_comes_back_as_the_rows_validated_here(mode: str) -> None:
    context = CustomerContext.from_settings(Settings(database_url="sqlite+aiosqlite://"))
    rows = import_service.parse(_file("t").encode(), "csv")
    ndjson = import_service.parse(
        b'{"first_name": "Ana", "emails": [{"address": "ana@example.com"}], '
        b'"external_ids": [{"source": "pos", "id": "A-1"}], "birthday": "1980/3/4"}\n',
        "ndjson",
    )
    for fmt, block in (("csv", rows), ("ndjson", ndjson)):
        here = check_rows(context, block, fmt, mode)
        there = unpack_checked(
            block, check_packed(context.default_region, [(r.number, r.data) for r in block], fmt, mode)
        )
        assert _comparable(there) == _comparable(here)
        assert [row.raw for row in there] == [row.raw for row in block]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of two rows, and the worker processes up before the import starts."""
    monkeypatch.setattr(import_service, "VALIDATION_BLOCK_ROWS", 2)
    pool = workers.VALIDATION.pool(2)
    assert pool is not None
    for future in [pool.submit(workers.ready) for _ in range(4)]:
        future.result(timeout=60)


async def _import(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, content: str, mode: str
) -> dict[str, Any]:
    headers = tokens.auth_header("customers:write")
    response = await client.post(
        "/v1/imports", params={"on_error": mode}, files={"file": ("c.csv", content.encode())}, headers=headers
    )
    assert response.status_code == 202, response.text
    for _ in range(600):
        job: dict[str, Any] = (
            await client.get(f"/v1/imports/{response.json()['id']}", headers=headers)
        ).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")


async def _outcomes(client: httpx.AsyncClient, tokens: TestTokenIssuer, job_id: str) -> list[tuple[int, str]]:
    response = await client.get(
        f"/v1/imports/{job_id}/rows", params={"limit": 100}, headers=tokens.auth_header("customers:write")
    )
    return [(item["row"], item["outcome"]) for item in response.json()["items"]]


def _expected(mode: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The error (row, field) and outcome (row, outcome) of every row of `_file` in `mode`."""
    errors, outcomes = [], []
    for n in range(ROWS):
        field = {1: "email", 2: "postcode", 3: "birthday"}.get(n % 5)
        if field:
            errors.append((n + 1, field))
        if mode == "refuse":
            if field:
                outcomes.append((n + 1, "refused"))
        elif field and mode == "skip_row":
            outcomes.append((n + 1, "skipped"))
        else:
            outcomes.append((n + 1, "created"))
    return errors, outcomes


@pytest.mark.parametrize("mode", ["refuse", "skip_row", "drop_field"])
async def test_a_file_validated_by_worker_processes_imports_as_the_mode_says(
    client: httpx.AsyncClient,
    token_issuer: TestTokenIssuer,
    small_blocks: None,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[int] = []
    run = workers.VALIDATION.run

    async def counted(pool: Any, function: Any, *args: Any) -> Any:
        sent.append(len(args[1]))
        return await run(pool, function, *args)

    monkeypatch.setattr(workers.VALIDATION, "run", counted)
    tag = f"wk-{unique()}"

    job = await _import(client, token_issuer, _file(tag), mode)

    errors, outcomes = _expected(mode)
    assert job["status"] == ("failed" if mode == "refuse" else "succeeded")
    assert [(e["row"], e["field"]) for e in job["errors"]] == errors
    assert sorted(await _outcomes(client, token_issuer, job["id"])) == outcomes
    assert sent  # the workers validated some blocks,
    assert sum(sent) < ROWS  # this process the others


async def test_blocks_of_a_worker_process_that_died_are_validated_by_the_service(
    client: httpx.AsyncClient,
    token_issuer: TestTokenIssuer,
    small_blocks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = workers.VALIDATION.pool(2)
    monkeypatch.setattr(import_service, "check_packed", _die)
    tag = f"wk-{unique()}"

    job = await _import(client, token_issuer, _file(tag), "drop_field")

    errors, outcomes = _expected("drop_field")
    assert job["status"] == "succeeded"
    assert [(e["row"], e["field"]) for e in job["errors"]] == errors
    assert sorted(await _outcomes(client, token_issuer, job["id"])) == outcomes
    assert workers.VALIDATION.pool(2) is not pool  # the broken pool was let go; a new one starts


async def test_two_imports_validated_by_the_workers_at_once_each_get_their_own_rows(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, small_blocks: None
) -> None:
    first, second = f"wk-{unique()}", f"wk-{unique()}"

    jobs = await asyncio.gather(
        _import(client, token_issuer, _file(first), "skip_row"),
        _import(client, token_issuer, _file(second), "drop_field"),
    )

    for job, mode in zip(jobs, ("skip_row", "drop_field"), strict=True):
        errors, outcomes = _expected(mode)
        assert job["status"] == "succeeded"
        assert [(e["row"], e["field"]) for e in job["errors"]] == errors
        assert sorted(await _outcomes(client, token_issuer, job["id"])) == outcomes
    for tag, mode in ((first, "skip_row"), (second, "drop_field")):
        kept = sum(outcome == "created" for _, outcome in _expected(mode)[1])
        response = await client.get(
            "/v1/customers", params={"tag": tag, "limit": 100}, headers=token_issuer.auth_header(*WRITE)
        )
        assert len(response.json()["items"]) == kept


async def test_the_workers_stop_when_idle_and_the_next_import_starts_them_again(
    client: httpx.AsyncClient,
    token_issuer: TestTokenIssuer,
    small_blocks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "IDLE_SECONDS", 0.3)
    used = workers.VALIDATION.pool(2)

    first = await _import(client, token_issuer, _file(f"wk-{unique()}"), "skip_row")
    for _ in range(100):
        if workers.VALIDATION._pool is None:
            break
        await asyncio.sleep(0.05)
    stopped = workers.VALIDATION._pool is None
    # Long enough now that the pool the second upload starts is still there when the test looks (on a
    # slow host the job's polling may return more than 0.3 s after the import ended).
    monkeypatch.setattr(workers, "IDLE_SECONDS", 60.0)
    second = await _import(client, token_issuer, _file(f"wk-{unique()}"), "skip_row")

    assert stopped
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert workers.VALIDATION._pool is not None
    assert workers.VALIDATION._pool is not used  # started again by the second upload


async def test_starting_the_workers_does_not_hold_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh fork server that takes 2 s to import what it preloads. An upload starts the workers while it
    # reads the file; their spawning waits for the fork server, and it used to do so in the upload's
    # request, holding the event loop (every request the service was serving) that long.
    workers.shutdown()
    multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
    monkeypatch.setattr(workers, "_PRELOAD", [*workers._PRELOAD, "slow_fork_server_preload"])
    try:
        workers.warm(2)
        pool = workers.VALIDATION._pool
        assert pool is not None
        assert not pool._processes  # type: ignore[attr-defined]  # still spawning, in the background

        ticks = 0
        while not pool._processes:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)  # the loop runs meanwhile
            ticks += 1
        assert ticks > 10
        assert await workers.VALIDATION.run(pool, workers.ready) is True
    finally:
        workers.shutdown()
        multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
