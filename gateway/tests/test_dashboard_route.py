"""/dashboard: forwarded to analytics-service for callers holding analytics:read; a browser without a
session is sent to the sign-in page."""

from __future__ import annotations

import pytest
from gateway_harness import ADMIN_PASSWORD, RunningGateway


async def _sign_in(gw: RunningGateway, role: str) -> None:
    email = await gw.add_user(role)
    response = await gw.http.post(
        "/login", data={"email": email, "password": ADMIN_PASSWORD, "next": "/dashboard"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard"


async def test_a_browser_without_a_session_is_sent_to_the_sign_in_page(routed: RunningGateway) -> None:
    response = await routed.http.get("/dashboard?from=2026-01-01")

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdashboard%3Ffrom%3D2026-01-01"


async def test_an_asset_without_a_session_is_401(routed: RunningGateway) -> None:
    response = await routed.http.get("/dashboard/assets/dashboard.js")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_ended_session_is_sent_to_the_sign_in_page(routed: RunningGateway) -> None:
    routed.http.cookies.set("ecom_session", "not-a-session")

    response = await routed.http.get("/dashboard")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("role", ["analyst", "admin"])
async def test_the_session_reaches_analytics_as_a_bearer_token(routed: RunningGateway, role: str) -> None:
    await _sign_in(routed, role)

    response = await routed.http.get("/dashboard/assets/app.js?v=1")

    assert response.status_code == 200
    echoed = response.json()
    assert (echoed["path"], echoed["query"]) == ("/dashboard/assets/app.js", "v=1")
    assert echoed["headers"]["authorization"].startswith("Bearer ey")
    assert "cookie" not in echoed["headers"]
    assert "x-forwarded-prefix" not in echoed["headers"]


async def test_a_role_without_analytics_read_gets_403(routed: RunningGateway) -> None:
    await _sign_in(routed, "support")

    response = await routed.http.get("/dashboard")

    assert response.status_code == 403
    assert "analytics:read" in response.json()["detail"]


async def test_a_bearer_caller_without_a_token_is_not_redirected(routed: RunningGateway) -> None:
    response = await routed.http.get("/dashboard", headers={"Authorization": "Bearer nonsense"})

    assert response.status_code == 401


async def test_the_dashboard_takes_no_writes(routed: RunningGateway) -> None:
    await _sign_in(routed, "analyst")

    response = await routed.http.post(
        "/dashboard", headers={"X-CSRF-Token": routed.http.cookies["ecom_csrf"]}
    )

    assert response.status_code == 405


async def test_the_favicon_is_an_empty_answer(routed: RunningGateway) -> None:
    response = await routed.http.get("/favicon.ico")

    assert response.status_code == 204


@pytest.mark.parametrize("asset", ["plotly.min.js", "warmup.js"])
async def test_what_the_sign_in_page_loads_ahead_is_public_and_carries_no_credentials(
    routed: RunningGateway, asset: str
) -> None:
    anonymous = await routed.http.get(f"/dashboard/assets/{asset}")
    await _sign_in(routed, "analyst")
    signed_in = await routed.http.get(f"/dashboard/assets/{asset}")

    for response in (anonymous, signed_in):
        assert response.status_code == 200
        echoed = response.json()
        assert echoed["path"] == f"/dashboard/assets/{asset}"
        assert "authorization" not in echoed["headers"]  # a public asset never gets the caller's token
        assert "cookie" not in echoed["headers"]
        assert "ratelimit-limit" in response.headers


async def test_a_look_alike_of_a_public_asset_still_needs_a_session(routed: RunningGateway) -> None:
    for path in (
        "/dashboard/assets/plotly.min.js.map",
        "/dashboard/assets/plotly.min.js/x",
        "/dashboard/assets/",
    ):
        response = await routed.http.get(path)

        assert response.status_code == 401, path


async def test_the_sign_in_page_on_the_way_to_the_dashboard_loads_plotly_ahead(
    routed: RunningGateway,
) -> None:
    to_dashboard = await routed.http.get("/login", params={"next": "/dashboard?start=2026-01-01"})
    to_docs = await routed.http.get("/login", params={"next": "/docs"})

    assert '<script async id="plotly-js" src="/dashboard/assets/plotly.min.js"></script>' in to_dashboard.text
    assert '<script defer src="/dashboard/assets/warmup.js"></script>' in to_dashboard.text
    assert "<script" not in to_docs.text
    # the warm-up's charts need no data: image (no heatmap is drawn); nothing is loosened
    assert "data:" not in to_dashboard.headers["content-security-policy"]
    assert "script-src" not in to_dashboard.headers["content-security-policy"]  # 'self' only
