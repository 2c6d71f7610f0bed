"""Cursor pagination, Idempotency-Key, ETag/If-Match and the request session, over a real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlmodel import col

from servicekit.app import create_service_app
from servicekit.db import Database
from servicekit.dependencies import SessionDep
from servicekit.errors import BadRequest, Conflict, NotFound, problem_responses
from servicekit.http import idempotency
from servicekit.http.concurrency import IfMatchDep, check_if_match, etag_for, set_etag
from servicekit.http.pagination import Page, PageParams, make_page, page_params
from servicekit.settings import ServiceSettings
from servicekit.testing import TestTokenIssuer, running_app

from .support import Item

router = APIRouter(prefix="/v1/items")


class ItemCreate(BaseModel):
    name: str


class ItemUpdate(BaseModel):
    name: str


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    version: int


@router.get("", response_model=Page[ItemRead], responses=problem_responses(400))
async def list_items(session: SessionDep, params: Annotated[PageParams, Depends(page_params)]) -> Page[Item]:
    """Items in id order, a page at a time."""
    query = select(Item).order_by(col(Item.id)).limit(params.limit + 1)
    if params.cursor is not None:
        after = params.cursor.get("id")
        if not isinstance(after, int):
            raise BadRequest("The cursor is not valid.")
        query = query.where(col(Item.id) > after)
    items = list((await session.execute(query)).scalars().all())
    return make_page(items, params.limit, lambda item: {"id": item.id})


@router.post("", status_code=201, response_model=ItemRead, responses=problem_responses(409, 422))
async def create_item(
    body: ItemCreate, session: SessionDep, idempotency_key: idempotency.IdempotencyKeyDep
) -> Response:
    """Create an item; a retry with the same Idempotency-Key returns the first answer."""
    request_fingerprint = idempotency.fingerprint(body.model_dump())
    if idempotency_key is not None:
        stored = await idempotency.lookup(
            session, scope="items.create", key=idempotency_key, request_fingerprint=request_fingerprint
        )
        if stored is not None:
            return stored.to_response()
    item = Item(name=body.name, version=1)
    session.add(item)
    await session.flush()
    headers = {"ETag": etag_for(item.version)}
    response = JSONResponse(ItemRead.model_validate(item).model_dump(), status_code=201, headers=headers)
    if idempotency_key is not None:
        await idempotency.remember(
            session,
            scope="items.create",
            key=idempotency_key,
            request_fingerprint=request_fingerprint,
            status_code=response.status_code,
            body=bytes(response.body),
            headers=headers,
        )
    return response


@router.post("/failing", responses=problem_responses(409))
async def create_item_then_fail(body: ItemCreate, session: SessionDep) -> None:
    """Write an item, then fail: the write must not survive."""
    session.add(Item(name=body.name, version=1))
    await session.flush()
    raise Conflict("Changed my mind.")


async def get_item_or_404(item_id: int, session: SessionDep) -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise NotFound(f"No item has id {item_id}.")
    return item


ItemDep = Annotated[Item, Depends(get_item_or_404)]


@router.get("/{item_id}", response_model=ItemRead, responses=problem_responses(404))
async def read_item(item: ItemDep, response: Response) -> Item:
    """One item, with its ETag."""
    set_etag(response, item.version)
    return item


@router.patch("/{item_id}", response_model=ItemRead, responses=problem_responses(404, 412, 428))
async def update_item(item: ItemDep, body: ItemUpdate, if_match: IfMatchDep, response: Response) -> Item:
    """Rename an item; 412 if the If-Match version is stale, 428 without If-Match."""
    check_if_match(if_match, item.version)
    item.name = body.name
    item.version += 1
    set_etag(response, item.version)
    return item


@pytest.fixture
async def client(database_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(
        service_name="http-helpers-test", database_url=database_url, kafka_enabled=False, log_json=False
    )
    app = create_service_app(settings, title="helpers test", routers=[router])
    async with running_app(app, token_issuer, signed_in=("admin",)) as client:
        yield client


def unique_name() -> str:
    return f"item-{uuid.uuid4().hex[:12]}"


async def rows_named(database: Database, name: str) -> int:
    async with database.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Item).where(col(Item.name) == name))
        return int(count or 0)


async def create(client: httpx.AsyncClient, name: str | None = None) -> dict[str, object]:
    response = await client.post("/v1/items", json={"name": name or unique_name()})
    assert response.status_code == 201
    item: dict[str, object] = response.json()
    return item


async def test_pagination_walks_every_item_once_in_stable_order(
    client: httpx.AsyncClient, database: Database
) -> None:
    for _ in range(7):
        await create(client)
    async with database.sessionmaker() as session:
        all_ids = list((await session.execute(select(col(Item.id)).order_by(col(Item.id)))).scalars())

    seen: list[int] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/items", params=params)
        assert response.status_code == 200
        page = response.json()
        assert len(page["items"]) <= 3
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == all_ids
    assert len(set(seen)) == len(seen)
    assert pages == -(-len(all_ids) // 3)


async def test_last_page_has_no_next_cursor(client: httpx.AsyncClient) -> None:
    await create(client)
    response = await client.get("/v1/items", params={"limit": 500})
    assert response.json()["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["not a cursor!", "W10", "%%%"])
async def test_bad_cursor_gets_400_problem(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/v1/items", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The cursor is not valid."


async def test_retried_post_with_same_idempotency_key_returns_first_answer_and_creates_one_row(
    client: httpx.AsyncClient, database: Database
) -> None:
    name, headers = unique_name(), {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/v1/items", json={"name": name}, headers=headers)
    retry = await client.post("/v1/items", json={"name": name}, headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["etag"] == first.headers["etag"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert await rows_named(database, name) == 1


async def test_same_idempotency_key_with_a_different_body_gets_422(
    client: httpx.AsyncClient, database: Database
) -> None:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/v1/items", json={"name": unique_name()}, headers=headers)
    assert first.status_code == 201

    other_name = unique_name()
    response = await client.post("/v1/items", json={"name": other_name}, headers=headers)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert await rows_named(database, other_name) == 0


async def test_posts_without_idempotency_key_each_create_a_row(
    client: httpx.AsyncClient, database: Database
) -> None:
    name = unique_name()
    first = await create(client, name)
    second = await create(client, name)
    assert first["id"] != second["id"]
    assert await rows_named(database, name) == 2


async def test_get_returns_the_etag_of_the_current_version(client: httpx.AsyncClient) -> None:
    item = await create(client)
    response = await client.get(f"/v1/items/{item['id']}")
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'


async def test_patch_with_current_etag_succeeds_and_bumps_it(client: httpx.AsyncClient) -> None:
    item = await create(client)
    etag = (await client.get(f"/v1/items/{item['id']}")).headers["etag"]

    response = await client.patch(
        f"/v1/items/{item['id']}", json={"name": "renamed"}, headers={"If-Match": etag}
    )

    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    current = await client.get(f"/v1/items/{item['id']}")
    assert current.json()["name"] == "renamed"
    assert current.headers["etag"] == '"2"'


async def test_stale_if_match_gets_412_and_leaves_the_item_unchanged(client: httpx.AsyncClient) -> None:
    item = await create(client)
    stale_etag = (await client.get(f"/v1/items/{item['id']}")).headers["etag"]
    first = await client.patch(
        f"/v1/items/{item['id']}", json={"name": "first writer"}, headers={"If-Match": stale_etag}
    )
    assert first.status_code == 200

    response = await client.patch(
        f"/v1/items/{item['id']}", json={"name": "lost update"}, headers={"If-Match": stale_etag}
    )

    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    current = await client.get(f"/v1/items/{item['id']}")
    assert current.json() == {"id": item["id"], "name": "first writer", "version": 2}


async def test_weak_etag_in_if_match_never_matches(client: httpx.AsyncClient) -> None:
    item = await create(client)
    etag = (await client.get(f"/v1/items/{item['id']}")).headers["etag"]
    response = await client.patch(
        f"/v1/items/{item['id']}", json={"name": "weak"}, headers={"If-Match": f"W/{etag}"}
    )
    assert response.status_code == 412


async def test_patch_without_if_match_gets_428(client: httpx.AsyncClient) -> None:
    item = await create(client)
    response = await client.patch(f"/v1/items/{item['id']}", json={"name": "blind write"})
    assert response.status_code == 428
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/v1/items/{item['id']}")).json()["name"] == item["name"]


async def test_session_commits_when_the_route_succeeds(client: httpx.AsyncClient, database: Database) -> None:
    name = unique_name()
    await create(client, name)
    assert await rows_named(database, name) == 1


async def test_session_rolls_back_when_the_route_raises(
    client: httpx.AsyncClient, database: Database
) -> None:
    name = unique_name()
    response = await client.post("/v1/items/failing", json={"name": name})
    assert response.status_code == 409
    assert await rows_named(database, name) == 0
