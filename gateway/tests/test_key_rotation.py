"""Key rotation: new tokens use the new key, tokens of the old key keep working until they expire."""

from __future__ import annotations

import asyncio
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


async def test_concurrent_rotations_leave_one_active_key(gw: RunningGateway) -> None:
    """Rotations racing each other: every one succeeds, one after the other, and exactly one key is active
    afterwards (the partial unique index `ux_signing_keys_one_active`); the others are retired and stay
    published until their tokens expire. Before, each racing rotation left its own key active."""
    admin = await gw.admin_headers()
    before = {key["kid"] for key in (await gw.http.get("/admin/keys", headers=admin)).json()["items"]}

    responses = await asyncio.gather(*(gw.http.post("/admin/keys/rotate", headers=admin) for _ in range(6)))

    assert [r.status_code for r in responses] == [201] * 6
    made = {r.json()["kid"] for r in responses}
    keys = (await gw.http.get("/admin/keys", params={"limit": 500}, headers=admin)).json()["items"]
    active = [key["kid"] for key in keys if key["status"] == "active"]
    assert len(active) == 1
    assert active[0] in made
    assert len(made) == 6
    for key in keys:
        if key["kid"] in (made | before) - set(active):
            assert key["status"] == "retired"
            assert key["published_until"] is not None
    # New tokens are signed with the one active key.
    assert jwt.get_unverified_header(await _token(gw))["kid"] == active[0]


async def test_the_first_key_is_created_once_by_concurrent_starts(gw: RunningGateway) -> None:
    """Two gateways starting on an empty key table at once: one creates the first key, the other finds
    it (no second active key, no error)."""
    from sqlalchemy import delete, func, select
    from sqlmodel import col

    from gateway.keys import ensure_signing_key
    from gateway.models import SigningKey

    database = gw.runtime.database
    async with database.session() as session:
        await session.execute(delete(SigningKey))

    async def start() -> bool:
        async with database.session() as session:
            return await ensure_signing_key(session, gw.runtime.box) is not None

    created = await asyncio.gather(*(start() for _ in range(4)))

    assert created.count(True) == 1
    async with database.session() as session:
        active = await session.scalar(
            select(func.count()).select_from(SigningKey).where(col(SigningKey.status) == "active")
        )
    assert active == 1
