"""Editing attribute families after creation: ETag/If-Match, changes products' values still fit, refused
changes that would invalidate values (409 naming the count), and completeness following the family."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from product_support import create_category, create_family, create_product, eventually, unique
from sqlalchemy import select, update
from sqlmodel import col

from contracts import CloudEvent
from product_service.catalog import repository
from product_service.catalog.models import AttributeFamily
from servicekit.db import Database
from servicekit.events.models import OutboxMessage
from servicekit.testing import TestTokenIssuer, using_postgres

pytestmark = pytest.mark.asyncio(loop_scope="module")

COLOR = {"code": "color", "label": "Colour", "type": "enum", "options": ["red", "blue"]}
MATERIAL = {"code": "material", "type": "text"}


async def _get(client: httpx.AsyncClient, tokens: TestTokenIssuer, path: str) -> httpx.Response:
    return await client.get(path, headers=tokens.auth_header("products:read"))


async def _patch(
    client: httpx.AsyncClient,
    tokens: TestTokenIssuer,
    family_id: str,
    body: dict[str, Any],
    *,
    if_match: str | None = '"1"',
) -> httpx.Response:
    headers = tokens.auth_header("products:write")
    if if_match is not None:
        headers["If-Match"] = if_match
    return await client.patch(f"/v1/families/{family_id}", json=body, headers=headers)


async def _family_with_products(
    client: httpx.AsyncClient,
    tokens: TestTokenIssuer,
    attributes: list[dict[str, Any]],
    values: list[dict[str, Any]],
    **fields: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    family = await create_family(client, tokens, attributes)
    category = await create_category(client, tokens, family_id=family["id"])
    products = [
        await create_product(client, tokens, category_id=category["id"], attributes=value, **fields)
        for value in values
    ]
    return family, products


async def test_family_read_has_an_etag(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    family = await create_family(client, token_issuer, [MATERIAL])
    response = await _get(client, token_issuer, f"/v1/families/{family['id']}")
    assert response.headers["ETag"] == '"1"'
    assert response.json()["version"] == 1


async def test_family_patch_without_if_match_is_428(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(client, token_issuer, [MATERIAL])
    response = await _patch(client, token_issuer, family["id"], {"title": "Renamed"}, if_match=None)
    assert response.status_code == 428


async def test_stale_family_patch_is_412(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    family = await create_family(client, token_issuer, [MATERIAL])
    first = await _patch(client, token_issuer, family["id"], {"title": "First"})
    assert first.status_code == 200, first.text
    second = await _patch(client, token_issuer, family["id"], {"title": "Second"})
    assert second.status_code == 412
    current = (await _get(client, token_issuer, f"/v1/families/{family['id']}")).json()
    assert (current["title"], current["version"]) == ("First", 2)


async def test_adding_an_attribute_and_relabelling_one(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, (product,) = await _family_with_products(client, token_issuer, [COLOR], [{"color": "red"}])
    attributes = [
        {**COLOR, "label": "Color"},
        {"code": "weight", "type": "measurement", "units": ["g", "kg"]},
    ]
    response = await _patch(client, token_issuer, family["id"], {"attributes": attributes})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    body = response.json()
    assert [(a["code"], a["label"]) for a in body["attributes"]] == [("color", "Color"), ("weight", None)]
    assert body["impact"] == {"products": 1, "completeness_changed": 0, "now_below_threshold": {}}
    update = await client.patch(
        f"/v1/products/{product['id']}",
        json={"attributes": {"weight": {"value": 2, "unit": "kg"}}},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"1"'},
    )
    assert update.status_code == 200, update.text


async def test_making_an_attribute_required_lowers_completeness(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, (product,) = await _family_with_products(
        client, token_issuer, [COLOR, MATERIAL], [{"color": "red"}], channels=["web"]
    )
    before = (await _get(client, token_issuer, f"/v1/products/{product['id']}")).json()
    assert before["completeness"]["web"]["publishable"] is True
    required = [COLOR, {**MATERIAL, "required_channels": ["web"]}]
    response = await _patch(client, token_issuer, family["id"], {"attributes": required})
    assert response.status_code == 200, response.text
    assert response.json()["impact"] == {
        "products": 1,
        "completeness_changed": 1,
        "now_below_threshold": {"web": 1},
    }
    after = (await _get(client, token_issuer, f"/v1/products/{product['id']}")).json()
    assert after["completeness"]["web"] == {
        "completeness": 0.0,
        "missing": ["material"],
        "threshold": 1.0,
        "publishable": False,
    }
    report = (
        await _get(
            client, token_issuer, "/v1/reports/completeness?channel=web&below_threshold=true&limit=500"
        )
    ).json()
    assert product["id"] in [entry["product_id"] for entry in report["items"]]


async def _product_events(database_url: str, product_id: str) -> list[CloudEvent]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            rows = await session.execute(
                select(OutboxMessage.payload)  # type: ignore[call-overload]
                .where(col(OutboxMessage.key) == product_id)
                .order_by(col(OutboxMessage.id))
            )
            return [CloudEvent.from_json_bytes(payload) for payload in rows.scalars()]
    finally:
        await database.dispose()


async def test_a_family_change_announces_the_products_whose_completeness_it_moves(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    required_material = {**MATERIAL, "required_channels": ["web"]}
    family, (moved, unmoved, archived) = await _family_with_products(
        client,
        token_issuer,
        [COLOR, required_material],
        [{"material": "oak"}, {"color": "red", "material": "oak"}, {"material": "pine"}],
        channels=["web"],
    )
    archive = await client.patch(
        f"/v1/products/{archived['id']}",
        json={"status": "archived"},
        headers=token_issuer.auth_header("products:write") | {"If-Match": f'"{archived["version"]}"'},
    )
    assert archive.status_code == 200, archive.text
    before = {p["id"]: len(await _product_events(database_url, p["id"])) for p in (moved, unmoved, archived)}

    required = [{**COLOR, "required_channels": ["web"]}, required_material]
    response = await _patch(client, token_issuer, family["id"], {"attributes": required})
    assert response.status_code == 200, response.text

    events = (await _product_events(database_url, moved["id"]))[before[moved["id"]] :]
    assert [(e.type, e.data["changed_fields"], e.data["version"]) for e in events] == [
        ("ecom.product.updated.v1", ["completeness"], moved["version"])
    ]
    assert events[0].data["details"]["completeness"] == {"web": 0.5}
    # Its completeness did not move (both are set), or it is archived: nothing to announce.
    assert len(await _product_events(database_url, unmoved["id"])) == before[unmoved["id"]]
    assert len(await _product_events(database_url, archived["id"])) == before[archived["id"]]


async def test_required_attribute_made_optional_raises_completeness(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, (product,) = await _family_with_products(
        client, token_issuer, [COLOR, {**MATERIAL, "required_channels": ["print"]}], [{"color": "blue"}]
    )
    before = (await _get(client, token_issuer, f"/v1/products/{product['id']}")).json()
    assert before["completeness"]["print"]["completeness"] == 0.0
    response = await _patch(client, token_issuer, family["id"], {"attributes": [COLOR, MATERIAL]})
    assert response.json()["impact"]["completeness_changed"] == 1
    after = (await _get(client, token_issuer, f"/v1/products/{product['id']}")).json()
    assert "print" not in after["completeness"]


async def test_removing_an_enum_option_in_use_is_409_naming_the_products(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, _ = await _family_with_products(
        client, token_issuer, [COLOR], [{"color": "red"}, {"color": "red"}, {"color": "blue"}]
    )
    response = await _patch(
        client, token_issuer, family["id"], {"attributes": [{**COLOR, "options": ["blue"]}]}
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["products_affected"] == 2
    assert "2 product(s)" in problem["detail"]
    assert len(problem["examples"]) == 2
    unchanged = (await _get(client, token_issuer, f"/v1/families/{family['id']}")).json()
    assert (unchanged["version"], unchanged["attributes"][0]["options"]) == (1, ["red", "blue"])


async def test_removing_an_unused_enum_option_is_allowed(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, _ = await _family_with_products(client, token_issuer, [COLOR], [{"color": "blue"}])
    response = await _patch(
        client, token_issuer, family["id"], {"attributes": [{**COLOR, "options": ["blue"]}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["attributes"][0]["options"] == ["blue"]


async def test_removing_an_attribute_in_use_is_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, _ = await _family_with_products(client, token_issuer, [COLOR, MATERIAL], [{"material": "oak"}])
    response = await _patch(client, token_issuer, family["id"], {"attributes": [COLOR]})
    assert response.status_code == 409
    assert response.json()["products_affected"] == 1


async def test_changing_the_type_of_an_attribute_in_use_is_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, _ = await _family_with_products(client, token_issuer, [MATERIAL], [{"material": "oak"}])
    response = await _patch(
        client, token_issuer, family["id"], {"attributes": [{"code": "material", "type": "number"}]}
    )
    assert response.status_code == 409


async def test_new_values_are_checked_against_the_changed_family(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, (product,) = await _family_with_products(client, token_issuer, [COLOR], [{"color": "blue"}])
    await _get(client, token_issuer, f"/v1/products/{product['id']}")  # the family is now cached by reads
    response = await _patch(
        client, token_issuer, family["id"], {"attributes": [{**COLOR, "options": ["blue", "green"]}]}
    )
    assert response.status_code == 200, response.text
    update = await client.patch(
        f"/v1/products/{product['id']}",
        json={"attributes": {"color": "green"}},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"1"'},
    )
    assert update.status_code == 200, update.text
    refused = await client.patch(
        f"/v1/products/{product['id']}",
        json={"attributes": {"color": "red"}},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"2"'},
    )
    assert refused.status_code == 422


async def test_renaming_a_family_keeps_its_attributes(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family, _ = await _family_with_products(client, token_issuer, [COLOR], [{"color": "red"}, {}])
    response = await _patch(client, token_issuer, family["id"], {"title": "Paints"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["title"], body["version"], body["attributes"]) == ("Paints", 2, family["attributes"])
    assert body["impact"] == {"products": 2, "completeness_changed": 0, "now_below_threshold": {}}


async def test_family_patch_refuses_duplicate_codes_and_nulls(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(client, token_issuer, [MATERIAL])
    duplicate = await _patch(client, token_issuer, family["id"], {"attributes": [MATERIAL, MATERIAL]})
    null_title = await _patch(client, token_issuer, family["id"], {"title": None})
    assert (duplicate.status_code, null_title.status_code) == (422, 422)


async def test_family_patch_of_an_unknown_family_is_404(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await _patch(client, token_issuer, unique("nope-"), {"title": "X"})
    assert response.status_code == 404


async def test_family_patch_needs_products_write(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(client, token_issuer, [MATERIAL])
    response = await client.patch(
        f"/v1/families/{family['id']}",
        json={"title": "X"},
        headers={**token_issuer.auth_header("products:read"), "If-Match": '"1"'},
    )
    assert response.status_code == 403


async def test_a_family_changed_by_another_replica_shows_once_the_cache_entry_expires(
    client: httpx.AsyncClient,
    token_issuer: TestTokenIssuer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repository, "FAMILY_CACHE_SECONDS", 0.2)
    family, (product,) = await _family_with_products(client, token_issuer, [MATERIAL], [{}], channels=["web"])
    path = f"/v1/products/{product['id']}"
    assert (await _get(client, token_issuer, path)).json()["completeness"]["web"]["completeness"] == 1.0

    # Another replica edits the family: this process's cache is not told.
    required = [{**MATERIAL, "required_channels": ["web"]}]
    database = Database(database_url)
    try:
        async with database.session() as session:
            await session.execute(
                update(AttributeFamily)
                .where(col(AttributeFamily.id) == family["id"])
                .values(attributes=required, version=2)
            )
    finally:
        await database.dispose()

    async def web_completeness_dropped() -> bool:
        body = (await _get(client, token_issuer, path)).json()
        return bool(body["completeness"]["web"]["completeness"] == 0.0)

    await eventually(web_completeness_dropped)


@pytest.mark.postgres
async def test_a_product_write_during_a_family_edit_is_validated_against_the_edited_family(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    assert using_postgres(), "run with TEST_DATABASE_URL pointing at PostgreSQL (make test-pg)"
    family = await create_family(client, token_issuer, [COLOR])
    category = await create_category(client, token_issuer, family_id=family["id"])
    database = Database(database_url)
    try:
        async with database.session() as edit:
            # A family edit in progress: the row is locked, "blue" is about to be dropped.
            await edit.execute(
                select(AttributeFamily).where(col(AttributeFamily.id) == family["id"]).with_for_update()
            )
            write = asyncio.create_task(
                client.post(
                    "/v1/products",
                    json={
                        "title": unique("Blue "),
                        "category_id": category["id"],
                        "attributes": {"color": "blue"},
                        "variants": [{"sku": unique("SKU-")}],
                    },
                    headers=token_issuer.auth_header("products:write"),
                )
            )
            await asyncio.sleep(0.5)  # let the write reach the lock; if it is later, it reads the new family
            narrowed = [{**COLOR, "options": ["red"]}]
            await edit.execute(
                update(AttributeFamily)
                .where(col(AttributeFamily.id) == family["id"])
                .values(attributes=narrowed, version=2)
            )
        response = await asyncio.wait_for(write, timeout=30)
    finally:
        await database.dispose()
    assert response.status_code == 422, response.text
    assert "color" in response.text


async def test_attribute_codes_must_be_unique_on_create_and_on_patch(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    created = await client.post(
        "/v1/families",
        json={"code": unique("fam_"), "title": "Twice", "attributes": [MATERIAL, MATERIAL]},
        headers=token_issuer.auth_header("products:write"),
    )
    assert created.status_code == 422, created.text
    assert "attribute codes must be unique" in created.text
    family = await create_family(client, token_issuer, [MATERIAL])
    patched = await _patch(client, token_issuer, family["id"], {"attributes": [MATERIAL, MATERIAL]})
    assert patched.status_code == 422, patched.text
    assert "attribute codes must be unique" in patched.text
