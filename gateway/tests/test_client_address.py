"""The caller's address for per-address limits: X-Forwarded-For only from configured proxies; calls
refused for a missing or invalid token are limited per address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from gateway_harness import ADMIN_PASSWORD

from gateway.limits import forwarded_client, parse_networks


async def _logins_from(http: httpx.AsyncClient, email: str, forwarded_for: str, password: str) -> int:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": email, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


async def test_x_forwarded_for_from_an_untrusted_caller_does_not_escape_the_address_lockout(
    start_gateway: Callable[..., Any],
) -> None:
    async with start_gateway(lockout_threshold=100, lockout_ip_threshold=2, lockout_base_seconds=60) as gw:
        for n in range(2):
            await _logins_from(gw.http, await gw.add_user("analyst"), f"203.0.113.{n}", "wrong password!")

        status = await _logins_from(gw.http, await gw.add_user("analyst"), "203.0.113.99", ADMIN_PASSWORD)

    assert status == 429


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(
    start_gateway: Callable[..., Any],
) -> None:
    async with start_gateway(
        lockout_threshold=100, lockout_ip_threshold=2, lockout_base_seconds=60, trusted_proxies="10.0.0.0/8"
    ) as gw:
        for _ in range(2):
            await _logins_from(gw.http, await gw.add_user("analyst"), "203.0.113.7", "wrong password!")

        other_client = await _logins_from(
            gw.http, await gw.add_user("analyst"), "203.0.113.8", ADMIN_PASSWORD
        )
        locked_client = await _logins_from(
            gw.http, await gw.add_user("analyst"), "203.0.113.7", ADMIN_PASSWORD
        )

    assert (other_client, locked_client) == (200, 429)


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    proxies = parse_networks("10.0.0.0/8, 192.168.1.7")

    assert forwarded_client("10.1.2.3", "1.1.1.1, 203.0.113.5, 192.168.1.7", proxies) == "203.0.113.5"
    assert forwarded_client("198.51.100.1", "203.0.113.5", proxies) == "198.51.100.1"
    assert forwarded_client("10.1.2.3", "not an address", proxies) == "10.1.2.3"
    assert forwarded_client("10.1.2.3", "10.0.0.1, 10.0.0.2", proxies) == "10.1.2.3"
    assert forwarded_client("10.1.2.3", None, proxies) == "10.1.2.3"
    assert forwarded_client("10.1.2.3", "203.0.113.5", ()) == "10.1.2.3"


async def test_calls_with_invalid_tokens_are_rate_limited_per_address(
    start_gateway: Callable[..., Any],
) -> None:
    async with start_gateway(refused_rate_limit_burst=3, refused_rate_limit_rate_per_second=0.01) as gw:
        statuses = [
            (await gw.http.get("/v1/me", headers={"Authorization": f"Bearer forged-{n}"})).status_code
            for n in range(4)
        ]
        proxied = await gw.http.get("/api/customers/v1/customers", headers={"Authorization": "Bearer x"})
        valid = await gw.http.get("/v1/me", headers=await gw.admin_headers())

    assert statuses == [401, 401, 401, 429]
    assert proxied.status_code == 429
    assert int(proxied.headers["retry-after"]) >= 1
    assert valid.status_code == 200
