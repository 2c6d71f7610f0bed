"""Tests every service passes: subclass `ServiceContract` in a service's tests to run them there.

The service's conftest provides the `service` fixture (a `ServiceUnderTest`); the plugin builds the
`client` fixture from it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from servicekit.authgate import default_is_public
from servicekit.testing.tokens import TestTokenIssuer

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_BAD_BODY = b'{"unterminated": ['


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path template) of every operation of an OpenAPI document."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return [
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in methods
    ]


def fill_path(template: str, ids: dict[str, str], default: str) -> str:
    """The template with each parameter replaced by the id `ids` knows for it, else `default`."""
    return _PATH_PARAM.sub(lambda match: ids.get(match.group(1), default), template)


class ServiceContract:
    """Probes, token checks, problem+json and metrics, as every service must answer them."""

    async def auth_headers(
        self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer, *scopes: str
    ) -> dict[str, str]:
        """Headers of a valid token with these scopes (the gateway's subclass uses its own tokens)."""
        return token_issuer.auth_header(*scopes)

    def is_public(self, path: str) -> bool:
        """Whether the service answers `path` without a token."""
        return default_is_public(path)

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
        headers = await self.auth_headers(client, token_issuer, "analytics:read")
        response = await client.get("/v1/whoami", headers=headers)
        assert response.status_code == 200
        assert response.json()["scopes"] == ["analytics:read"]

    async def test_unknown_route_gets_404_problem(
        self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer
    ) -> None:
        headers = await self.auth_headers(client, token_issuer, "admin")
        response = await client.get("/no/such/route", headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "No route matches GET /no/such/route"

    async def test_an_unknown_route_without_a_token_gets_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/no/such/route")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    async def test_wrong_method_gets_405_problem_with_detail(
        self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer
    ) -> None:
        headers = await self.auth_headers(client, token_issuer, "admin")
        response = await client.delete("/v1/whoami", headers=headers)
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "DELETE is not allowed on /v1/whoami; allowed: GET, HEAD."
        assert response.headers["allow"] == "GET, HEAD"
        head = await client.head("/v1/whoami", headers=headers)  # answered as the GET, without a body
        assert (head.status_code, head.content) == (200, b"")

    async def existing_ids(self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> dict[str, str]:
        """Path parameter name -> the id of a resource that exists; a service's subclass creates them so
        the walk below asks about real and unknown resources alike."""
        return {}

    async def test_every_route_decides_authentication_before_anything_else(
        self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer
    ) -> None:
        """Without a valid token every operation answers the same 401, whether the ids it names exist or
        not and whatever the body: nothing about a resource leaks to an unauthenticated caller."""
        existing = await self.existing_ids(client, token_issuer)
        document = (await client.get("/openapi.json")).json()
        protected = [(m, p) for m, p in operations(document) if not self.is_public(p)]
        assert protected, "the service documents no protected operation"
        credentials: dict[str, dict[str, str]] = {
            "none": {},
            "garbage": {"Authorization": "Bearer garbage"},
            "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
            "untrusted key": TestTokenIssuer().auth_header("admin"),
        }
        unexpected: list[str] = []
        for method, template in protected:
            for ids in (existing, {}):
                path = fill_path(template, ids, str(uuid.uuid4()))
                for label, headers in credentials.items():
                    response = await client.request(
                        method,
                        path,
                        content=_BAD_BODY,
                        headers={**headers, "Content-Type": "application/json", "If-Match": '"0"'},
                    )
                    problem_json = response.headers.get("content-type") == "application/problem+json"
                    if response.status_code != 401 or not problem_json:
                        unexpected.append(f"{method} {path} ({label}): {response.status_code}")
        assert unexpected == []

    async def test_metrics_label_requests_by_route_template(self, client: httpx.AsyncClient) -> None:
        await client.get("/healthz")
        body = (await client.get("/metrics")).text
        assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in body

    async def test_docs_page_loads_every_asset_from_the_service_itself(
        self, client: httpx.AsyncClient
    ) -> None:
        page = await client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
        assets = [url for url in urls if not url.endswith(".json")]
        assert not [url for url in urls if "//" in url], "the docs page loads something from another host"
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
        for url in assets:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.content, url
        redirect = await client.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200
        assert "//" not in "".join(re.findall(r"""src\s*=\s*['"]([^'"]+)['"]""", redirect.text))

    async def test_openapi_document_is_served(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert "/v1/whoami" in response.json()["paths"]
