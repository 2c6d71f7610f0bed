"""One API document: the gateway's operations plus each service's under /api/..., with OAuth2 flows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from fastapi import FastAPI
from gateway_harness import RunningGateway
from pydantic import BaseModel

from contracts.docs import render_asyncapi_yaml, render_events_md
from gateway.testing import free_port, serving


class Thing(BaseModel):
    name: str


def _service_app() -> FastAPI:
    app = FastAPI(title="thing service")

    @app.get(
        "/v1/things/{thing_id}",
        response_model=Thing,
        tags=["things"],
        openapi_extra={"security": [{"HTTPBearer": []}]},
    )
    async def get_thing(thing_id: str) -> Thing:
        return Thing(name=thing_id)

    @app.get("/v1/public-things", response_model=list[Thing], tags=["things"])
    async def public_things() -> list[Thing]:
        return []

    return app


async def test_docs_merge_each_service_under_its_api_path(start_gateway: Callable[..., Any]) -> None:
    async with (
        serving(_service_app()) as url,
        start_gateway(customer_url=url, product_url=f"http://127.0.0.1:{free_port()}") as gw,
    ):
        document = (await gw.http.get("/openapi.json")).json()

    operation = document["paths"]["/api/customers/v1/things/{thing_id}"]["get"]
    schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref == "#/components/schemas/Customers_Thing"
    assert "Customers_Thing" in document["components"]["schemas"]
    assert {"OAuth2ClientCredentials": []} in operation["security"]
    assert "/oauth/token" in document["paths"]
    assert "/v1/whoami" in document["paths"]


async def test_public_operations_are_not_marked_as_needing_a_token(start_gateway: Callable[..., Any]) -> None:
    async with (
        serving(_service_app()) as url,
        start_gateway(customer_url=url, product_url=f"http://127.0.0.1:{free_port()}") as gw,
    ):
        document = (await gw.http.get("/openapi.json")).json()

    assert "security" not in document
    public = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/oauth/token", "post"),
        ("/.well-known/jwks.json", "get"),
        ("/.well-known/openid-configuration", "get"),
        ("/api/customers/v1/public-things", "get"),
    ]
    for path, method in public:
        assert not document["paths"][path][method].get("security"), path
    assert document["paths"]["/v1/whoami"]["get"]["security"]
    assert document["paths"]["/admin/users"]["get"]["security"]


async def test_a_service_that_is_down_is_listed_as_unavailable(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(
        product_url=f"http://127.0.0.1:{free_port()}", docs_fetch_timeout_seconds=0.5
    ) as gw:
        response = await gw.http.get("/openapi.json")

    assert response.status_code == 200
    assert "product-service: **unavailable**" in response.json()["info"]["description"]


async def test_a_service_that_comes_up_is_in_the_next_document(start_gateway: Callable[..., Any]) -> None:
    port = free_port()
    async with start_gateway(
        customer_url=f"http://127.0.0.1:{port}", product_url=f"http://127.0.0.1:{port}"
    ) as gw:
        before = (await gw.http.get("/openapi.json")).json()
        async with serving(_service_app(), port=port):
            after = (await gw.http.get("/openapi.json")).json()

    assert "customer-service: **unavailable**" in before["info"]["description"]
    assert "customer-service: available" in after["info"]["description"]
    assert "/api/customers/v1/things/{thing_id}" in after["paths"]


async def test_the_authorize_dialog_offers_client_credentials_and_password(gw: Any) -> None:
    schemes = (await gw.http.get("/openapi.json")).json()["components"]["securitySchemes"]

    assert schemes["OAuth2ClientCredentials"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert schemes["OAuth2Password"]["flows"]["password"]["tokenUrl"] == "/oauth/token"


async def test_the_docs_page_loads_the_merged_document(gw: Any) -> None:
    response = await gw.http.get("/docs")

    assert response.status_code == 200
    assert "/openapi.json" in response.text


async def test_the_docs_show_the_role_table(gw: Any) -> None:
    description = (await gw.http.get("/openapi.json")).json()["info"]["description"]

    assert (
        "| storefront | customers:read, customers:write, orders:write, products:read, events:write, "
        "sync:read |" in (description)
    )


async def test_the_asyncapi_document_is_served_as_generated_from_the_contracts(gw: RunningGateway) -> None:
    as_yaml = await gw.http.get("/docs/asyncapi.yaml")
    as_json = await gw.http.get("/docs/asyncapi.json")

    assert as_yaml.status_code == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.text == render_asyncapi_yaml()
    assert yaml.safe_load(as_yaml.text) == as_json.json()
    assert as_json.json()["asyncapi"].startswith("3.")
    assert "ecom.customers.v1" in as_json.json()["channels"]


async def test_the_events_guide_is_served_without_a_token(gw: RunningGateway) -> None:
    response = await gw.http.get("/docs/events.md")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.text == render_events_md()
    assert "ecom.customer.created.v1" in response.text
