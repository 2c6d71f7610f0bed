"""The dashboard page (its script and style inline) and the plotly.js bundled in the installed `plotly`
package (read from the package at runtime: no CDN, no copied JS). Reached through the gateway's
/dashboard with the browser session; the page's script reads the services' APIs through the gateway.

plotly.js is public (the unmodified library, nothing of the shop's) and keeps one URL, fresh for five
minutes and then revalidated by its ETag: the gateway's sign-in page for the dashboard loads it while
the person types, with warmup.js (also public: it draws sample charts off-screen), so the browser has
it in its cache and compiled, drawing code included, by the time the dashboard asks for the same URL.
The page's own script and style are inline (a CSP hash admits the script): no request stands between
the page and its API requests, nor between the page and plotly.js."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from analytics_service.config import Settings
from analytics_service.http import ReadCaller
from analytics_service.insights import service as insights
from analytics_service.periods import DateRange
from servicekit.db import Database
from servicekit.dependencies import DatabaseDep
from servicekit.errors import NotFound, problem_responses

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

STATIC = Path(__file__).with_name("static")


def plotly_js() -> Path:
    """The minified plotly.js inside the installed plotly package."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


# Served to anyone, each at one URL: see the module's docstring.
ASSETS: dict[str, tuple[Path, str]] = {
    "plotly.min.js": (plotly_js(), "text/javascript"),
    "warmup.js": (STATIC / "warmup.js", "text/javascript"),
}
PUBLIC_ASSET_PATHS = frozenset(f"/dashboard/assets/{name}" for name in ASSETS)
# Fresh for the minutes between the sign-in page and the dashboard (and a reload), then revalidated
ASSET_CACHE_CONTROL = "public, max-age=300"


@cache
def _inline(name: str, *unsafe: str) -> str:
    """A file of static/ to go inside a <script> or <style> element: it must hold none of `unsafe`,
    which would end the element (or, `<!--` in a script, change how the HTML parser reads it)."""
    text = (STATIC / name).read_text(encoding="utf-8")
    for found in (marker for marker in unsafe if marker in text.lower()):
        raise ValueError(f"{name} holds {found!r}: it cannot be put inline")
    return text


def _script() -> str:
    return _inline("dashboard.js", "</script", "<!--")


def _script_hash() -> str:
    """The CSP source admitting the page's inline script: the SHA-256 of its text."""
    digest = hashlib.sha256(_script().encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@cache
def content_security_policy() -> str:
    """Scripts: plotly.js from this origin and the page's inline script (by its hash) only. Styles: the
    page's and plotly's injected rules. Images: data: (the page's empty icon, so no icon is asked for)."""
    return (
        f"default-src 'none'; script-src 'self' {_script_hash()}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


@cache
def _digest(name: str) -> str:
    """The SHA-256 of the asset's bytes (read once per process)."""
    return hashlib.sha256(ASSETS[name][0].read_bytes()).hexdigest()


def entity_tag(name: str, *, compressed: bool) -> str:
    """The asset's strong ETag: its full hash, told apart for its gzip-compressed form."""
    return f'"{_digest(name)}-gzip"' if compressed else f'"{_digest(name)}"'


def none_match(if_none_match: str, tag: str) -> bool:
    """Whether an If-None-Match header names the tag (weakly compared, as RFC 9110 says) or is `*`."""
    names = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in names or tag in names


@cache
def gzipped(name: str) -> bytes:
    """The asset compressed once (plotly.min.js: 4.8 MB -> about 1.4 MB), kept for the process's life."""
    return gzip.compress(ASSETS[name][0].read_bytes(), compresslevel=6, mtime=0)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (a `q=0` refuses it; `*` admits it)."""
    admitted: dict[str, bool] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        quality = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            admitted[coding.strip()] = float(quality) > 0
        except ValueError:
            admitted[coding.strip()] = False
    return admitted.get("gzip", admitted.get("*", False))


@cache
def _page_template() -> str:
    return (STATIC / "dashboard.html").read_text(encoding="utf-8")


# The template's placeholders, all filled in one pass (what is put in is never looked through again)
_PLACEHOLDER = re.compile(r"\{(dashboard\.js|dashboard\.css|currency|forecast-skus)\}")


def render_page(currency: str, forecast_skus: list[str]) -> str:
    """The page: its script and style inline, the currency and the forecast's SKUs
    (anyone's text: escaped for the attribute it goes in)."""
    values = {
        "dashboard.js": _script(),
        "dashboard.css": _inline("dashboard.css", "</style"),
        "currency": html.escape(currency, quote=True),
        "forecast-skus": html.escape(json.dumps(forecast_skus), quote=True),
    }
    return _PLACEHOLDER.sub(lambda found: values[found.group(1)], _page_template())


# The forecast panel offers the best sellers of this many days, this many of them.
FORECAST_DAYS = 90
FORECAST_CHOICES = 25


async def forecast_choices(database: Database) -> list[str]:
    """The SKUs the forecast panel offers (the first is drawn): the best sellers of the last 90 days,
    read from the rollups. They go in the page, so the forecast is asked for with the first requests
    instead of after an answer that names them."""
    today = datetime.now(UTC).date()
    span = DateRange(today - timedelta(days=FORECAST_DAYS - 1), today)
    async with database.read() as connection:
        top = await insights.top_products(connection, span, limit=FORECAST_CHOICES)
    return [item.sku for item in top]


@router.get("", response_class=HTMLResponse, responses=problem_responses(401, 403))
async def dashboard_page(request: Request, database: DatabaseDep, _: ReadCaller) -> HTMLResponse:
    """The dashboard (open it through the gateway: /dashboard)."""
    settings: Settings = request.app.state.settings
    page = render_page(settings.reporting_currency, await forecast_choices(database))
    return HTMLResponse(
        page,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": content_security_policy(),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def _public_asset_route(name: str) -> None:
    async def public_asset(request: Request) -> Response:
        return await _asset(request, name)

    public_asset.__doc__ = (
        f"{name}, to anyone: the sign-in page loads it ahead of the dashboard. One URL, fresh for five "
        "minutes, then revalidated by its ETag."
    )
    router.add_api_route(
        f"/assets/{name}", public_asset, methods=["GET"], responses={304: {"description": "Not modified"}}
    )


for _name in sorted(ASSETS):
    _public_asset_route(_name)


@router.get("/assets/{name}", responses=problem_responses(401, 403, 404))
async def dashboard_asset(name: str, _: ReadCaller) -> Response:
    """Any other asset name: none (the public ones have their own routes, ahead of this one). Asked with
    analytics:read, so a caller without it learns nothing of what exists (401 or 403 first)."""
    raise NotFound(f"The dashboard has no asset named {name!r}.")


async def _asset(request: Request, name: str) -> Response:
    path, media_type = ASSETS[name]
    compressed = accepts_gzip(request.headers.get("accept-encoding", ""))
    tag = await run_in_threadpool(entity_tag, name, compressed=compressed)
    headers = {
        "Cache-Control": ASSET_CACHE_CONTROL,
        "ETag": tag,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if none_match(request.headers.get("if-none-match", ""), tag):
        return Response(status_code=304, headers=headers)
    if compressed:
        body = await run_in_threadpool(gzipped, name)
        return Response(body, media_type=media_type, headers=headers | {"Content-Encoding": "gzip"})
    return FileResponse(path, media_type=media_type, headers=headers)
