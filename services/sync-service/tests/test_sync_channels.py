"""The channel registry: register (secret shown once, stored encrypted), read, list, change with
If-Match, retire; every change is an event on ecom.channels.v1; bad input changes nothing."""

import asyncio

import pytest
from sqlalchemy import select
from sync_support import Running, channel_body, register, unique, wait_for_events

from contracts import topics
from sync_service.channels.models import Channel

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_registering_shows_the_secret_once_and_stores_it_encrypted(running: Running) -> None:
    created = await register(running, price_adjustment_percent="12.5", location_codes=["wh_main"])
    secret = created["signing_secret"]
    assert secret.startswith("whsec_")
    assert created["price_adjustment_percent"] == "12.5"

    read = await running.client.get(f"/v1/channels/{created['id']}", headers=running.reader)
    assert read.status_code == 200
    assert "signing_secret" not in read.json()
    assert read.headers["ETag"] == '"1"'
    async with running.database.session() as session:
        row = (await session.execute(select(Channel).where(Channel.id == created["id"]))).scalar_one()
    assert secret not in row.secret_ciphertext
    assert secret[6:] not in row.secret_ciphertext


async def test_registration_is_published_without_endpoint_or_secret(
    running: Running, kafka_bootstrap: str
) -> None:
    created = await register(running, kind="pos", location_codes=["store_paris"], safety_buffer=2)
    [event] = await wait_for_events(
        kafka_bootstrap,
        topics.CHANNELS,
        lambda e: e.subject == created["id"] and e.type.endswith("registered.v1"),
    )
    assert event.data["code"] == created["code"]
    assert event.data["kind"] == "pos"
    assert event.data["location_codes"] == ["store_paris"]
    assert event.data["safety_buffer"] == 2
    assert "endpoint" not in event.data
    assert created["signing_secret"] not in event.to_json_bytes().decode()


async def test_a_taken_code_is_a_conflict(running: Running) -> None:
    created = await register(running)
    again = await running.client.post(
        "/v1/channels", json=channel_body(code=created["code"]), headers=running.admin
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "fields",
    [
        {"endpoint": None},
        {"endpoint": "ftp://example.com/x"},
        {"endpoint": "http://" + "a" * 2100 + ".com"},
        {"endpoint": "http://169.254.169.254/latest/meta-data"},
        {"endpoint": "http://[fe80::1]/listings"},
        # 169.254.169.254 as the resolver also reads it (inet_aton's legacy forms): these were accepted.
        {"endpoint": "http://2852039166/latest/meta-data"},
        {"endpoint": "http://0xa9fea9fe/latest/meta-data"},
        {"endpoint": "http://169.254.43518/latest/meta-data"},
        {"endpoint": "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data"},
        {"endpoint": "http://0/listings"},
        {"endpoint": "http://0.0.0.0:8000/listings"},
        {"endpoint": "http://224.0.0.1/listings"},
        {"endpoint": "https://user:password@shop.example.com/listings"},
        {"code": "Has Spaces"},
        {"currency": "EURO"},
        {"currency": "XYZ"},
        # ISO 4217 codes that are no currency: no currency (XXX), testing (XTS), gold (XAU).
        {"currency": "XXX"},
        {"currency": "XTS"},
        {"currency": "XAU"},
        {"kind": "carrier-pigeon"},
        {"completeness_threshold": 1.5},
        {"price_adjustment_percent": "1e9"},
        {"price_adjustment_percent": "NaN"},
        {"safety_buffer": -1},
        {"location_codes": ["x"] * 101},
        {"category_ids": ["bad id!"]},
        {"locale": "french"},
        {"secret": "whsec_mine"},
    ],
)
async def test_bad_input_is_refused_and_registers_nothing(
    running: Running, fields: dict[str, object]
) -> None:
    body = channel_body(**fields)
    response = await running.client.post("/v1/channels", json=body, headers=running.admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    listed = await running.client.get("/v1/channels", params={"limit": 500}, headers=running.reader)
    assert body["code"] not in {c["code"] for c in listed.json()["items"]}


async def test_a_feed_needs_no_endpoint(running: Running) -> None:
    created = await register(running, kind="feed", endpoint=None)
    assert created["endpoint"] is None


async def test_reading_needs_sync_read_and_changing_needs_sync_admin(running: Running) -> None:
    refused = await running.client.post(
        "/v1/channels", json=channel_body(), headers=running.tokens.auth_header("sync:read")
    )
    assert refused.status_code == 403
    anonymous = await running.client.get("/v1/channels")
    assert anonymous.status_code == 401
    other = await running.client.get("/v1/channels", headers=running.tokens.auth_header("products:read"))
    assert other.status_code == 403


async def test_update_needs_if_match_and_refuses_a_stale_one(running: Running, kafka_bootstrap: str) -> None:
    created = await register(running)
    url = f"/v1/channels/{created['id']}"
    missing = await running.client.patch(url, json={"safety_buffer": 3}, headers=running.admin)
    assert missing.status_code == 428
    changed = await running.client.patch(
        url, json={"safety_buffer": 3, "status": "paused"}, headers={**running.admin, "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["safety_buffer"] == 3
    assert changed.json()["status"] == "paused"
    assert changed.headers["ETag"] == '"2"'
    stale = await running.client.patch(
        url, json={"safety_buffer": 5}, headers={**running.admin, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    [event] = await wait_for_events(
        kafka_bootstrap,
        topics.CHANNELS,
        lambda e: e.subject == created["id"] and e.type.endswith("updated.v1"),
    )
    assert event.data["changed"] == ["safety_buffer", "status"]
    assert event.data["version"] == 2


async def test_concurrent_updates_with_one_version_let_exactly_one_win(running: Running) -> None:
    created = await register(running)
    url = f"/v1/channels/{created['id']}"
    headers = {**running.admin, "If-Match": '"1"'}
    answers = await asyncio.gather(
        *(running.client.patch(url, json={"safety_buffer": n}, headers=headers) for n in range(1, 7))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1
    assert set(statuses) == {200, 412}
    final = (await running.client.get(url, headers=running.reader)).json()
    assert final["version"] == 2


async def test_retire_races_an_update_and_a_retired_channel_cannot_change(
    running: Running, kafka_bootstrap: str
) -> None:
    created = await register(running)
    url = f"/v1/channels/{created['id']}"
    headers = {**running.admin, "If-Match": '"1"'}
    retire, update = await asyncio.gather(
        running.client.patch(url, json={"status": "retired"}, headers=headers),
        running.client.patch(url, json={"name": "Renamed"}, headers=headers),
    )
    assert sorted([retire.status_code, update.status_code]) == [200, 412]
    current = (await running.client.get(url, headers=running.reader)).json()
    if retire.status_code == 200:
        assert current["status"] == "retired"
        after = await running.client.patch(
            url, json={"status": "enabled"}, headers={**running.admin, "If-Match": '"2"'}
        )
        assert after.status_code == 409
        await wait_for_events(
            kafka_bootstrap,
            topics.CHANNELS,
            lambda e: e.subject == created["id"] and e.type.endswith("retired.v1"),
        )
    else:
        assert current["name"] == "Renamed"


async def test_removing_a_pushed_channels_endpoint_is_refused(running: Running) -> None:
    created = await register(running)
    response = await running.client.patch(
        f"/v1/channels/{created['id']}", json={"endpoint": None}, headers={**running.admin, "If-Match": '"1"'}
    )
    assert response.status_code == 422


async def test_rotating_the_secret_shows_a_new_one_once(running: Running) -> None:
    created = await register(running)
    rotated = await running.client.post(
        f"/v1/channels/{created['id']}/secret", headers={**running.admin, "If-Match": '"1"'}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["signing_secret"] != created["signing_secret"]
    assert rotated.json()["version"] == 2


async def test_list_pages_by_code_and_filters_by_kind(running: Running) -> None:
    prefix = unique("zz-")
    codes = [f"{prefix}-{n}" for n in range(5)]
    for code in codes:
        await register(running, code=code, kind="feed", endpoint=None)
    seen: list[str] = []
    params: dict[str, object] = {"limit": 2, "kind": "feed"}
    for _ in range(50):
        page = (await running.client.get("/v1/channels", params=params, headers=running.reader)).json()
        assert all(item["kind"] == "feed" for item in page["items"])
        seen += [item["code"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [code for code in seen if code.startswith(prefix)] == codes
    assert seen == sorted(seen)
    bad = await running.client.get("/v1/channels", params={"cursor": "!!"}, headers=running.reader)
    assert bad.status_code == 400


async def test_unknown_channel_is_404(running: Running) -> None:
    response = await running.client.get(f"/v1/channels/{unique()}", headers=running.reader)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
