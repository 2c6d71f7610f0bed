"""The app factory's probes, metrics and OpenAPI document, against the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import text

from servicekit.app import create_service_app
from servicekit.broker import free_port
from servicekit.errors import NotFound, problem_responses
from servicekit.events import ConsumerSpec
from servicekit.settings import ServiceSettings
from servicekit.testing import TestTokenIssuer, running_app

router = APIRouter(prefix="/v1/items")


@router.get("/{item_id}", responses=problem_responses(404))
async def read_item(item_id: int) -> dict[str, int]:
    """Item 0 does not exist; every other id does."""
    if item_id == 0:
        raise NotFound("No item has id 0.")
    return {"id": item_id}


outer = APIRouter(prefix="/v1/outer")
inner = APIRouter(prefix="/inner")


@inner.get("/{name}")
async def read_inner(name: str) -> dict[str, str]:
    """A route of a router that another router includes."""
    return {"name": name}


outer.include_router(inner)


def settings_for(database_url: str, kafka_bootstrap: str, **overrides: object) -> ServiceSettings:
    return ServiceSettings.model_validate(
        {
            "service_name": "app-test",
            "database_url": database_url,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "log_json": False,
            **overrides,
        }
    )


@pytest.fixture
async def client(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(settings_for(database_url, kafka_bootstrap), title="app test", routers=[router])
    async with running_app(app, token_issuer, signed_in=("admin",)) as client:
        yield client


@pytest.fixture
async def client_without_kafka(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(database_url, "127.0.0.1:9", kafka_enabled=False)
    async with running_app(create_service_app(settings, title="app test", routers=[router])) as client:
        yield client


async def test_the_app_s_sqlite_connections_take_the_page_cache_setting(tmp_path: Path) -> None:
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", "127.0.0.1:9", kafka_enabled=False
    ).model_copy(update={"database_sqlite_cache_kib": 12345})
    app = create_service_app(settings, title="app test", routers=[router])
    async with running_app(app), app.state.database.engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA cache_size"))).scalar() == -12345


async def test_healthz_answers_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_and_broker_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_readyz_answers_503_naming_the_broker_when_kafka_is_unreachable(database_url: str) -> None:
    settings = settings_for(database_url, f"127.0.0.1:{free_port()}")
    app = create_service_app(settings, title="app test", routers=[router])
    async with running_app(app, wait_for_kafka=False) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert "broker" in problem["detail"]
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["broker"] != "ok"


async def test_readyz_without_kafka_reports_only_the_database(
    client_without_kafka: httpx.AsyncClient,
) -> None:
    response = await client_without_kafka.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_metrics_count_requests_by_route_template_not_raw_path(client: httpx.AsyncClient) -> None:
    await client.get("/v1/items/4711")
    await client.get("/v1/items/0")

    body = (await client.get("/metrics")).text

    assert 'http_requests_total{method="GET",route="/v1/items/{item_id}",status="200"}' in body
    assert 'http_requests_total{method="GET",route="/v1/items/{item_id}",status="404"}' in body
    assert 'http_request_duration_seconds_count{method="GET",route="/v1/items/{item_id}"}' in body
    assert "/v1/items/4711" not in body


async def test_unmatched_paths_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    await client.get("/no/such/path/8f3a")
    body = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="<unmatched>",status="404"}' in body
    assert "8f3a" not in body


async def test_openapi_lists_problem_responses(client_without_kafka: httpx.AsyncClient) -> None:
    document = (await client_without_kafka.get("/openapi.json")).json()

    not_found = document["paths"]["/v1/items/{item_id}"]["get"]["responses"]["404"]
    assert not_found["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]
    assert {"title", "status", "detail", "request_id", "errors"} <= set(
        document["components"]["schemas"]["Problem"]["properties"]
    )


@pytest.fixture
async def client_with_nested_router(
    database_url: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(database_url, "127.0.0.1:9", kafka_enabled=False)
    app = create_service_app(settings, title="app test", routers=[router, outer])
    async with running_app(app, token_issuer, signed_in=("admin",)) as client:
        yield client


async def test_routes_of_nested_routers_are_served(client_with_nested_router: httpx.AsyncClient) -> None:
    response = await client_with_nested_router.get("/v1/outer/inner/ada")

    assert response.status_code == 200
    assert response.json() == {"name": "ada"}


async def test_a_known_path_with_another_method_gets_405(
    client_with_nested_router: httpx.AsyncClient,
) -> None:
    response = await client_with_nested_router.delete("/v1/items/4711")

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


async def _noop(session: object, event: object) -> None:
    return None


@pytest.mark.parametrize("enabled", [True, False])
async def test_kafka_consumers_enabled_decides_whether_consumers_run(
    database_url: str, kafka_bootstrap: str, enabled: bool
) -> None:
    spec = ConsumerSpec(name=f"app-test-{enabled}", handlers={"ecom.customer.created.v1": _noop})
    settings = settings_for(database_url, kafka_bootstrap, KAFKA_CONSUMERS_ENABLED=enabled)
    app = create_service_app(settings, title="app test", routers=[router], consumers=[spec])
    async with running_app(app):
        assert len(app.state.runtime.consumers) == (1 if enabled else 0)
        assert app.state.runtime.kafka_ready.is_set()
