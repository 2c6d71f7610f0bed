"""Administration of clients, users and the audit log."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
from gateway_harness import RunningGateway


async def test_creating_a_client_returns_its_secret_once(gw: RunningGateway) -> None:
    admin = await gw.admin_headers()

    created = await gw.http.post("/admin/clients", json={"name": "shop", "role": "storefront"}, headers=admin)
    listed = await gw.http.get("/admin/clients", headers=admin)

    assert created.status_code == 201
    assert created.json()["client_secret"]
    entry = next(c for c in listed.json()["items"] if c["client_id"] == created.json()["client_id"])
    assert "client_secret" not in entry
    assert entry["status"] == "active"


async def test_a_person_role_cannot_be_given_to_a_client(gw: RunningGateway) -> None:
    response = await gw.http.post(
        "/admin/clients", json={"name": "x", "role": "admin"}, headers=await gw.admin_headers()
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_rotating_a_secret_stops_the_old_one(gw: RunningGateway) -> None:
    client_id, old_secret = await gw.add_client()

    rotated = await gw.http.post(f"/admin/clients/{client_id}/rotate", headers=await gw.admin_headers())

    assert (await gw.client_token(client_id, old_secret)).status_code == 401
    assert (await gw.client_token(client_id, rotated.json()["client_secret"])).status_code == 200


async def test_a_disabled_client_gets_no_token(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client()

    await gw.http.post(f"/admin/clients/{client_id}/disable", headers=await gw.admin_headers())

    assert (await gw.client_token(client_id, secret)).status_code == 401


async def test_an_enabled_client_gets_tokens_again(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client()
    admin = await gw.admin_headers()
    await gw.http.post(f"/admin/clients/{client_id}/disable", headers=admin)

    await gw.http.post(f"/admin/clients/{client_id}/enable", headers=admin)

    assert (await gw.client_token(client_id, secret)).status_code == 200


async def test_racing_rotations_hand_out_only_a_secret_that_works(gw: RunningGateway) -> None:
    """Rotations of one client's secret at the same moment: each succeeds or gets 409, and exactly one
    of the secrets handed out works (the last rotation's)."""
    client_id, _ = await gw.add_client()
    admin = await gw.admin_headers()

    responses = await asyncio.gather(
        *(gw.http.post(f"/admin/clients/{client_id}/rotate", headers=admin) for _ in range(6))
    )

    assert {r.status_code for r in responses} <= {200, 409}
    secrets = [r.json()["client_secret"] for r in responses if r.status_code == 200]
    working = [(await gw.client_token(client_id, secret)).status_code == 200 for secret in secrets]
    assert working.count(True) == 1


async def test_a_rotation_that_read_the_secret_before_another_replaced_it_is_refused(
    gw: RunningGateway,
) -> None:
    """The interleaving made certain: two transactions read the client; the first rotates and commits;
    the second's rotation is refused (it would hand out a secret replacing one it never saw)."""
    from gateway.clients import SecretRotatedMeanwhile, get_client, rotate_secret

    client_id, _ = await gw.add_client()
    database = gw.runtime.database
    async with database.sessionmaker() as first, database.sessionmaker() as second:
        # Held: the sessions' identity maps keep only weak references to what they loaded.
        read = (await get_client(first, client_id), await get_client(second, client_id))
        _, secret = await rotate_secret(first, client_id)
        await first.commit()
        with pytest.raises(SecretRotatedMeanwhile):
            await rotate_secret(second, client_id)
        await second.rollback()
    del read  # held until both rotations ran
    assert (await gw.client_token(client_id, secret)).status_code == 200


async def test_changing_an_unknown_client_gets_404(gw: RunningGateway) -> None:
    response = await gw.http.post("/admin/clients/nope/disable", headers=await gw.admin_headers())

    assert response.status_code == 404


async def test_an_admin_creates_a_person_who_can_log_in(gw: RunningGateway) -> None:
    body = {"email": "New.Person@Example.test", "password": "a long enough password", "roles": ["support"]}

    created = await gw.http.post("/admin/users", json=body, headers=await gw.admin_headers())
    login = await gw.password_grant("new.person@example.test", "a long enough password")

    assert created.status_code == 201
    assert created.json()["email"] == "new.person@example.test"
    assert login.status_code == 200


async def _user_emails(gw: RunningGateway) -> set[str]:
    admin = await gw.admin_headers()
    people = (await gw.http.get("/admin/users", params={"limit": 500}, headers=admin)).json()["items"]
    return {p["email"] for p in people}


@pytest.mark.parametrize(
    "email",
    [
        "no-at-sign.example.test",
        "two@@example.test",
        "with space@example.test",
        "@example.test",
        "nobody@",
        "dotless@domain",
        "double@example..test",
        "hyphen@-example.test",
        "reserved@example.invalid",
    ],
)
async def test_an_email_that_is_no_address_gets_422_naming_it(gw: RunningGateway, email: str) -> None:
    """Only an '@' was checked: 'two@@example.test' or 'with space@example.test' became accounts."""
    body = {"email": email, "password": "a long enough password", "roles": ["support"]}

    response = await gw.http.post("/admin/users", json=body, headers=await gw.admin_headers())

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["body.email"], response.text
    assert email.lower() not in await _user_emails(gw)


@pytest.mark.parametrize("password", [" " * 12, " " * 40, "\t" * 12, "   abc       ", " 12345678901 "])
async def test_a_password_of_white_space_or_padded_to_length_gets_422(
    gw: RunningGateway, password: str
) -> None:
    """Twelve spaces met the minimum length and became a password."""
    email = f"padded.{uuid.uuid4().hex[:8]}@example.test"
    body = {"email": email, "password": password, "roles": ["support"]}

    response = await gw.http.post("/admin/users", json=body, headers=await gw.admin_headers())

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["body.password"], response.text
    assert email not in await _user_emails(gw)


async def test_an_intranet_address_and_a_password_with_inner_spaces_are_accepted(gw: RunningGateway) -> None:
    """A staff sign-in may be on an intranet's .local domain (the demo admin is admin@ecom.local), and a
    passphrase keeps its spaces, also at its ends: the password is checked, never altered."""
    email = f"ops.{uuid.uuid4().hex[:8]}@shop.local"
    password = " correct horse battery staple "
    body = {"email": email, "password": password, "roles": ["support"]}

    created = await gw.http.post("/admin/users", json=body, headers=await gw.admin_headers())
    login = await gw.password_grant(email, password)
    trimmed = await gw.password_grant(email, password.strip())

    assert created.status_code == 201, created.text
    assert login.status_code == 200, login.text
    assert trimmed.status_code != 200


async def test_a_taken_email_gets_409(gw: RunningGateway) -> None:
    email = await gw.add_user("analyst")
    body = {"email": email.upper(), "password": "a long enough password", "roles": ["analyst"]}

    response = await gw.http.post("/admin/users", json=body, headers=await gw.admin_headers())

    assert response.status_code == 409
    assert response.json()["detail"] == f"a user with email {email} already exists"


async def test_concurrent_creations_of_one_email_make_one_account(gw: RunningGateway) -> None:
    """The check for a taken email and the insert race: the unique index decides, and the losers get
    the same 409 as a later request (not a 500)."""
    admin = await gw.admin_headers()
    email = f"racing.{uuid.uuid4().hex[:8]}@example.test"
    body = {"email": email, "password": "a long enough password", "roles": ["analyst"]}

    responses = await asyncio.gather(
        *(gw.http.post("/admin/users", json=body, headers=admin) for _ in range(8))
    )

    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    people = (await gw.http.get("/admin/users", params={"limit": 500}, headers=admin)).json()["items"]
    assert [p["email"] for p in people].count(email) == 1


async def test_client_changes_and_token_issuance_are_audited(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client()
    await gw.client_token(client_id, secret)
    admin = await gw.admin_headers()
    await gw.http.post(f"/admin/clients/{client_id}/disable", headers=admin)

    created = (await gw.http.get("/admin/audit", params={"action": "client.create"}, headers=admin)).json()
    issued = (await gw.http.get("/admin/audit", params={"actor": client_id}, headers=admin)).json()
    disabled = (await gw.http.get("/admin/audit", params={"action": "client.disable"}, headers=admin)).json()

    assert client_id in {e["target"] for e in created["items"]}
    assert [e["action"] for e in issued["items"]] == ["token.issue"]
    assert disabled["items"][0]["target"] == client_id


async def test_the_audit_log_is_paginated_newest_first(gw: RunningGateway) -> None:
    admin = await gw.admin_headers()
    for _ in range(3):
        await gw.add_client()

    first = (await gw.http.get("/admin/audit", params={"limit": 2}, headers=admin)).json()
    second = (
        await gw.http.get("/admin/audit", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin)
    ).json()

    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4


async def test_a_bad_audit_cursor_gets_4xx_problem(gw: RunningGateway) -> None:
    response = await gw.http.get("/admin/audit", params={"cursor": "!!!"}, headers=await gw.admin_headers())

    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_empty_or_inverted_audit_range_gets_422(gw: RunningGateway) -> None:
    admin = await gw.admin_headers()
    for since, until in (("2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z"), ("2026-01-01T00:00:00Z",) * 2):
        response = await gw.http.get("/admin/audit", params={"since": since, "until": until}, headers=admin)

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert "is not after since" in response.json()["detail"]
    second = {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:01Z"}
    fine = await gw.http.get("/admin/audit", params=second, headers=admin)
    assert fine.status_code == 200


async def test_people_clients_and_keys_are_listed_in_cursor_pages(gw: RunningGateway) -> None:
    admin = await gw.admin_headers()
    emails = [await gw.add_user("analyst") for _ in range(3)]
    clients = [
        (await gw.http.post("/admin/clients", json={"name": f"c{i}", "role": "pos"}, headers=admin)).json()
        for i in range(3)
    ]
    for _ in range(2):
        assert (await gw.http.post("/admin/keys/rotate", headers=admin)).status_code == 201

    async def walk(path: str) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        params: dict[str, object] = {"limit": 2}
        for _ in range(50):
            body = (await gw.http.get(path, params=params, headers=admin)).json()
            assert len(body["items"]) <= 2
            items.extend(body["items"])
            if body["next_cursor"] is None:
                return items
            params["cursor"] = body["next_cursor"]
        raise AssertionError(f"{path} did not end")

    people = await walk("/admin/users")
    assert set(emails) <= {p["email"] for p in people}
    assert len(people) == len({p["id"] for p in people})
    listed_clients = await walk("/admin/clients")
    assert {c["client_id"] for c in clients} <= {c["client_id"] for c in listed_clients}
    keys = await walk("/admin/keys")
    assert len(keys) >= 3
    assert len(keys) == len({k["kid"] for k in keys})


async def test_a_hand_made_cursor_on_an_admin_list_is_a_400(gw: RunningGateway) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps({"id": 10**25}).encode()).decode().rstrip("=")
    for path in ("/admin/users", "/admin/clients", "/admin/keys", "/admin/audit"):
        response = await gw.http.get(path, params={"cursor": cursor}, headers=await gw.admin_headers())
        assert response.status_code == 400, (path, response.text)
