"""One API document: the gateway's own operations plus every service's, under their /api/... paths.

Each service's /openapi.json is fetched with a timeout (a service that is down is listed as
unavailable in the description), its paths prefixed, its schema names prefixed so they cannot clash,
and every operation offered the OAuth2 flows of the Authorize dialog.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import Request
from starlette.routing import Route

from gateway.roles import ROLE_SCOPES, SCOPES
from gateway.runtime import Gateway
from servicekit.docs import swagger_ui_page

log = logging.getLogger(__name__)

SERVICE_TITLES = {
    "customers": "customer-service",
    "products": "product-service",
    "sync": "sync-service",
    "analytics": "analytics-service",
}
OAUTH_SCHEMES = ("OAuth2ClientCredentials", "OAuth2Password")
MERGED_OPENAPI_URL = "/openapi.json"


def security_schemes() -> dict[str, Any]:
    scopes = dict(SCOPES)
    return {
        "OAuth2ClientCredentials": {
            "type": "oauth2",
            "description": "Machine clients (storefront, pos, logistics, sync): client id and secret.",
            "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": scopes}},
        },
        "OAuth2Password": {
            "type": "oauth2",
            "description": "People: email and password (a TOTP code goes in the `otp` field of the token "
            "request, which the Swagger dialog cannot send: enrolled accounts use a token from curl).",
            "flows": {"password": {"tokenUrl": "/oauth/token", "scopes": scopes}},
        },
        "HTTPBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    }


def role_table_markdown() -> str:
    lines = ["| role | scopes |", "|---|---|"]
    lines += [f"| {role.value} | {', '.join(scopes)} |" for role, scopes in ROLE_SCOPES.items()]
    return "\n".join(lines)


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                parts = value.split("/")
                out[key] = "/".join([*parts[:3], prefix + parts[3], *parts[4:]])
            else:
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, prefix) for item in node]
    return node


def _operation_security(operation: dict[str, Any]) -> list[dict[str, list[str]]]:
    scopes: list[str] = []
    for requirement in operation.get("security", []) or []:
        for values in requirement.values():
            scopes.extend(values)
    return [{name: scopes} for name in OAUTH_SCHEMES] + [{"HTTPBearer": []}]


def merge_service(merged: dict[str, Any], name: str, document: dict[str, Any]) -> None:
    """Add one service's document under /api/<name>, its components prefixed with the service's name."""
    prefix = "".join(part.capitalize() for part in name.split("_")) + "_"
    document = _rewrite_refs(copy.deepcopy(document), prefix)
    for path, item in document.get("paths", {}).items():
        if path in ("/healthz", "/readyz", "/metrics"):
            continue
        new_item = {}
        for method, operation in item.items():
            if isinstance(operation, dict) and method in {
                "get",
                "put",
                "post",
                "patch",
                "delete",
                "head",
                "options",
            }:
                operation = dict(operation)
                operation["tags"] = [f"{name}: {tag}" for tag in operation.get("tags", ["default"])]
                if "operationId" in operation:
                    operation["operationId"] = f"{name}_{operation['operationId']}"
                if operation.get("security"):
                    operation["security"] = _operation_security(operation)
                new_item[method] = operation
            else:
                new_item[method] = operation
        merged["paths"][f"/api/{name}{path}"] = new_item
    components = merged.setdefault("components", {})
    for kind, entries in document.get("components", {}).items():
        if kind == "securitySchemes":
            continue
        target = components.setdefault(kind, {})
        for key, value in entries.items():
            target[prefix + key] = value


async def _fetch(client: httpx.AsyncClient, url: str, timeout: float) -> dict[str, Any] | str:
    try:
        response = await client.get(f"{url}/openapi.json", timeout=timeout)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, json.JSONDecodeError, ValueError) as exc:
        return f"{type(exc).__name__}"
    if not isinstance(document, dict):
        return "not an OpenAPI document"
    return document


async def merged_document(app: FastAPI, gateway: Gateway) -> dict[str, Any]:
    settings = gateway.settings
    cached = gateway.docs_cache
    if cached is not None and time.monotonic() - cached[0] < settings.docs_cache_seconds:
        return cached[1]
    own = copy.deepcopy(app.openapi())
    own.setdefault("components", {})["securitySchemes"] = {
        **own.get("components", {}).get("securitySchemes", {}),
        **security_schemes(),
    }
    # Per operation, never document-wide: the probes, the token endpoint, JWKS and discovery are public.
    for item in own.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation["security"] = _operation_security(operation)
    names = list(settings.upstreams)
    results = await asyncio.gather(
        *(
            _fetch(gateway.http, settings.upstreams[name], settings.docs_fetch_timeout_seconds)
            for name in names
        )
    )
    status_lines = []
    for name, result in zip(names, results, strict=True):
        title = SERVICE_TITLES.get(name, name)
        if isinstance(result, dict):
            merge_service(own, name, result)
            status_lines.append(f"- `/api/{name}/…` → {title}: available")
        else:
            status_lines.append(f"- `/api/{name}/…` → {title}: **unavailable** ({result})")
    own["info"]["description"] = (
        f"{own['info'].get('description', '')}\n\n"
        "Services behind this gateway:\n\n" + "\n".join(status_lines) + "\n\n"
        "Roles and their scopes:\n\n" + role_table_markdown() + "\n\n"
        "Events the services publish: [AsyncAPI document](/docs/asyncapi.yaml) "
        "([JSON](/docs/asyncapi.json)) and [guide](/docs/events.md)."
    )
    if all(isinstance(result, dict) for result in results):
        # Kept only whole: a service that was down (still starting, say) is asked again next time.
        gateway.docs_cache = (time.monotonic(), own)
    return own


def docs_routes(app: FastAPI) -> list[Route]:
    """/openapi.json (merged) and /docs (Swagger UI with the OAuth2 flows), replacing FastAPI's own."""

    async def openapi_json(request: Request) -> JSONResponse:
        gateway: Gateway = request.app.state.gateway
        return JSONResponse(await merged_document(app, gateway))

    async def swagger(request: Request) -> HTMLResponse:
        return swagger_ui_page(
            openapi_url=MERGED_OPENAPI_URL,
            title="Ecom API (through the gateway)",
            init_oauth={"clientId": "", "usePkceWithAuthorizationCodeGrant": False},
            parameters={"persistAuthorization": True},
        )

    return [
        Route(MERGED_OPENAPI_URL, openapi_json, methods=["GET"], include_in_schema=False),
        Route("/docs", swagger, methods=["GET"], include_in_schema=False),
    ]
