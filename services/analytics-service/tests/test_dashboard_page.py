"""The dashboard page and its assets: analytics:read only, but for plotly.js (from the installed package)
and warmup.js, which the sign-in page loads ahead."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources

import httpx
import pytest
import pytest_asyncio
from analytics_support import Deliverer, placed, unique

from analytics_service.config import Settings
from analytics_service.dashboard.router import STATIC
from analytics_service.main import create_app
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer, running_app

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(database_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=database_url, kafka_enabled=False, log_json=False))
    async with running_app(app, token_issuer) as client:
        yield client


async def test_the_page_carries_its_script_and_style_inline(
    http: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await http.get("/dashboard", headers=token_issuer.auth_header("analytics:read"))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    script = (STATIC / "dashboard.js").read_text(encoding="utf-8")
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, flags=re.DOTALL)
    assert scripts == [
        (' type="module"', script),  # first: its requests go out before plotly.js is evaluated
        (' src="/dashboard/assets/plotly.min.js" defer id="plotly-js"', ""),  # the sign-in page's URL
    ]
    # The CSP admits that script by its hash, and no other inline script
    admitted = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    policy = response.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{admitted}';" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert f"<style>{(STATIC / 'dashboard.css').read_text(encoding='utf-8')}</style>" in response.text
    assert 'data-currency="EUR"' in response.text


async def test_the_page_carries_the_best_sellers_the_forecast_panel_offers(
    http: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    hostile, plain, old = unique('"><script>x</script>{currency}'), unique("SKU-"), unique("OLD-")
    now = datetime.now(UTC)  # the panel offers the last 90 days from today
    database = Database(database_url)
    try:
        await Deliverer(database)(
            [
                placed(unique("o"), "c1", now - timedelta(days=3), [(hostile, 1, "900.00")]),
                placed(unique("o"), "c2", now - timedelta(days=2), [(plain, 2, "400.00")]),
                placed(unique("o"), "c3", now - timedelta(days=120), [(old, 1, "5000.00")]),  # too old
            ]
        )
    finally:
        await database.dispose()

    response = await http.get("/dashboard", headers=token_issuer.auth_header("analytics:read"))

    attribute = re.search(r'<select id="forecast-sku"[^>]* data-skus="([^"]*)"', response.text)
    assert attribute is not None
    skus = json.loads(html.unescape(attribute.group(1)))
    assert skus.index(hostile) < skus.index(plain)  # by revenue
    assert old not in skus
    assert "<script>x" not in response.text  # the SKU is escaped, and `{currency}` in it left as it is
    assert len(skus) <= 25


async def test_plotly_js_is_the_one_inside_the_installed_package(
    http: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await http.get(
        "/dashboard/assets/plotly.min.js", headers=token_issuer.auth_header("analytics:read")
    )

    bundled = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == bundled


async def test_plotly_js_goes_gzip_compressed_to_a_browser_that_takes_it(
    http: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    bundled = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    headers = token_issuer.auth_header("analytics:read") | {"Accept-Encoding": "br, gzip;q=0.8"}
    async with http.stream("GET", "/dashboard/assets/plotly.min.js", headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert len(raw) < len(bundled) / 2
    assert gzip.decompress(raw) == bundled


@pytest.mark.parametrize("accept_encoding", ["identity", "gzip;q=0", "deflate"])
async def test_an_asset_goes_uncompressed_when_gzip_is_not_taken(
    http: httpx.AsyncClient, token_issuer: TestTokenIssuer, accept_encoding: str
) -> None:
    headers = token_issuer.auth_header("analytics:read") | {"Accept-Encoding": accept_encoding}
    async with http.stream("GET", "/dashboard/assets/warmup.js", headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert raw == (STATIC / "warmup.js").read_bytes()


async def test_an_unknown_asset_is_404(http: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await http.get(
        "/dashboard/assets/..%2Fconfig.py", headers=token_issuer.auth_header("analytics:read")
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path", ["/dashboard", "/dashboard/assets/dashboard.js", "/dashboard/assets/dashboard.css"]
)
async def test_without_a_token_the_dashboard_is_401(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)

    assert response.status_code == 401


@pytest.mark.parametrize("name", ["plotly.min.js", "warmup.js"])
async def test_the_assets_the_sign_in_page_loads_ahead_are_public_and_revalidated_by_tag(
    http: httpx.AsyncClient, name: str
) -> None:
    first = await http.get(f"/dashboard/assets/{name}", headers={"Accept-Encoding": "identity"})
    again = await http.get(
        f"/dashboard/assets/{name}",
        headers={"Accept-Encoding": "identity", "If-None-Match": f'"other", {first.headers["etag"]}'},
    )
    zipped = await http.get(
        f"/dashboard/assets/{name}",
        headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]},
    )

    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=300"
    assert re.fullmatch(r'"[0-9a-f]{64}"', first.headers["etag"])
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == first.headers["etag"]
    # The compressed body is another representation: another tag, so the identity one does not match.
    assert zipped.status_code == 200
    assert zipped.headers["etag"] == first.headers["etag"][:-1] + '-gzip"'


async def test_an_unknown_tag_gets_the_whole_asset(http: httpx.AsyncClient) -> None:
    response = await http.get("/dashboard/assets/plotly.min.js", headers={"If-None-Match": '"stale"'})

    assert response.status_code == 200
    assert response.content


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/assets/dashboard.js"])
async def test_without_analytics_read_the_dashboard_is_403(
    http: httpx.AsyncClient, token_issuer: TestTokenIssuer, path: str
) -> None:
    response = await http.get(path, headers=token_issuer.auth_header("customers:read"))

    assert response.status_code == 403
