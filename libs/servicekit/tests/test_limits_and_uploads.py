"""Bounds at the edge of every app (body size, JSON depth and numbers, NUL) and the upload dependency
(multipart or raw body, its own size limit), through a real app built by the factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, Request

from servicekit.app import create_service_app
from servicekit.http.limits import item_problems
from servicekit.http.uploads import Upload, upload_dependency
from servicekit.settings import ServiceSettings
from servicekit.testing import TestTokenIssuer, running_app

router = APIRouter(prefix="/v1")


@router.post("/echo")
async def echo(body: dict[str, Any]) -> dict[str, Any]:
    return body


@router.post("/items")
async def items(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """An itemised route: what it received, and the problems of the items the edge took out."""
    problems = {
        str(index): [problem.path, problem.message] for index, problem in item_problems(request.scope).items()
    }
    return {"body": body, "problems": problems}


@router.post("/upload")
async def upload(file: Annotated[Upload, Depends(upload_dependency(2000))]) -> dict[str, Any]:
    return {
        "size": file.size,
        "bytes": len(file.file.read()),
        "type": file.content_type,
        "name": file.filename,
    }


@pytest.fixture
async def client(database_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(
        service_name="limits-test",
        database_url=database_url,
        kafka_enabled=False,
        log_json=False,
        max_body_bytes=1000,
    )
    app = create_service_app(
        settings, title="limits test", routers=[router], itemised_bodies={"/v1/items": "batch"}
    )
    async with running_app(app, token_issuer, signed_in=("admin",)) as client:
        yield client


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    declared = await client.post("/v1/echo", json={"a": "x" * 2000})
    streamed = await client.post("/v1/upload?unused=1", content=chunks())  # no Content-Length, 2000 bytes: ok
    too_long = await client.post("/v1/upload", content=b"y" * 2001)

    assert "1000 bytes" in _problem(declared, 413)["detail"]
    assert streamed.json()["bytes"] == 2000
    assert "2000 bytes" in _problem(too_long, 413)["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"a": NaN}', "body.a"),
        ('{"a": [1, Infinity]}', "body.a.1"),
        ('{"a": {"b": -1e400}}', "body.a.b"),
        ('{"a": 123456789012345678901234567890}', "body.a"),
        ('{"a": "x\\u0000y"}', "body.a"),
        ('{"a": {"b": "x\\udfffy"}}', "body.a.b"),
        ('{"a": {"\\ud800": 1}}', "body.a"),
        ('{"a": 1, "a": 2}', "body.a"),
        ('{"a": [{"b": "kept?", "c": 1, "b": "or this?"}]}', "body.a.0.b"),
        (
            '{"a": ' + "[" * 40 + "]" * 40 + "}",
            "body.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
        ),
    ],
)
async def test_a_json_body_out_of_bounds_is_422_naming_the_value(
    client: httpx.AsyncClient, body: str, field: str
) -> None:
    response = await client.post(
        "/v1/echo", content=body.encode(), headers={"content-type": "application/json"}
    )

    assert [error["field"] for error in _problem(response, 422)["errors"]] == [field]


async def test_json_that_is_not_json_keeps_the_usual_answer(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/echo", content=b"{oops", headers={"content-type": "application/json"})

    assert _problem(response, 422)["errors"][0]["type"] == "json_invalid"


async def test_a_nul_in_the_path_query_or_form_is_400(client: httpx.AsyncClient) -> None:
    _problem(await client.get("/v1/a%00b"), 400)
    _problem(await client.get("/healthz", params={"q": "a\x00"}), 400)
    _problem(await client.post("/v1/echo", data={"username": "a\x00"}), 400)


async def test_an_upload_is_taken_from_multipart_or_raw_body(client: httpx.AsyncClient) -> None:
    multipart = await client.post("/v1/upload", files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")})
    raw = await client.post(
        "/v1/upload", content=b"a,b\n", headers={"content-type": "text/csv; charset=utf-8"}
    )

    assert multipart.json() == {"size": 8, "bytes": 8, "type": "text/csv", "name": "a.csv"}
    assert raw.json() == {"size": 4, "bytes": 4, "type": "text/csv", "name": None}


async def test_a_multipart_upload_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/upload", files={"file": ("a.csv", b"z" * 3000, "text/csv")})

    _problem(response, 413)


async def test_an_itemised_body_loses_only_the_items_out_of_bounds(client: httpx.AsyncClient) -> None:
    """A route that judges items one by one (the track API) gets every item within bounds; an item with a
    NUL or a lone surrogate, a number that is no number, nesting too deep or a repeated key arrives as
    null, its problem named by index and path within the item."""
    body = (
        '{"batch": [{"a": 1}, {"a": "x\\u0000"}, {"n": NaN}, {"b": 1, "b": 2}, '
        + '{"d": '
        + "[" * 31
        + "]" * 31
        + "}"
        + ', "\\ud800 lone", {"z": [1e400]}, 7], "note": "kept"}'
    )

    response = await client.post(
        "/v1/items", content=body.encode(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["body"] == {
        "batch": [{"a": 1}, None, None, None, None, None, None, 7],
        "note": "kept",
    }
    problems = answer["problems"]
    assert sorted(problems, key=int) == ["1", "2", "3", "4", "5", "6"]
    assert problems["1"][0] == "a"
    assert "NUL" in problems["1"][1]
    assert problems["2"][0] == "n"
    assert "finite" in problems["2"][1]
    assert problems["3"] == ["b", "the key is given more than once in its object; send it once"]
    assert "nested deeper than 30 levels" in problems["4"][1]
    assert "lone surrogate" in problems["5"][1]
    assert problems["6"][0] == "z.0"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"batch": [{"a": 1}], "note": "x\\u0000"}', "body.note"),
        ('{"batch": [], "batch": [{"a": 1}]}', "body.batch"),
        (
            '{"batch": [1], "deep": ' + "[" * 40 + "]" * 40 + "}",
            "body.deep.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
        ),
        ('{"items": [{"a": NaN}]}', "body.items.0.a"),
        ('[{"a": NaN}]', "body.0.a"),
    ],
)
async def test_an_itemised_body_out_of_bounds_outside_its_items_is_refused_whole(
    client: httpx.AsyncClient, body: str, field: str
) -> None:
    response = await client.post(
        "/v1/items", content=body.encode(), headers={"content-type": "application/json"}
    )

    assert [error["field"] for error in _problem(response, 422)["errors"]] == [field]
