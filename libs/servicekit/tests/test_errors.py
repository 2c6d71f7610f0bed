"""Every failure a client can meet is an RFC 9457 problem+json document carrying the request id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, Field

from servicekit.app import create_service_app
from servicekit.errors import Conflict, NotFound, PreconditionFailed, ServiceError, problem_responses
from servicekit.settings import ServiceSettings
from servicekit.testing import TestTokenIssuer, running_app

router = APIRouter(prefix="/v1")


class ThingCreate(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(ge=0)


@router.post("/things", status_code=201)
async def create_thing(body: ThingCreate) -> ThingCreate:
    """Echo a valid thing."""
    return body


@router.get("/things")
async def list_things() -> list[ThingCreate]:
    """The things (one, always)."""
    return [ThingCreate(name="bolt", quantity=3)]


@router.get("/missing", responses=problem_responses(404))
async def missing() -> None:
    """Always 404."""
    raise NotFound("No thing has id 7.")


@router.post("/conflicting", responses=problem_responses(409))
async def conflicting() -> None:
    """Always 409."""
    raise Conflict("A thing with this name exists.")


@router.put("/stale", responses=problem_responses(412))
async def stale() -> None:
    """Always 412."""
    raise PreconditionFailed("The thing has changed.")


@router.get("/bug")
async def bug() -> None:
    """A bug: an exception no handler expects."""
    raise RuntimeError("secret internals: password=hunter2")


@pytest.fixture
async def client(tmp_path: Path, token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(
        service_name="errors-test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'errors.db'}",
        kafka_enabled=False,
        log_json=False,
    )
    app = create_service_app(settings, title="errors test", routers=[router])
    async with running_app(app, token_issuer, signed_in=("admin",)) as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = response.json()
    assert problem["status"] == status
    return problem


async def test_invalid_body_gets_422_listing_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/things", json={"name": "", "quantity": -1})
    problem = assert_problem(response, 422)
    assert isinstance(problem["errors"], list)
    assert sorted(error["field"] for error in problem["errors"]) == ["body.name", "body.quantity"]
    assert all(error["message"] for error in problem["errors"])


async def test_missing_body_field_is_named_in_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/things", json={"quantity": 1})
    problem = assert_problem(response, 422)
    assert problem["errors"] == [{"field": "body.name", "message": "Field required", "type": "missing"}]


async def test_unknown_route_gets_404_problem(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/v1/no-such-thing"), 404)
    assert problem["title"] == "Not Found"


async def test_wrong_method_gets_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/things")
    problem = assert_problem(response, 405)
    assert problem["title"] == "Method Not Allowed"
    # Every method of the path's routes (GET and POST are two routes), not only the first one's.
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert problem["detail"] == "DELETE is not allowed on /v1/things; allowed: GET, HEAD, POST."


async def test_head_is_answered_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    get = await client.get("/v1/things")
    head = await client.head("/v1/things")
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    # An error answers HEAD with its status and headers too.
    missing = await client.head("/v1/missing")
    assert (missing.status_code, missing.content) == (404, b"")
    assert missing.headers["content-type"] == "application/problem+json"


async def test_head_on_a_path_without_get_is_405(client: httpx.AsyncClient) -> None:
    response = await client.head("/v1/conflicting")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "path", "status", "title", "detail"),
    [
        ("GET", "/v1/missing", 404, "Not Found", "No thing has id 7."),
        ("POST", "/v1/conflicting", 409, "Conflict", "A thing with this name exists."),
        ("PUT", "/v1/stale", 412, "Precondition Failed", "The thing has changed."),
    ],
)
async def test_service_error_renders_its_status_title_and_detail(
    client: httpx.AsyncClient, method: str, path: str, status: int, title: str, detail: str
) -> None:
    problem = assert_problem(await client.request(method, path), status)
    assert problem["title"] == title
    assert problem["detail"] == detail
    assert problem["instance"] == path


def test_service_error_with_a_custom_status_takes_that_status_phrase_as_title() -> None:
    error = ServiceError("Slow down.", status=429)
    assert (error.status, error.title, error.detail) == (429, "Too Many Requests", "Slow down.")


@pytest.mark.parametrize(
    ("status", "title"), [(422, "Unprocessable Content"), (413, "Content Too Large"), (409, "Conflict")]
)
def test_titles_are_rfc_9110_reason_phrases(status: int, title: str) -> None:
    # Python 3.11's HTTPStatus still says "Unprocessable Entity" and "Request Entity Too Large": a
    # shipment webhook's 422 said one and every other 422 the other.
    assert ServiceError("x", status=status).title == title
    assert problem_responses(status)[status]["description"] == title


async def test_a_starlette_413_is_titled_as_rfc_9110_names_it(client: httpx.AsyncClient) -> None:
    big = b"{" + b" " * (1_048_576 + 10) + b"}"
    problem = assert_problem(
        await client.post("/v1/things", content=big, headers={"Content-Type": "application/json"}), 413
    )
    assert problem["title"] == "Content Too Large"


async def test_unhandled_exception_gets_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/bug")
    problem = assert_problem(response, 500)
    assert problem["title"] == "Internal Server Error"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/things", {"name": ""}),
        ("GET", "/v1/no-such-thing", None),
        ("DELETE", "/v1/things", None),
        ("GET", "/v1/missing", None),
        ("GET", "/v1/bug", None),
    ],
)
async def test_every_problem_carries_the_request_id_of_its_response(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = await client.request(method, path, json=body)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-request-id"]


async def test_incoming_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/missing", headers={"X-Request-ID": "storefront-42:retry.1"})
    assert response.headers["x-request-id"] == "storefront-42:retry.1"
    assert response.json()["request_id"] == "storefront-42:retry.1"


async def test_unsafe_incoming_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "evil\tid <script>"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "evil\tid <script>"
    assert len(response.headers["x-request-id"]) == 32
