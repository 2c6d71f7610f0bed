"""A full resync of a channel from product-service's API: the real gateway (sync-service's own client,
client_credentials grant), product-service, sync-service and the reference channel server, each on its own
127.0.0.1 port. No broker: sync-service's projection of product-service's events stays empty, as after
lost events or on a new sync-service database, and only the pull from the API can fill it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_stack import Stack
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlmodel import col

from contracts.catalog.products import ProductDetails, VariantFacts
from gateway.config import ALEMBIC_INI as GATEWAY_ALEMBIC_INI
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway_app
from gateway.testing import free_port, serving
from product_service.config import ALEMBIC_INI as PRODUCT_ALEMBIC_INI
from product_service.config import Settings as ProductSettings
from product_service.main import create_app as create_product_app
from servicekit.db import Database
from servicekit.migrations import upgrade
from servicekit.testing import fresh_database
from servicekit.testing.events import eventually
from sync_service.config import ALEMBIC_INI as SYNC_ALEMBIC_INI
from sync_service.config import Settings as SyncSettings
from sync_service.listings import facts
from sync_service.listings.models import CatalogPrice, CatalogProduct
from sync_service.main import create_app as create_sync_app
from sync_service.reference_channel import ReferenceChannel, create_reference_channel

PAGE = 2


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder: Path = tmp_path_factory.mktemp("resync")
    with (
        fresh_database(folder, "e2e_resync_gateway") as gateway_db,
        fresh_database(folder, "e2e_resync_product") as product_db,
        fresh_database(folder, "e2e_resync_sync") as sync_db,
    ):
        upgrade(GATEWAY_ALEMBIC_INI, gateway_db)
        upgrade(PRODUCT_ALEMBIC_INI, product_db)
        upgrade(SYNC_ALEMBIC_INI, sync_db)
        yield {"gateway": gateway_db, "product": product_db, "sync": sync_db}


@dataclass
class ResyncStack:
    stack: Stack
    admin: dict[str, str]
    product_url: str
    product_app: FastAPI
    reference_url: str
    reference: ReferenceChannel
    databases: dict[str, str]
    client_id: str
    client_secret: str
    sync_apps: list[FastAPI] = field(default_factory=list)

    @property
    def http(self) -> httpx.AsyncClient:
        return self.stack.http

    @asynccontextmanager
    async def product_service(self) -> AsyncIterator[None]:
        async with serving(self.product_app, port=int(self.product_url.rsplit(":", 1)[1])):
            yield

    @asynccontextmanager
    async def sync_service(self, **overrides: Any) -> AsyncIterator[str]:
        """sync-service reading product-service at `product_url` with its own client (unless overridden)."""
        gateway_url = self.stack.gateway_url
        settings: dict[str, Any] = {
            "database_url": self.databases["sync"],
            "kafka_enabled": False,
            "log_json": False,
            "jwks_url": f"{gateway_url}/.well-known/jwks.json",
            "jwt_issuer": gateway_url,
            "revocations_url": f"{gateway_url}/.well-known/revocations.json",
            "late_sweep_enabled": False,
            "drift_check_seconds": 0,
            "product_service_url": self.product_url,
            "token_url": f"{gateway_url}/oauth/token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "resync_pull_page_size": PAGE,
            "product_service_timeout_seconds": 5,
            **overrides,
        }
        app = create_sync_app(SyncSettings(**settings))
        self.sync_apps.append(app)
        async with serving(app) as url:
            yield url

    async def product(self, *, price: str, stock: int, title: str | None = None) -> tuple[str, str]:
        """An active product with one SKU, its EUR price and its stock; (product id, SKU)."""
        sku = f"RS-{uuid.uuid4().hex[:10]}"
        created = await self.http.post(
            f"{self.product_url}/v1/products",
            json={"title": title or f"Lamp {sku}", "status": "active", "variants": [{"sku": sku}]},
            headers=self.admin,
        )
        assert created.status_code == 201, created.text
        priced = await self.http.post(
            f"{self.product_url}/v1/prices/{sku}",
            json={"currency": "EUR", "amount": price},
            headers=self.admin,
        )
        assert priced.status_code == 201, priced.text
        location = await self.http.post(
            f"{self.product_url}/v1/locations",
            json={"code": f"wh_{uuid.uuid4().hex[:8]}", "title": "W", "kind": "warehouse"},
            headers=self.admin,
        )
        assert location.status_code == 201, location.text
        received = await self.http.post(
            f"{self.product_url}/v1/inventory/movements",
            json={"kind": "receipt", "sku": sku, "location_id": location.json()["id"], "quantity": stock},
            headers=self.admin,
        )
        assert received.status_code == 201, received.text
        return created.json()["id"], sku

    async def channel(self, sync_url: str) -> dict[str, Any]:
        code = f"web-{uuid.uuid4().hex[:8]}"
        created = await self.http.post(
            f"{sync_url}/v1/channels",
            json={
                "code": code,
                "name": "Web store",
                "kind": "webhook",
                "endpoint": f"{self.reference_url}/channels/{code}/listings",
                "currency": "EUR",
                "locale": "fr-FR",
            },
            headers=self.admin,
        )
        assert created.status_code == 201, created.text
        self.reference.secrets[code] = created.json()["signing_secret"]
        return dict(created.json())

    async def resync(self, sync_url: str, channel: dict[str, Any], **body: Any) -> dict[str, Any]:
        started = await self.http.post(
            f"{sync_url}/v1/channels/{channel['id']}/resync", json=body or None, headers=self.admin
        )
        assert started.status_code == 202, started.text

        async def done() -> dict[str, Any] | None:
            job: dict[str, Any] = (
                await self.http.get(f"{sync_url}/v1/jobs/{started.json()['id']}", headers=self.admin)
            ).json()
            return job if job["status"] in ("succeeded", "failed") else None

        result: dict[str, Any] = await eventually(done)
        return result

    def held(self, channel: dict[str, Any], sku: str) -> dict[str, Any] | None:
        return self.reference.channel(channel["code"]).listings.get(sku)


@pytest.fixture
async def resync_stack(databases: dict[str, str]) -> AsyncIterator[ResyncStack]:
    gateway_port, product_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    gateway_app = create_gateway_app(
        GatewaySettings(
            database_url=databases["gateway"], kafka_enabled=False, log_json=False, jwt_issuer=gateway_url
        )
    )
    product_app = create_product_app(
        ProductSettings(
            database_url=databases["product"],
            kafka_enabled=False,
            log_json=False,
            jwks_url=f"{gateway_url}/.well-known/jwks.json",
            jwt_issuer=gateway_url,
            revocations_url=f"{gateway_url}/.well-known/revocations.json",
            revocations_cache_seconds=0.2,
        )
    )
    reference_app = create_reference_channel()
    async with (
        serving(gateway_app, port=gateway_port),
        serving(reference_app, lifespan="off") as reference_url,
        httpx.AsyncClient(timeout=10) as http,
    ):
        stack = Stack(gateway_url, "", gateway_app.state.gateway, http)
        admin = await stack.admin_headers(f"admin-{uuid.uuid4().hex[:8]}@example.com")
        client_id, secret = await stack.new_client(admin, "sync")
        yield ResyncStack(
            stack=stack,
            admin=admin,
            product_url=f"http://127.0.0.1:{product_port}",
            product_app=product_app,
            reference_url=reference_url,
            reference=reference_app.state.server,
            databases=databases,
            client_id=client_id,
            client_secret=secret,
        )


async def test_a_channel_is_rebuilt_from_product_service_s_api_when_the_projection_is_empty(
    resync_stack: ResyncStack,
) -> None:
    rs = resync_stack
    async with rs.product_service(), rs.sync_service() as sync_url:
        made = [await rs.product(price=f"{10 + i}.50", stock=3 + i) for i in range(5)]
        channel = await rs.channel(sync_url)
        listings = await rs.http.get(f"{sync_url}/v1/channels/{channel['id']}/listings", headers=rs.admin)
        assert listings.json()["items"] == []  # nothing came through events

        job = await rs.resync(sync_url, channel)  # the default, with the credential: product-service

        assert (job["status"], job["source"], job["phase"], job["error"]) == (
            "succeeded",
            "product-service",
            "push",
            None,
        )
        assert job["pulled"] >= len(made) > PAGE  # several pages of PAGE products
        assert job["processed"] == job["total"] >= len(made)

        async def all_received() -> bool:
            return all(rs.held(channel, sku) is not None for _, sku in made)

        await eventually(all_received)
        for i, (_, sku) in enumerate(made):
            held = rs.held(channel, sku)
            assert held is not None
            assert (held["price"], held["quantity"], held["published"]) == (f"{10 + i}.5", 3 + i, True)


async def test_an_older_read_never_overwrites_a_newer_event_fed_fact(resync_stack: ResyncStack) -> None:
    rs = resync_stack
    async with rs.product_service(), rs.sync_service() as sync_url:
        product_id, sku = await rs.product(price="20.00", stock=5, title="Lamp as product-service has it")
        newer = datetime.now(UTC) + timedelta(hours=1)
        database = Database(rs.databases["sync"])
        try:
            async with database.session() as session:  # what newer events told the consumer
                details = ProductDetails(title="Lamp as a newer event said", variants=[VariantFacts(sku=sku)])
                await facts.apply_products(session, [facts.ProductFact(product_id, "active", 99, details)])
                await facts.apply_stock(session, [facts.StockFact(sku, "newer-location", None, 1, newer)])
                await session.commit()
        finally:
            await database.dispose()
        channel = await rs.channel(sync_url)

        job = await rs.resync(sync_url, channel, source="product-service")

        assert job["status"] == "succeeded", job

        async def received() -> dict[str, Any] | None:
            return rs.held(channel, sku)

        held = await eventually(received)
        assert held["title"] == "Lamp as a newer event said"
        assert held["price"] == "20"
        assert held["quantity"] == 6  # 5 read from the API + 1 at the location only the newer event named


async def test_a_token_refused_by_product_service_is_renewed_once(resync_stack: ResyncStack) -> None:
    rs = resync_stack
    async with rs.product_service(), rs.sync_service() as sync_url:
        await rs.product(price="3.00", stock=1)
        channel = await rs.channel(sync_url)
        assert (await rs.resync(sync_url, channel))["status"] == "succeeded"
        token = rs.sync_apps[-1].state.jobs.token
        cached = await token.get(rs.http)
        revoked = await rs.http.post(f"{rs.stack.gateway_url}/oauth/revoke", data={"token": cached})
        assert revoked.status_code == 200
        await asyncio.sleep(0.5)  # product-service's revocation list is cached for 0.2 s

        again = await rs.resync(sync_url, channel)

        assert again["status"] == "succeeded", again
        assert await token.get(rs.http) != cached


async def test_product_service_down_fails_the_job_with_the_reason(resync_stack: ResyncStack) -> None:
    rs = resync_stack
    async with rs.sync_service() as sync_url:  # product-service is not running
        channel = await rs.channel(sync_url)
        job = await rs.resync(sync_url, channel)
    assert (job["status"], job["phase"], job["pulled"]) == ("failed", "pull", 0)
    assert f"reading {rs.product_url}/v1/channel-facts failed: ConnectError" in job["error"]


async def test_a_bad_credential_fails_the_job_with_the_reason(resync_stack: ResyncStack) -> None:
    rs = resync_stack
    async with rs.product_service(), rs.sync_service(client_secret="not-the-secret") as sync_url:
        channel = await rs.channel(sync_url)
        job = await rs.resync(sync_url, channel)
    assert (job["status"], job["phase"], job["pulled"]) == ("failed", "pull", 0)
    assert "the gateway refused sync-service's client credentials (HTTP 401" in job["error"]


def _hostile_product_service(good: dict[str, Any], garbage: Any) -> FastAPI:
    """A product-service that answers a good first page, then garbage."""
    app = FastAPI()

    @app.get("/v1/channel-facts")
    async def facts_page(request: Request) -> Response:
        if request.query_params.get("cursor") is None:
            return JSONResponse({"items": [good], "next_cursor": "page-2"})
        if isinstance(garbage, bytes):
            return Response(garbage, media_type="application/json")
        return JSONResponse(garbage)

    return app


async def test_a_garbage_page_fails_the_job_and_keeps_the_pages_before_it(resync_stack: ResyncStack) -> None:
    rs = resync_stack
    sku = f"RS-{uuid.uuid4().hex[:10]}"
    product_id = str(uuid.uuid4())
    good = {
        "product_id": product_id,
        "status": "active",
        "version": 1,
        "details": {"title": "Read before the garbage", "variants": [{"sku": sku}]},
        "prices": [
            {
                "sku": sku,
                "currency": "EUR",
                "channel": None,
                "amount": "5.00",
                "effective_from": "2026-01-01T00:00:00Z",
            }
        ],
        "stock": [],
    }
    stranger = {**good, "product_id": "zzz", "prices": [{**good["prices"][0], "sku": "NOT-ITS-SKU"}]}
    cases = [
        ({"items": [{"product_id": 5}], "next_cursor": None}, "items.0.product_id"),
        (b'{"items": [', "is not a catalogue page"),
        ({"items": [stranger], "next_cursor": None}, "not the product's"),
        ({"items": [good], "next_cursor": "page-2"}, "growing product-id order"),
        ({"items": [good] * (PAGE + 1), "next_cursor": None}, f"to a page of {PAGE}"),
    ]
    for garbage, reason in cases:
        hostile = _hostile_product_service(good, garbage)
        async with (
            serving(hostile) as hostile_url,
            rs.sync_service(product_service_url=hostile_url) as sync_url,
        ):
            channel = await rs.channel(sync_url)
            job = await rs.resync(sync_url, channel)
        assert (job["status"], job["pulled"]) == ("failed", 1), (reason, job)
        assert reason in job["error"], (reason, job)
    database = Database(rs.databases["sync"])
    try:
        async with database.session() as session:
            kept = await session.get(CatalogProduct, product_id)
            assert kept is not None
            assert kept.title == "Read before the garbage"
            assert await session.get(CatalogProduct, "zzz") is None
            strangers = await session.execute(
                select(CatalogPrice).where(col(CatalogPrice.sku) == "NOT-ITS-SKU")
            )
            assert strangers.scalars().all() == []
    finally:
        await database.dispose()


async def test_a_token_endpoint_or_product_service_that_hangs_fails_the_job_in_bounded_time(
    resync_stack: ResyncStack,
) -> None:
    rs = resync_stack
    hanging = FastAPI()

    @hanging.post("/oauth/token")
    async def slow_token() -> Response:
        await asyncio.sleep(5)
        return JSONResponse({"access_token": "x", "token_type": "Bearer", "expires_in": 60})

    @hanging.get("/v1/channel-facts")
    async def slow_page() -> Response:
        await asyncio.sleep(5)
        return JSONResponse({"items": [], "next_cursor": None})

    async with serving(hanging) as hanging_url:
        for overrides, reason in (
            ({"token_url": f"{hanging_url}/oauth/token"}, "getting sync-service's token"),
            ({"product_service_url": hanging_url}, f"reading {hanging_url}/v1/channel-facts"),
        ):
            async with rs.sync_service(product_service_timeout_seconds=1, **overrides) as sync_url:
                channel = await rs.channel(sync_url)
                job = await rs.resync(sync_url, channel)
            assert job["status"] == "failed", job
            assert reason in job["error"], job
            assert "timed out after 1 s" in job["error"], job


async def test_two_resyncs_of_one_channel_at_once_run_one(resync_stack: ResyncStack) -> None:
    rs = resync_stack
    async with rs.product_service(), rs.sync_service() as sync_url:
        channel = await rs.channel(sync_url)
        url = f"{sync_url}/v1/channels/{channel['id']}/resync"
        answers = await asyncio.gather(*(rs.http.post(url, headers=rs.admin) for _ in range(4)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses[0] == 202
        assert statuses.count(202) == 1
        assert set(statuses[1:]) == {409}
