"""People: password grant, TOTP second factor, recovery codes, progressive lockout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pyotp
from gateway_harness import ADMIN_PASSWORD, RunningGateway
from jose import jwt

from gateway.throttle import LockoutPolicy
from gateway.users import totp_step_matching


async def _bearer(gw: RunningGateway, email: str, **extra: str) -> dict[str, str]:
    response = await gw.password_grant(email, **extra)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _enrol(gw: RunningGateway, email: str) -> tuple[str, list[str]]:
    """Enrol TOTP for the account; returns the secret and the recovery codes."""
    headers = await _bearer(gw, email)
    enrolment = (await gw.http.post("/v1/me/totp", headers=headers)).json()
    secret = enrolment["secret"]
    confirm = await gw.http.post(
        "/v1/me/totp/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=headers
    )
    assert confirm.status_code == 200, confirm.text
    return secret, confirm.json()["recovery_codes"]


async def test_password_grant_issues_scopes_of_the_roles_and_a_refresh_token(gw: RunningGateway) -> None:
    email = await gw.add_user("analyst")

    body = (await gw.password_grant(email)).json()

    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["sub"].startswith("usr_")
    assert claims["scope"] == "analytics:read analytics:write customers:read products:read sync:read"
    assert body["refresh_token"]


async def test_wrong_password_gets_invalid_grant(gw: RunningGateway) -> None:
    email = await gw.add_user("support")

    response = await gw.password_grant(email, "wrong password!")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_totp_enrolment_returns_an_otpauth_uri_and_an_svg_qr_code(gw: RunningGateway) -> None:
    email = await gw.add_user("admin")

    body = (await gw.http.post("/v1/me/totp", headers=await _bearer(gw, email))).json()

    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_svg"].lstrip().startswith("<svg")


async def test_an_enrolled_account_needs_the_otp(gw: RunningGateway) -> None:
    email = await gw.add_user("admin")
    await _enrol(gw, email)

    response = await gw.password_grant(email)

    assert response.status_code == 400
    assert "otp" in response.json()["detail"]


async def test_a_totp_code_from_the_next_step_is_accepted(gw: RunningGateway) -> None:
    email = await gw.add_user("admin")
    secret = (await _enrol(gw, email))[0]

    response = await gw.password_grant(email, otp=pyotp.TOTP(secret).at(time.time() + 30))

    assert response.status_code == 200


async def test_a_totp_code_cannot_be_used_twice(gw: RunningGateway) -> None:
    email = await gw.add_user("admin")
    secret = (await _enrol(gw, email))[0]
    code = pyotp.TOTP(secret).at(time.time() + 30)
    assert (await gw.password_grant(email, otp=code)).status_code == 200

    again = await gw.password_grant(email, otp=code)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_a_recovery_code_works_once(gw: RunningGateway) -> None:
    email = await gw.add_user("admin")
    codes = (await _enrol(gw, email))[1]

    first = await gw.password_grant(email, otp=codes[0])
    second = await gw.password_grant(email, otp=codes[0])

    assert (first.status_code, second.status_code) == (200, 400)


async def test_a_totp_code_sent_by_racing_logins_gets_one_of_them_in(gw: RunningGateway) -> None:
    """A code replayed at the same moment as its first use (an eavesdropper racing the user): the step
    is claimed by a compare-and-set, so exactly one login succeeds (before, all of them did)."""
    email = await gw.add_user("admin")
    secret = (await _enrol(gw, email))[0]
    code = pyotp.TOTP(secret).at(time.time() + 30)

    responses = await asyncio.gather(*(gw.password_grant(email, otp=code) for _ in range(6)))

    assert sorted(r.status_code for r in responses) == [200] + [400] * 5


async def test_a_recovery_code_sent_by_racing_logins_gets_one_of_them_in(gw: RunningGateway) -> None:
    email = await gw.add_user("admin")
    codes = (await _enrol(gw, email))[1]

    responses = await asyncio.gather(*(gw.password_grant(email, otp=codes[1]) for _ in range(6)))

    assert sorted(r.status_code for r in responses) == [200] + [400] * 5


async def test_a_step_claimed_by_another_transaction_is_refused(gw: RunningGateway) -> None:
    """The interleaving made certain: two transactions read the account before either used the code;
    the first claims its step and commits; the second is refused."""
    from sqlalchemy import select
    from sqlmodel import col

    from gateway.models import User
    from gateway.users import check_totp

    email = await gw.add_user("admin")
    secret = (await _enrol(gw, email))[0]
    code = pyotp.TOTP(secret).at(time.time() + 30)
    database = gw.runtime.database
    async with database.sessionmaker() as first, database.sessionmaker() as second:
        mine = await first.scalar(select(User).where(col(User.email) == email))
        theirs = await second.scalar(select(User).where(col(User.email) == email))
        assert mine is not None
        assert theirs is not None
        assert await check_totp(first, mine, gw.runtime.box, code)
        await first.commit()
        assert not await check_totp(second, theirs, gw.runtime.box, code)
        await second.rollback()


async def test_lockout_engages_after_the_configured_failures(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(lockout_threshold=3, lockout_base_seconds=60) as gw:
        email = await gw.add_user("analyst")
        for _ in range(3):
            assert (await gw.password_grant(email, "wrong password!")).status_code == 400

        locked = await gw.password_grant(email, ADMIN_PASSWORD)

    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 60


async def test_failures_sent_at_once_are_all_counted(start_gateway: Callable[..., Any]) -> None:
    """Wrong passwords sent at the same moment for one account: every failure is counted (the count is
    one atomic upsert), none is a 500 (the first failures of a key raced to create its row), and the
    account ends locked. A read-then-write lost counts, letting a burst of guesses past the threshold."""
    from gateway.models import LoginThrottle
    from gateway.throttle import account_key

    async with start_gateway(lockout_threshold=50, lockout_base_seconds=60) as gw:
        email = await gw.add_user("analyst")
        responses = await asyncio.gather(*(gw.password_grant(email, "wrong password!") for _ in range(8)))
        assert [r.status_code for r in responses] == [400] * 8
        async with gw.runtime.database.sessionmaker() as session:
            row = await session.get(LoginThrottle, account_key(email))
            assert row is not None
            assert row.failures == 8
        assert (await gw.password_grant(email, ADMIN_PASSWORD)).status_code == 200
        async with gw.runtime.database.sessionmaker() as session:
            assert await session.get(LoginThrottle, account_key(email)) is None  # reset by the success


def test_lockout_grows_with_each_failure_past_the_threshold() -> None:
    policy = LockoutPolicy(threshold=3, base_seconds=30, max_seconds=100)

    assert [policy.lock_seconds(n) for n in (2, 3, 4, 5)] == [0, 30, 60, 100]


async def test_lockout_per_ip_covers_every_account(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(lockout_threshold=100, lockout_ip_threshold=2, lockout_base_seconds=60) as gw:
        for _ in range(2):
            await gw.password_grant(await gw.add_user("analyst"), "wrong password!")

        response = await gw.password_grant(await gw.add_user("analyst"))

    assert response.status_code == 429


async def test_logins_and_lockouts_are_audited(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(lockout_threshold=2, lockout_base_seconds=60) as gw:
        admin = await gw.admin_headers()
        email = await gw.add_user("analyst")
        for _ in range(2):
            await gw.password_grant(email, "wrong password!")

        failures = (await gw.http.get("/admin/audit", params={"actor": email}, headers=admin)).json()["items"]

    assert [(e["action"], e["outcome"]) for e in failures] == [
        ("lockout", "locked"),
        ("login", "failure"),
        ("login", "failure"),
    ]


async def test_a_successful_login_resets_the_failure_count(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(lockout_threshold=3, lockout_ip_threshold=3, lockout_base_seconds=60) as gw:
        email = await gw.add_user("analyst")
        for _ in range(2):
            assert (await gw.password_grant(email, "wrong password!")).status_code == 400
        assert (await gw.password_grant(email)).status_code == 200
        for _ in range(2):
            assert (await gw.password_grant(email, "wrong password!")).status_code == 400

        response = await gw.password_grant(email)

    assert response.status_code == 200


def test_a_totp_code_with_non_ascii_characters_does_not_match() -> None:
    secret = pyotp.random_base32()
    assert totp_step_matching(secret, "\uff11\uff12\uff13\uff14\uff15\uff16") is None
    assert totp_step_matching(secret, pyotp.TOTP(secret).now()) is not None
