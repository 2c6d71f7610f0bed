"""The event contracts, served by the gateway: the AsyncAPI document and the events guide, generated
from the installed `contracts` package (the same text as docs/asyncapi.yaml and docs/events.md)."""

from __future__ import annotations

from functools import cache

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.docs import asyncapi_document, render_asyncapi_yaml, render_events_md

ASYNCAPI_YAML_URL = "/docs/asyncapi.yaml"
ASYNCAPI_JSON_URL = "/docs/asyncapi.json"
EVENTS_MD_URL = "/docs/events.md"
CACHE = {"Cache-Control": "public, max-age=300"}


@cache
def _asyncapi_yaml() -> str:
    return render_asyncapi_yaml()


@cache
def _events_md() -> str:
    return render_events_md()


async def asyncapi_yaml(_request: Request) -> Response:
    return Response(_asyncapi_yaml(), media_type="application/yaml; charset=utf-8", headers=CACHE)


async def asyncapi_json(_request: Request) -> JSONResponse:
    return JSONResponse(asyncapi_document(), headers=CACHE)


async def events_md(_request: Request) -> Response:
    return Response(_events_md(), media_type="text/markdown; charset=utf-8", headers=CACHE)


def event_docs_routes() -> list[Route]:
    return [
        Route(ASYNCAPI_YAML_URL, asyncapi_yaml, methods=["GET"], include_in_schema=False),
        Route(ASYNCAPI_JSON_URL, asyncapi_json, methods=["GET"], include_in_schema=False),
        Route(EVENTS_MD_URL, events_md, methods=["GET"], include_in_schema=False),
    ]
