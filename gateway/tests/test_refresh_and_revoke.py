"""Refresh tokens rotate on every use; reusing a rotated one revokes the family. RFC 7009 revocation."""

from __future__ import annotations

import asyncio

from gateway_harness import RunningGateway
from jose import jwt


async def _login(gw: RunningGateway) -> dict[str, str]:
    body: dict[str, str] = (await gw.password_grant(await gw.add_user("data_steward"))).json()
    return body


async def _refresh(gw: RunningGateway, token: str) -> dict[str, object]:
    response = await gw.http.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )
    return {"status": response.status_code, **response.json()}


async def test_refresh_returns_a_new_access_and_refresh_token(gw: RunningGateway) -> None:
    first = await _login(gw)

    second = await _refresh(gw, first["refresh_token"])

    assert second["status"] == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == first["scope"]


async def test_reusing_a_rotated_refresh_token_revokes_the_family(gw: RunningGateway) -> None:
    first = await _login(gw)
    second = await _refresh(gw, first["refresh_token"])

    reuse = await _refresh(gw, first["refresh_token"])
    after = await _refresh(gw, str(second["refresh_token"]))

    assert (reuse["status"], reuse["error"]) == (400, "invalid_grant")
    assert (after["status"], after["error"]) == (400, "invalid_grant")


async def test_refresh_token_reuse_is_audited(gw: RunningGateway) -> None:
    first = await _login(gw)
    await _refresh(gw, first["refresh_token"])
    await _refresh(gw, first["refresh_token"])

    audit = await gw.http.get(
        "/admin/audit", params={"action": "refresh_token.reuse"}, headers=await gw.admin_headers()
    )

    assert audit.json()["items"][0]["detail"]["family_revoked"] is True


async def test_an_unknown_refresh_token_gets_invalid_grant(gw: RunningGateway) -> None:
    response = await _refresh(gw, "not-a-token")

    assert (response["status"], response["error"]) == (400, "invalid_grant")


async def test_revoking_a_refresh_token_ends_its_family(gw: RunningGateway) -> None:
    first = await _login(gw)

    revoked = await gw.http.post("/oauth/revoke", data={"token": first["refresh_token"]})
    response = await _refresh(gw, first["refresh_token"])

    assert revoked.status_code == 200
    assert response["status"] == 400


async def test_revoking_an_access_token_makes_the_gateway_refuse_it(gw: RunningGateway) -> None:
    access = (await _login(gw))["access_token"]

    await gw.http.post("/oauth/revoke", data={"token": access, "token_type_hint": "access_token"})
    response = await gw.http.get("/v1/me", headers={"Authorization": f"Bearer {access}"})

    assert response.status_code == 401


async def test_revocations_of_one_access_token_sent_at_once_all_answer_200(gw: RunningGateway) -> None:
    """RFC 7009: revoking a revoked token answers 200; revocations racing each other too (before, the
    losers of the insert of the revoked token id got a 500)."""
    access = (await _login(gw))["access_token"]

    responses = await asyncio.gather(
        *(gw.http.post("/oauth/revoke", data={"token": access}) for _ in range(6))
    )

    assert [r.status_code for r in responses] == [200] * 6
    assert (await gw.http.get("/v1/me", headers={"Authorization": f"Bearer {access}"})).status_code == 401


async def test_revoking_an_unknown_token_answers_200(gw: RunningGateway) -> None:
    response = await gw.http.post("/oauth/revoke", data={"token": "whatever"})

    assert response.status_code == 200


async def test_refresh_token_reuse_revokes_the_familys_access_tokens_at_once(gw: RunningGateway) -> None:
    first = await _login(gw)
    second = await _refresh(gw, first["refresh_token"])
    first_access = {"Authorization": f"Bearer {first['access_token']}"}
    second_access = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await gw.http.get("/v1/me", headers=second_access)).status_code == 200

    await _refresh(gw, first["refresh_token"])  # reuse: the token was stolen

    assert (await gw.http.get("/v1/me", headers=first_access)).status_code == 401
    assert (await gw.http.get("/v1/me", headers=second_access)).status_code == 401
    revoked = (await gw.http.get("/.well-known/revocations.json")).json()["token_ids"]
    assert {_jti(first["access_token"]), _jti(str(second["access_token"]))} <= set(revoked)


async def test_another_login_of_the_same_person_is_not_revoked_by_a_reuse(gw: RunningGateway) -> None:
    email = await gw.add_user("data_steward")
    stolen = (await gw.password_grant(email)).json()
    other = (await gw.password_grant(email)).json()
    await _refresh(gw, stolen["refresh_token"])

    await _refresh(gw, stolen["refresh_token"])

    response = await gw.http.get("/v1/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert response.status_code == 200


def _jti(token: str) -> str:
    jti: str = jwt.get_unverified_claims(token)["jti"]
    return jti
