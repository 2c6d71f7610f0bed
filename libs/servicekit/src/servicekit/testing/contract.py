"""Tests every service passes: subclass `ServiceContract` in a service's tests to run them there.

The service's conftest provides the `service` fixture (a `ServiceUnderTest`); the plugin builds the
`client` fixture from it.
"""

from __future__ import annotations

import httpx

from servicekit.testing.tokens import TestTokenIssuer


class ServiceContract:
    """Probes, token checks, problem+json and metrics, as every service must answer them."""

    async def test_readyz_reports_database_and_broker_ok(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}

    async def test_healthz_answers(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200

    async def test_request_without_token_gets_401_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/whoami")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Unauthorized"

    async def test_token_from_an_untrusted_key_gets_401(self, client: httpx.AsyncClient) -> None:
        stranger = TestTokenIssuer()
        response = await client.get("/v1/whoami", headers=stranger.auth_header("admin"))
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    async def test_valid_token_reaches_the_route(
        self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer
    ) -> None:
        response = await client.get("/v1/whoami", headers=token_issuer.auth_header("analytics:read"))
        assert response.status_code == 200
        assert response.json()["scopes"] == ["analytics:read"]

    async def test_unknown_route_gets_404_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/no/such/route")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_metrics_label_requests_by_route_template(self, client: httpx.AsyncClient) -> None:
        await client.get("/healthz")
        body = (await client.get("/metrics")).text
        assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in body

    async def test_openapi_document_is_served(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert "/v1/whoami" in response.json()["paths"]
