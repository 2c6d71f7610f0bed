"""Key rotation: new tokens use the new key, tokens of the old key keep working until they expire."""

from __future__ import annotations

from datetime import datetime

from gateway_harness import RunningGateway
from jose import jwt


async def _token(gw: RunningGateway) -> str:
    token: str = (await gw.password_grant(await gw.add_user("analyst"))).json()["access_token"]
    return token


async def test_after_rotation_new_tokens_use_the_new_key(gw: RunningGateway) -> None:
    old = await _token(gw)

    rotated = await gw.http.post("/admin/keys/rotate", headers=await gw.admin_headers())
    new = await _token(gw)

    assert rotated.status_code == 201
    assert jwt.get_unverified_header(new)["kid"] == rotated.json()["kid"]
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]


async def test_a_token_of_the_retired_key_keeps_working(gw: RunningGateway) -> None:
    old = await _token(gw)

    await gw.http.post("/admin/keys/rotate", headers=await gw.admin_headers())
    response = await gw.http.get("/v1/me", headers={"Authorization": f"Bearer {old}"})

    assert response.status_code == 200


async def test_the_jwks_keeps_the_retired_key_until_its_tokens_expire(gw: RunningGateway) -> None:
    old_kid = jwt.get_unverified_header(await _token(gw))["kid"]

    new_kid = (await gw.http.post("/admin/keys/rotate", headers=await gw.admin_headers())).json()["kid"]
    kids = {key["kid"] for key in (await gw.http.get("/.well-known/jwks.json")).json()["keys"]}
    keys = (await gw.http.get("/admin/keys", headers=await gw.admin_headers())).json()["items"]

    assert {old_kid, new_kid} <= kids
    retired = next(key for key in keys if key["kid"] == old_kid)
    assert retired["status"] == "retired"
    assert retired["published_until"] is not None


async def test_a_retired_key_past_its_tokens_lifetime_leaves_the_jwks(gw: RunningGateway) -> None:
    from sqlalchemy import update
    from sqlmodel import col

    from gateway.models import SigningKey

    old_kid = jwt.get_unverified_header(await _token(gw))["kid"]
    await gw.http.post("/admin/keys/rotate", headers=await gw.admin_headers())
    async with gw.runtime.database.session() as session:
        await session.execute(
            update(SigningKey).where(col(SigningKey.kid) == old_kid).values(published_until=0)
        )
    await gw.runtime.keyring.load()

    kids = {key["kid"] for key in (await gw.http.get("/.well-known/jwks.json")).json()["keys"]}

    assert old_kid not in kids


async def _active_key_created(gw: RunningGateway) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = (await gw.http.get("/metrics")).text
    name = "gateway_signing_key_created_timestamp_seconds"
    family = next(f for f in text_string_to_metric_families(text) if f.name == name)
    return float(family.samples[0].value)


async def test_metrics_carry_the_active_keys_creation_time(gw: RunningGateway) -> None:
    before = await _active_key_created(gw)
    rotated = (await gw.http.post("/admin/keys/rotate", headers=await gw.admin_headers())).json()
    await gw.runtime.keyring.load()
    after = await _active_key_created(gw)
    keys = (await gw.http.get("/admin/keys", headers=await gw.admin_headers())).json()["items"]
    new = next(key for key in keys if key["kid"] == rotated["kid"])

    assert before > 0
    assert after >= before
    assert abs(after - datetime.fromisoformat(new["created_at"]).timestamp()) < 1
