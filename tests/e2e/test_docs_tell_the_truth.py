"""The docs and API texts describe what exists: every HTTP path the README and docs/*.md write down
is a route (`/api/<service>/…` through the gateway names a routed service and a route of it, `/v1/…` a
route of the service the document is about, or of any service in the README and the gateway guide),
and a scope that no route checks is described as reserved."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from analytics_service.main import create_app as analytics_app
from customer_service.http import PII_SCOPE
from customer_service.main import create_app as customer_app
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as gateway_app
from gateway.roles import SCOPES
from product_service.main import create_app as product_app
from sync_service.main import create_app as sync_app

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A path in backticks or after a host: /v1/..., /api/<service>/..., /oauth/..., /.well-known/..., /admin/...
_PATH = re.compile(
    r"(?:`|127\.0\.0\.1:\d{4}|^| |\()"
    r"(/(?:api/[a-z<>-]+|v1|oauth|admin|\.well-known|docs)(?:/[A-Za-z0-9_{}.\-…<>]*)*)"
)
SERVICES = {"customers": customer_app, "products": product_app, "sync": sync_app, "analytics": analytics_app}
DOCUMENT_SERVICE = {"customers.md": "customers", "products.md": "products", "analytics.md": "analytics"}


def _templates(app: FastAPI) -> list[re.Pattern[str]]:
    return [route.path_regex for route in app.router.routes if isinstance(route, Route | Mount)]


@pytest.fixture(scope="module")
def routes() -> dict[str, list[re.Pattern[str]]]:
    table = {name: _templates(make()) for name, make in SERVICES.items()}
    table["gateway"] = _templates(gateway_app(GatewaySettings(kafka_enabled=False)))
    return table


def _concrete(path: str) -> str:
    """A documented path with its placeholders and ellipses turned into one segment each."""
    path = path.rstrip(".,:;)")
    path = re.sub(r"<[^>]+>|{[^}]+}|…", "x", path)
    return path.rstrip("/") or "/"


def _exists(path: str, patterns: list[re.Pattern[str]]) -> bool:
    if path.count("/") == 1:  # a prefix such as `/admin`: some route lies under it
        return any(pattern.pattern.startswith(f"^{path}/") or pattern.match(path) for pattern in patterns)
    return any(pattern.match(path) for pattern in patterns)


def test_every_documented_path_is_a_route(routes: dict[str, list[re.Pattern[str]]]) -> None:
    missing = []
    checked = 0
    for document in DOCUMENTS:
        own = DOCUMENT_SERVICE.get(document.name)
        for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
            for raw in _PATH.findall(line):
                checked += 1
                path = _concrete(raw)
                if path.startswith("/api/"):
                    _, _, service, *rest = path.split("/")
                    if service == "x" or (service in SERVICES and rest in ([], ["x"])):
                        continue  # `/api/<service>/…`: the pattern itself
                    ok = service in SERVICES and _exists("/" + "/".join(rest), routes[service])
                elif path.startswith("/v1/") and own is not None:
                    ok = _exists(path, routes[own])
                else:
                    ok = any(_exists(path, patterns) for patterns in routes.values())
                if not ok:
                    missing.append(f"{document.relative_to(ROOT)}:{number}: {raw}")
    assert checked > 100, f"only {checked} documented paths found: the pattern no longer matches the docs"
    assert missing == [], "\n".join(missing)


def _route_scopes(app: FastAPI) -> set[str]:
    scopes: set[str] = set()

    def walk(dependant: Dependant) -> None:
        scopes.update(dependant.own_oauth_scopes or [])
        for sub in dependant.dependencies:
            walk(sub)

    for route in app.router.routes:
        if isinstance(route, APIRoute):
            walk(route.dependant)
    return scopes


def test_a_scope_no_route_checks_is_described_as_reserved() -> None:
    apps = [make() for make in SERVICES.values()]
    checked = set().union(*(_route_scopes(app) for app in apps)) | {PII_SCOPE}

    unchecked = {scope: text for scope, text in SCOPES.items() if scope not in checked}

    assert checked & SCOPES.keys(), "no route checks any scope: the walk over dependencies found nothing"
    assert {s: t for s, t in unchecked.items() if not t.startswith("Reserved")} == {}
