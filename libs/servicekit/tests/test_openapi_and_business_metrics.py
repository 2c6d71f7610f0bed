"""The OpenAPI document lists the platform's shared problems; business metrics from the database and
counters that move on commit only."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Security
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.app import create_service_app
from servicekit.auth import Caller, require
from servicekit.db import Database
from servicekit.metrics import DatabaseMetric, DatabaseMetrics, Samples, increment_on_commit
from servicekit.settings import ServiceSettings


class Thing(BaseModel):
    name: str


def _app() -> FastAPI:
    router = APIRouter(prefix="/v1")

    @router.post("/things", status_code=201)
    async def create_thing(body: Thing, _: Annotated[Caller, Security(require, scopes=["x"])]) -> Thing:
        return body

    return create_service_app(
        ServiceSettings(database_url="sqlite+aiosqlite://", kafka_enabled=False),
        title="t",
        routers=[router],
    )


def test_the_document_lists_422_as_problem_400_everywhere_413_for_a_body_and_401_behind_a_token() -> None:
    document = _app().openapi()
    responses = document["paths"]["/v1/things"]["post"]["responses"]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status in ("400", "401", "413", "422"):
        assert responses[status]["content"] == problem, status
    assert "400" in document["paths"]["/healthz"]["get"]["responses"], "a NUL in any query is refused"
    assert "413" not in document["paths"]["/healthz"]["get"]["responses"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert not document["paths"]["/healthz"]["get"].get("security")
    assert "401" not in document["paths"]["/healthz"]["get"]["responses"]


async def _count_items(connection: AsyncConnection) -> Samples:
    count = await connection.scalar(sa.text("SELECT count(*) FROM test_items"))
    return [((), float(count or 0))]


async def test_database_metrics_are_recomputed_when_older_than_max_age(database: Database) -> None:
    registry = CollectorRegistry()
    metrics = DatabaseMetrics([DatabaseMetric("items", "Items", _count_items)], registry=registry)
    await metrics.refresh(database, max_age=3600)
    assert registry.get_sample_value("items") == 0
    async with database.session() as session:
        await session.execute(sa.text("INSERT INTO test_items (name, version) VALUES ('a', 1)"))
    await metrics.refresh(database, max_age=3600)
    assert registry.get_sample_value("items") == 0, "a fresh value is served from the cache"
    await metrics.refresh(database, max_age=0)
    assert registry.get_sample_value("items") == 1


async def test_a_counter_moves_when_the_transaction_commits_never_on_rollback(database: Database) -> None:
    registry = CollectorRegistry()
    counter = Counter("things_done", "Things", registry=registry)

    def done() -> float | None:
        return registry.get_sample_value("things_done_total")

    async with database.session() as session:
        increment_on_commit(session, counter, 2)
        assert done() == 0
    assert done() == 2
    try:
        async with database.session() as session:
            increment_on_commit(session, counter, 5)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert done() == 2
