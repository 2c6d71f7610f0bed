"""Browser sessions: /login sets the cookies, the gateway turns the session into a Bearer token, CSRF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway_harness import ADMIN_PASSWORD, RunningGateway


async def _login(gw: RunningGateway, role: str = "data_steward") -> str:
    email = await gw.add_user(role)
    response = await gw.http.post(
        "/login", data={"email": email, "password": ADMIN_PASSWORD, "next": "/docs"}
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def test_the_login_page_is_a_form(gw: RunningGateway) -> None:
    response = await gw.http.get("/login")

    assert response.status_code == 200
    assert '<form method="post" action="/login">' in response.text


async def test_login_sets_an_httponly_samesite_strict_cookie(gw: RunningGateway) -> None:
    email = await gw.add_user("analyst")

    response = await gw.http.post("/login", data={"email": email, "password": ADMIN_PASSWORD})

    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("ecom_session="))
    assert "HttpOnly" in session
    assert "SameSite=strict" in session or "SameSite=Strict" in session
    assert "Secure" in session  # ENVIRONMENT=test is not development
    assert any(c.startswith("ecom_csrf=") and "HttpOnly" not in c for c in cookies)


async def test_the_cookie_is_not_secure_in_development(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(environment="development") as gw:
        email = await gw.add_user("analyst")
        response = await gw.http.post("/login", data={"email": email, "password": ADMIN_PASSWORD})

    session = next(c for c in response.headers.get_list("set-cookie") if c.startswith("ecom_session="))
    assert "Secure" not in session


async def test_a_wrong_password_re_renders_the_form_with_401(gw: RunningGateway) -> None:
    email = await gw.add_user("analyst")

    response = await gw.http.post("/login", data={"email": email, "password": "wrong password!"})

    assert response.status_code == 401
    assert "not correct" in response.text
    assert "set-cookie" not in response.headers


async def test_login_never_redirects_off_site(gw: RunningGateway) -> None:
    email = await gw.add_user("analyst")

    response = await gw.http.post(
        "/login", data={"email": email, "password": ADMIN_PASSWORD, "next": "//evil.example/"}
    )

    assert response.headers["location"] == "/docs"


async def test_the_session_cookie_becomes_a_bearer_token_upstream(routed: RunningGateway) -> None:
    await _login(routed)

    response = await routed.http.get("/api/customers/v1/echo")

    assert response.status_code == 200
    forwarded = response.json()["headers"]
    assert forwarded["authorization"].startswith("Bearer ey")
    assert "cookie" not in forwarded


async def test_a_cookie_authenticated_post_without_csrf_token_gets_403(routed: RunningGateway) -> None:
    await _login(routed)

    response = await routed.http.post("/api/customers/v1/echo", json={"a": 1})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_cookie_authenticated_post_with_the_csrf_token_passes(routed: RunningGateway) -> None:
    await _login(routed)
    csrf = routed.http.cookies["ecom_csrf"]

    response = await routed.http.post("/api/customers/v1/echo", json={"a": 1}, headers={"X-CSRF-Token": csrf})

    assert response.status_code == 200


async def test_gateway_routes_accept_the_session_too(routed: RunningGateway) -> None:
    await _login(routed, "analyst")

    response = await routed.http.get("/v1/me")

    assert response.status_code == 200
    assert response.json()["roles"] == ["analyst"]


async def test_logout_needs_the_csrf_token(routed: RunningGateway) -> None:
    await _login(routed)

    response = await routed.http.post("/logout")

    assert response.status_code == 403


async def test_after_logout_the_session_no_longer_works(routed: RunningGateway) -> None:
    await _login(routed)
    csrf = routed.http.cookies["ecom_csrf"]
    old_cookie = routed.http.cookies["ecom_session"]

    logout = await routed.http.post("/logout", headers={"X-CSRF-Token": csrf})
    routed.http.cookies.set("ecom_session", old_cookie)
    response = await routed.http.get("/api/customers/v1/echo")

    assert logout.status_code == 303
    assert response.status_code == 401
