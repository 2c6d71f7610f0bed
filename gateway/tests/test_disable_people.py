"""Operators disable and enable people's accounts; a disabled person's tokens stop working."""

from __future__ import annotations

import asyncio

from gateway_harness import RunningGateway

from gateway.users import get_by_email


async def _person(gw: RunningGateway) -> tuple[str, str, dict[str, str]]:
    email = await gw.add_user("data_steward")
    body = (await gw.password_grant(email)).json()
    async with gw.runtime.database.session() as session:
        user = await get_by_email(session, email)
    assert user is not None
    return email, user.id, {"Authorization": f"Bearer {body['access_token']}"}


async def test_a_disabled_persons_token_is_refused_at_once(gw: RunningGateway) -> None:
    _email, user_id, headers = await _person(gw)
    assert (await gw.http.get("/v1/me", headers=headers)).status_code == 200

    disabled = await gw.http.post(f"/admin/users/{user_id}/disable", headers=await gw.admin_headers())
    after = await gw.http.get("/v1/me", headers=headers)

    assert disabled.status_code == 200
    assert disabled.json()["status"] == "disabled"
    assert after.status_code == 401
    assert after.headers["content-type"] == "application/problem+json"


async def test_a_disabled_person_cannot_log_in_or_refresh_and_is_on_the_revocation_list(
    gw: RunningGateway,
) -> None:
    email, user_id, _headers = await _person(gw)
    refresh = (await gw.password_grant(email)).json()["refresh_token"]

    await gw.http.post(f"/admin/users/{user_id}/disable", headers=await gw.admin_headers())
    login = await gw.password_grant(email)
    refreshed = await gw.http.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    revocations = (await gw.http.get("/.well-known/revocations.json")).json()

    assert login.status_code == 400
    assert refreshed.status_code == 400
    assert user_id in revocations["subjects"]


async def test_an_enabled_person_logs_in_again(gw: RunningGateway) -> None:
    email, user_id, _headers = await _person(gw)
    admin = await gw.admin_headers()
    await gw.http.post(f"/admin/users/{user_id}/disable", headers=admin)

    enabled = await gw.http.post(f"/admin/users/{user_id}/enable", headers=admin)

    assert enabled.json()["status"] == "active"
    assert (await gw.password_grant(email)).status_code == 200


async def test_disabling_and_enabling_are_audited(gw: RunningGateway) -> None:
    _email, user_id, _headers = await _person(gw)
    admin = await gw.admin_headers()
    await gw.http.post(f"/admin/users/{user_id}/disable", headers=admin)
    await gw.http.post(f"/admin/users/{user_id}/disable", headers=admin)
    await gw.http.post(f"/admin/users/{user_id}/enable", headers=admin)

    audit = (await gw.http.get("/admin/audit", params={"limit": 10}, headers=admin)).json()["items"]
    mine = [(e["action"], e["outcome"]) for e in audit if e["target"] == user_id]

    assert mine[:3] == [
        ("user.enable", "success"),
        ("user.disable", "unchanged"),
        ("user.disable", "success"),
    ]


async def test_concurrent_disables_change_the_account_once(gw: RunningGateway) -> None:
    _email, user_id, _headers = await _person(gw)
    admin = await gw.admin_headers()

    responses = await asyncio.gather(
        *(gw.http.post(f"/admin/users/{user_id}/disable", headers=admin) for _ in range(5))
    )
    audit = (await gw.http.get("/admin/audit", params={"action": "user.disable"}, headers=admin)).json()
    outcomes = sorted(e["outcome"] for e in audit["items"] if e["target"] == user_id)

    assert [r.status_code for r in responses] == [200] * 5
    assert outcomes == ["success"] + ["unchanged"] * 4


async def test_disabling_an_unknown_person_gets_404(gw: RunningGateway) -> None:
    response = await gw.http.post("/admin/users/usr_nope/disable", headers=await gw.admin_headers())

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_only_an_admin_disables_people(gw: RunningGateway) -> None:
    _email, user_id, headers = await _person(gw)

    response = await gw.http.post(f"/admin/users/{user_id}/disable", headers=headers)

    assert response.status_code == 403
