"""The API docs page of every service (Swagger UI), served with its own assets from an installed
package (`swagger-ui-bundle-v2`), so /docs works on a network that cannot reach a CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"


def swagger_ui_page(
    *,
    openapi_url: str,
    title: str,
    init_oauth: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The Swagger UI page, loading its script, style and icon from ASSETS_URL."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        init_oauth=init_oauth,
        swagger_ui_parameters=parameters,
    )


def docs_routes(title: str, openapi_url: str = "/openapi.json") -> list[BaseRoute]:
    """/docs, its OAuth2 redirect page and its static assets."""

    async def docs(_request: Request) -> HTMLResponse:
        return swagger_ui_page(openapi_url=openapi_url, title=f"{title}: API docs")

    async def oauth2_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return [
        Route(DOCS_URL, docs, methods=["GET"], include_in_schema=False),
        Route(OAUTH2_REDIRECT_URL, oauth2_redirect, methods=["GET"], include_in_schema=False),
        Mount(ASSETS_URL, StaticFiles(directory=Path(str(swagger_ui_path))), name="swagger-ui-assets"),
    ]
