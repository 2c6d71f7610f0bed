"""The dashboard in a real browser: Debian's Chromium driven by Playwright, through the real gateway.

The gateway, customer-, product- and analytics-service run on their own 127.0.0.1 ports; `ecom seed`'s
catalog, customers and analytics seeders fill their databases; the services' relays publish the
seeded events on the embedded broker and analytics-service's consumers fold them into its store, as in
`make run`. The browser signs in through /login, opens /dashboard, and every chart must be drawn with
data and the console stay clean; changing the date range must redraw the charts. A screenshot is
saved under bench/results/ (DASHBOARD_SCREENSHOT overrides the path).
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from e2e_stack import ADMIN_PASSWORD
from playwright.async_api import ConsoleMessage, Page, async_playwright
from rich.console import Console
from rich.progress import Progress

from analytics_service.config import ALEMBIC_INI as ANALYTICS_ALEMBIC_INI
from analytics_service.config import Settings as AnalyticsSettings
from analytics_service.main import create_app as create_analytics_app
from customer_service.config import ALEMBIC_INI as CUSTOMER_ALEMBIC_INI
from customer_service.config import Settings as CustomerSettings
from customer_service.main import create_app as create_customer_app
from ecom_cli.seeders import analytics as analytics_seeder
from ecom_cli.seeders import channels as channels_seeder
from ecom_cli.seeders import customers as customers_seeder
from ecom_cli.seeders import products as products_seeder
from ecom_cli.seeders import shop_history
from ecom_cli.seeding import SeedContext
from gateway.config import ALEMBIC_INI as GATEWAY_ALEMBIC_INI
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway_app
from gateway.testing import free_port, serving
from gateway.users import create_user
from product_service.config import ALEMBIC_INI as PRODUCT_ALEMBIC_INI
from product_service.config import Settings as ProductSettings
from product_service.main import create_app as create_product_app
from servicekit.migrations import upgrade
from servicekit.testing import fresh_database
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS
from sync_service.config import ALEMBIC_INI as SYNC_ALEMBIC_INI
from sync_service.config import Settings as SyncSettings
from sync_service.main import create_app as create_sync_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = "/usr/bin/chromium"
SCALE = 0.25
PANELS = (
    "trend",
    "funnel",
    "top",
    "cohorts",
    "segments",
    "forecast",
    "sync",
    "customer-quality",
    "product-quality",
)
REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = Path(os.environ.get("DASHBOARD_SCREENSHOT", REPO / "bench" / "results" / "dashboard.png"))
ANALYST = "analyst@e2e.local"


@dataclass
class Databases:
    gateway: str
    customer: str
    product: str
    sync: str
    analytics: str
    history: shop_history.ShopHistory
    """The history the seeders wrote (with the catalog's prices, as they planned it)."""


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Migrated databases of the four services, seeded by `ecom seed`'s seeders (one run)."""
    root = tmp_path_factory.mktemp("dashboard")
    with (
        fresh_database(root, "dash_gateway") as gateway,
        fresh_database(root, "dash_customer") as customer,
        fresh_database(root, "dash_product") as product,
        fresh_database(root, "dash_sync") as sync,
        fresh_database(root, "dash_analytics") as analytics,
    ):
        for ini, url in (
            (GATEWAY_ALEMBIC_INI, gateway),
            (CUSTOMER_ALEMBIC_INI, customer),
            (PRODUCT_ALEMBIC_INI, product),
            (SYNC_ALEMBIC_INI, sync),
            (ANALYTICS_ALEMBIC_INI, analytics),
        ):
            upgrade(ini, url)
        shared: dict[str, Any] = {}
        asyncio.run(_seed(shared, sync=sync, product=product, customer=customer, analytics=analytics))
        history = shop_history.plan(SCALE, prices=shared["prices"])
        yield Databases(gateway, customer, product, sync, analytics, history)


async def _seed(shared: dict[str, Any], *, sync: str, product: str, customer: str, analytics: str) -> None:
    console = Console(file=io.StringIO())
    with Progress(console=console) as progress:
        for seeder, url in (
            (channels_seeder.SEEDER, sync),
            (products_seeder.SEEDER, product),
            (customers_seeder.SEEDER, customer),
            (analytics_seeder.SEEDER, analytics),
        ):
            await seeder.seed(SeedContext(url, SCALE, console, progress, shared))


@dataclass
class RunningStack:
    gateway_url: str
    admin: dict[str, str]
    http: httpx.AsyncClient


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(databases: Databases, kafka_bootstrap: str) -> AsyncIterator[RunningStack]:
    ports = {name: free_port() for name in ("gateway", "customer", "product", "sync", "analytics")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    gateway_url = urls["gateway"]
    common: dict[str, Any] = {
        "log_json": False,
        "jwks_url": f"{gateway_url}/.well-known/jwks.json",
        "jwt_issuer": gateway_url,
        "revocations_url": f"{gateway_url}/.well-known/revocations.json",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
    }
    gateway_app = create_gateway_app(
        GatewaySettings(
            database_url=databases.gateway,
            kafka_enabled=False,
            log_json=False,
            jwt_issuer=gateway_url,
            environment="development",  # cookies without Secure over http://127.0.0.1
            customer_url=urls["customer"],
            product_url=urls["product"],
            sync_url=urls["sync"],
            analytics_url=urls["analytics"],
        )
    )
    # The services publish what the seeders staged; analytics and sync (listings) consume, sync pushes
    # nothing (its channels' endpoints are not running here).
    apps = [
        (gateway_app, ports["gateway"]),
        (
            create_customer_app(
                CustomerSettings(database_url=databases.customer, kafka_consumers_enabled=False, **common)
            ),
            ports["customer"],
        ),
        (
            create_product_app(
                ProductSettings(database_url=databases.product, kafka_consumers_enabled=False, **common)
            ),
            ports["product"],
        ),
        (
            create_sync_app(SyncSettings(database_url=databases.sync, push_enabled=False, **common)),
            ports["sync"],
        ),
        (
            create_analytics_app(
                AnalyticsSettings(database_url=databases.analytics, model_refit_interval_s=0, **common)
            ),
            ports["analytics"],
        ),
    ]
    async with (
        serving(apps[0][0], port=apps[0][1]),
        serving(apps[1][0], port=apps[1][1]),
        serving(apps[2][0], port=apps[2][1]),
        serving(apps[3][0], port=apps[3][1]),
        serving(apps[4][0], port=apps[4][1]),
        httpx.AsyncClient(base_url=gateway_url, timeout=30) as http,
    ):
        gateway = gateway_app.state.gateway
        async with gateway.database.session() as session:
            await create_user(session, email="admin@e2e.local", password=ADMIN_PASSWORD, roles=["admin"])
            await create_user(session, email=ANALYST, password=ADMIN_PASSWORD, roles=["analyst"])
        token = await http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "admin@e2e.local", "password": ADMIN_PASSWORD},
        )
        assert token.status_code == 200, token.text
        admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
        running = RunningStack(gateway_url, admin, http)
        await _wait_for_the_history(running, databases.history)
        await _wait_for_listings(running)
        await _refit_models(running)
        yield running


async def _wait_for_the_history(stack: RunningStack, history: shop_history.ShopHistory) -> None:
    """Until analytics-service has folded every seeded visit and every order (over the broker)."""
    params = {"start": history.start.isoformat(), "end": history.end.isoformat(), "granularity": "month"}
    counted = sum(1 for order in history.orders if not set(order.statuses) & {"cancelled", "refunded"})
    deadline = time.monotonic() + 120
    seen: tuple[Any, Any] = (None, None)
    while time.monotonic() < deadline:
        response = await stack.http.get("/api/analytics/v1/kpis", params=params, headers=stack.admin)
        assert response.status_code == 200, response.text
        kpis = response.json()["kpis"]
        seen = (kpis["sessions"]["value"], kpis["orders"]["value"])
        if seen == (len(history.visits), counted):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"analytics holds {seen} sessions/orders, the seed {len(history.visits)}/{counted}")


async def _wait_for_listings(stack: RunningStack) -> None:
    """Until sync-service has computed the web store's listings from product-service's events."""
    channels = await stack.http.get("/api/sync/v1/channels", params={"limit": 50}, headers=stack.admin)
    assert channels.status_code == 200, channels.text
    web = next(c for c in channels.json()["items"] if c["code"] == "web")
    deadline = time.monotonic() + 60
    listings = 0
    while time.monotonic() < deadline:
        status = await stack.http.get(f"/api/sync/v1/channels/{web['id']}/status", headers=stack.admin)
        assert status.status_code == 200, status.text
        listings = status.json()["listings"]
        if listings:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("sync-service computed no listing of the web store")


async def _refit_models(stack: RunningStack) -> None:
    response = await stack.http.post("/api/analytics/v1/models/refit", headers=stack.admin)
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = (await stack.http.get("/api/analytics/v1/models", headers=stack.admin)).json()
        if status["fitted"] is not None:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"the models were not refitted: {status}")


async def _panel_states(page: Page) -> dict[str, str]:
    states: dict[str, str] = await page.evaluate(
        "() => Object.fromEntries(Array.from(document.querySelectorAll('[data-panel]'))"
        ".map(p => [p.dataset.panel, p.dataset.state]))"
    )
    return states


async def _plotted_points(page: Page) -> dict[str, int]:
    """Per panel, how many data points it shows: its plotly chart's (from the chart's own data), or the
    rows and cells of its HTML table that carry a figure (`data-value`)."""
    points: dict[str, int] = await page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll('[data-panel]')).map(p => {
            const plot = p.querySelector('.js-plotly-plot');
            const n = plot && plot.data
                ? plot.data.reduce((a, t) => a + ((t.x || t.z || []).length), 0)
                : p.querySelectorAll('[data-value]').length;
            return [p.dataset.panel, n];
        }))"""
    )
    return points


async def _listed(page: Page, panel: str) -> list[str]:
    """The labels of the rows an HTML panel lists, top to bottom."""
    return await page.locator(f'[data-panel="{panel}"] tbody tr[data-value] th').all_inner_texts()


async def _wait_loaded(page: Page) -> None:
    await page.wait_for_selector("body:not([data-loading])", state="attached", timeout=30_000)


async def test_the_dashboard_draws_every_chart_and_follows_the_date_range(stack: RunningStack) -> None:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} from {r.url}") if r.status >= 400 else None,
            )

            await page.goto(f"{stack.gateway_url}/dashboard")
            assert "/login?next=%2Fdashboard" in page.url  # not signed in: the sign-in page first
            # which loaded the public plotly.js ahead (and drew its warm-up charts, with no console error)
            assert await page.evaluate("() => typeof window.Plotly") == "object"
            await page.fill("input[name=email]", ANALYST)
            await page.fill("input[name=password]", ADMIN_PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/dashboard**")
            await _wait_loaded(page)

            assert await _panel_states(page) == dict.fromkeys(PANELS, "ready")
            before = await _plotted_points(page)
            assert all(before[panel] > 0 for panel in PANELS), before
            tiles = await page.locator(".tile .value").all_inner_texts()
            assert len(tiles) == 12
            assert "\N{EN DASH}" not in tiles[:4]  # revenue, orders, order value, conversion: no gap
            assert before["trend"] == 2 * 30  # a bar and a conversion point per day of the 30
            # plotly.js draws the trend and the forecast; the funnel and the ranked lists are HTML tables
            plotted = await page.evaluate(
                "() => Array.from(document.querySelectorAll('[data-panel] .js-plotly-plot'))"
                ".map(p => p.closest('[data-panel]').dataset.panel)"
            )
            assert sorted(plotted) == ["forecast", "trend"]
            end = datetime.now(UTC).date()
            range_30 = {"start": (end - timedelta(days=29)).isoformat(), "end": end.isoformat()}
            top = await stack.http.get(
                "/api/analytics/v1/products/top",
                params={**range_30, "limit": 10},
                headers=stack.admin,
            )
            assert top.status_code == 200, top.text
            assert await _listed(page, "top") == [item["sku"] for item in top.json()]
            funnel = await stack.http.get("/api/analytics/v1/funnel", params=range_30, headers=stack.admin)
            assert funnel.status_code == 200, funnel.text
            shown = await page.locator('[data-panel="funnel"] tbody tr').evaluate_all(
                "rows => rows.map(r => Number(r.dataset.value))"
            )
            assert shown == [step["sessions"] for step in funnel.json()["total"]]
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            # Ninety days instead of thirty: the charts are drawn again from the new range.
            await page.fill("#start", (end - timedelta(days=89)).isoformat())
            await page.dispatch_event("#start", "change")
            await _wait_loaded(page)
            after = await _plotted_points(page)
            assert await _panel_states(page) == dict.fromkeys(PANELS, "ready")
            assert after["trend"] == 2 * 90
            assert "start=" + (end - timedelta(days=89)).isoformat() in page.url
            revenue_90 = await page.locator('.tile[data-kpi="revenue"] .value').inner_text()
            assert revenue_90 != tiles[0]
        finally:
            await browser.close()
    assert problems == []
