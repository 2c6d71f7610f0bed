"""Profiles through the HTTP API: validation and normalisation, masking by scope, audit, ETags, search."""

import re

import httpx
import pytest
from customer_helpers import (
    create_customer,
    dump_all_tables,
    errors_of,
    events_about,
    new_email,
    new_phone,
    unique,
)

from contracts import topics
from servicekit.testing import TestTokenIssuer

PII = ("customers:read", "customers:pii")


async def test_create_normalises_email_phone_and_address(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    local = unique()
    customer = await create_customer(
        client,
        token_issuer,
        emails=[{"address": f"  Ada.{local}@Example.COM "}],
        phones=[{"number": "06 12 34 56 78"}],
        addresses=[
            {
                "kind": "shipping",
                "line1": "  12   RUE DE LA PAIX ",
                "city": "PARIS",
                "postcode": "75 002",
                "country": "fr",
            },
            {
                "kind": "billing",
                "line1": "Damrak 1",
                "city": "Amsterdam",
                "postcode": "1012lg",
                "country": "NL",
            },
        ],
    )

    assert customer["emails"][0]["address"] == f"ada.{local}@example.com"
    assert customer["phones"][0]["number"] == "+33612345678"
    shipping, billing = customer["addresses"]
    assert (shipping["line1"], shipping["city"], shipping["postcode"], shipping["country"]) == (
        "12 Rue De La Paix",
        "Paris",
        "75002",
        "FR",
    )
    assert billing["postcode"] == "1012 LG"
    assert shipping["is_default"]
    assert billing["is_default"]


async def test_text_is_stored_in_composed_unicode(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """A name or an address typed with combining accents (NFD, as some keyboards and macOS file names
    send them) is stored composed (NFC), as the same text typed with precomposed letters."""
    decomposed = "Jose\u0301"  # e + combining acute
    customer = await create_customer(
        client,
        token_issuer,
        first_name=decomposed,
        last_name="Mu\u0308ller",
        addresses=[
            {"kind": "shipping", "line1": "Cafe\u0301 Street 1", "city": "Mu\u0308nchen", "country": "DE"}
        ],
    )
    assert customer["first_name"] == "Jos\u00e9"
    assert customer["last_name"] == "M\u00fcller"
    assert (customer["addresses"][0]["line1"], customer["addresses"][0]["city"]) == (
        "Caf\u00e9 Street 1",
        "M\u00fcnchen",
    )


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("body.first_name", {"first_name": "Ev\u202eil", "last_name": "Doe"}),
        ("body.last_name", {"first_name": "Bell", "last_name": "Ring\u0007\u001b[31m"}),
        (
            "body.addresses.0.city",
            {"last_name": "Doe", "addresses": [{"kind": "shipping", "city": "Paris\u2066", "country": "FR"}]},
        ),
    ],
)
async def test_control_and_bidi_override_characters_get_422_naming_the_field(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, field: str, body: dict[str, object]
) -> None:
    response = await client.post(
        "/v1/customers", json=body, headers=token_issuer.auth_header("customers:write")
    )

    assert response.status_code == 422
    assert field in errors_of(response)


async def test_names_of_only_invisible_characters_do_not_identify_a_customer(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/customers",
        json={"first_name": "  ", "last_name": "\u200b\ufeff"},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 422
    assert "body" in errors_of(response)


async def test_joiners_that_names_need_are_kept(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Persian names use the zero-width non-joiner, emoji the zero-width joiner: they are text."""
    customer = await create_customer(
        client, token_issuer, first_name="\u0645\u0647\u0631\u200c\u0646\u0627\u0632"
    )

    assert customer["first_name"] == "\u0645\u0647\u0631\u200c\u0646\u0627\u0632"


async def test_invalid_email_gets_422_naming_the_field(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/customers",
        json={"emails": [{"address": "not-an-email"}]},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 422
    assert "body.emails.0.address" in errors_of(response)


async def test_invalid_phone_gets_422_naming_the_field(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/customers",
        json={"phones": [{"number": "12"}]},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 422
    assert "body.phones.0.number" in errors_of(response)


async def test_postcode_in_the_wrong_format_for_its_country_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    address = {
        "kind": "shipping",
        "line1": "1 Main St",
        "city": "Springfield",
        "postcode": "ABC",
        "country": "US",
    }
    response = await client.post(
        "/v1/customers",
        json={"first_name": "Ann", "addresses": [address]},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 422
    assert "US postcode" in errors_of(response)["body.addresses.0.postcode"]


async def test_only_one_default_address_per_kind(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    addresses = [
        {
            "kind": "shipping",
            "line1": f"{n} Main St",
            "city": "Lyon",
            "postcode": "69001",
            "country": "FR",
            "is_default": True,
        }
        for n in (1, 2)
    ]
    customer = await create_customer(client, token_issuer, addresses=addresses)

    assert [a["is_default"] for a in customer["addresses"]] == [True, False]


async def test_without_pii_scope_contact_data_is_masked(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    created = await create_customer(
        client,
        token_issuer,
        emails=[{"address": email}],
        phones=[{"number": "+33612345678"}],
        birthday="1990-04-01",
        addresses=[
            {"kind": "shipping", "line1": "5 Rue Neuve", "city": "Lyon", "postcode": "69001", "country": "FR"}
        ],
    )

    response = await client.get(
        f"/v1/customers/{created['id']}", headers=token_issuer.auth_header("customers:read")
    )

    body = response.json()
    assert body["pii_masked"] is True
    assert body["emails"][0]["address"] == f"s***@{email.split('@')[1]}"
    assert body["phones"][0]["number"] == "+33*******78"
    assert body["addresses"][0]["line1"] == "***"
    assert body["addresses"][0]["postcode"] == "69***"
    assert body["birthday"] == "****-**-**"


async def test_with_pii_scope_contact_data_is_clear(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    created = await create_customer(client, token_issuer, emails=[{"address": email}], birthday="1990-04-01")

    response = await client.get(f"/v1/customers/{created['id']}", headers=token_issuer.auth_header(*PII))

    body = response.json()
    assert body["pii_masked"] is False
    assert body["emails"][0]["address"] == email
    assert body["birthday"] == "1990-04-01"


async def test_unmasked_read_is_written_to_the_audit_log(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    created = await create_customer(client, token_issuer, emails=[{"address": new_email()}])
    reader = f"support-{unique()}"
    await client.get(
        f"/v1/customers/{created['id']}",
        headers=token_issuer.auth_header(*PII, subject=reader),
    )
    await client.get(f"/v1/customers/{created['id']}", headers=token_issuer.auth_header("customers:read"))

    response = await client.get(
        "/v1/audit/pii-reads",
        params={"customer_id": created["id"]},
        headers=token_issuer.auth_header("privacy:admin"),
    )

    reads = [r for r in response.json()["items"] if r["subject"] == reader]
    assert len(reads) == 1
    assert reads[0]["route"] == "GET /v1/customers/{customer_id}"


async def test_audit_log_needs_privacy_admin(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get("/v1/audit/pii-reads", headers=token_issuer.auth_header(*PII))

    assert response.status_code == 403


async def test_creating_needs_customers_write(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post("/v1/customers", json={}, headers=token_issuer.auth_header("customers:read"))

    assert response.status_code == 403


async def test_email_of_another_customer_gets_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    first = await create_customer(client, token_issuer, emails=[{"address": email}])

    response = await client.post(
        "/v1/customers",
        json={"emails": [{"address": email.upper()}]},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 409
    assert response.json()["customer_ids"] == [first["id"]]


async def test_update_without_if_match_gets_428(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    created = await create_customer(client, token_issuer)

    response = await client.patch(
        f"/v1/customers/{created['id']}",
        json={"locale": "fr-FR"},
        headers=token_issuer.auth_header("customers:write"),
    )

    assert response.status_code == 428


async def test_stale_if_match_gets_412(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    created = await create_customer(client, token_issuer)
    headers = {**token_issuer.auth_header("customers:write"), "If-Match": '"1"'}
    first = await client.patch(f"/v1/customers/{created['id']}", json={"locale": "fr-FR"}, headers=headers)

    second = await client.patch(f"/v1/customers/{created['id']}", json={"locale": "de-DE"}, headers=headers)

    assert first.status_code == 200
    assert first.headers["ETag"] == '"2"'
    assert second.status_code == 412


async def test_update_changes_only_the_fields_sent(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    created = await create_customer(client, token_issuer, emails=[{"address": email}], tags=["vip"])
    headers = {**token_issuer.auth_header("customers:write", "customers:pii"), "If-Match": '"1"'}

    response = await client.patch(
        f"/v1/customers/{created['id']}", json={"phones": [{"number": "0612345679"}]}, headers=headers
    )

    body = response.json()
    assert body["phones"][0]["number"] == "+33612345679"
    assert body["emails"][0]["address"] == email
    assert body["tags"] == ["vip"]


async def test_raw_rows_hold_no_clear_text_pii(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    email, phone = new_email(), new_phone()
    street = f"{unique()} Avenue Secrete"
    created = await create_customer(
        client,
        token_issuer,
        emails=[{"address": email}],
        phones=[{"number": phone}],
        birthday="1987-06-05",
        addresses=[
            {"kind": "shipping", "line1": street, "city": "Nantes", "postcode": "44000", "country": "FR"}
        ],
    )
    await client.get(f"/v1/customers/{created['id']}", headers=token_issuer.auth_header(*PII))
    await client.post(
        "/v1/customers/identify",
        json={"email": email},
        headers={**token_issuer.auth_header("customers:write"), "Idempotency-Key": unique()},
    )

    dump = await dump_all_tables(database_url)

    for secret in (email, phone, phone[3:], street.lower(), "1987-06-05", "44000"):
        # As a value of its own, not inside another one: "44000" is also the end of a timestamp's
        # microseconds ("13:17:06.644000"), which made this test fail once in a hundred-odd runs.
        assert not re.search(rf"(?<![0-9a-z]){re.escape(secret.lower())}(?![0-9a-z])", dump), secret


async def test_created_event_is_published_without_pii(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    email = new_email()
    created = await create_customer(client, token_issuer, emails=[{"address": email}], country="DE")

    events = await events_about(
        kafka_bootstrap, topics.CUSTOMERS, created["id"], ["ecom.customer.created.v1"]
    )

    (event,) = [e for e in events if e.type == "ecom.customer.created.v1"]
    assert event.data == {"customer_id": created["id"], "country": "DE"}


async def test_update_event_names_changed_fields(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    created = await create_customer(client, token_issuer)
    await client.patch(
        f"/v1/customers/{created['id']}",
        json={"phones": [{"number": new_phone()}], "tags": ["b2b"]},
        headers={**token_issuer.auth_header("customers:write"), "If-Match": '"1"'},
    )

    events = await events_about(
        kafka_bootstrap, topics.CUSTOMERS, created["id"], ["ecom.customer.updated.v1"]
    )

    (event,) = [e for e in events if e.type == "ecom.customer.updated.v1"]
    assert event.data["changed"] == ["phones", "tags"]
    assert event.sequence == 2


async def test_exact_lookup_by_email(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    email = new_email()
    created = await create_customer(client, token_issuer, emails=[{"address": email}])
    await create_customer(client, token_issuer, emails=[{"address": new_email()}])

    response = await client.get(
        "/v1/customers", params={"email": email.upper()}, headers=token_issuer.auth_header("customers:read")
    )

    assert [c["id"] for c in response.json()["items"]] == [created["id"]]


async def test_exact_lookup_by_phone_in_any_format(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    phone = new_phone()
    created = await create_customer(client, token_issuer, phones=[{"number": phone}])
    local_format = "0" + phone[3:4] + " " + phone[4:]

    response = await client.get(
        "/v1/customers", params={"phone": local_format}, headers=token_issuer.auth_header("customers:read")
    )

    assert [c["id"] for c in response.json()["items"]] == [created["id"]]


async def test_phone_extension_is_kept_and_told_apart_from_the_line(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """An extension written in any usual way (`ext.`, `x`, `;ext=`) is stored after the E.164 number
    as `;ext=`, found again in any of those forms, and not confused with the bare line."""
    line = new_phone()
    readable = f"{line[:3]} {line[3:4]} {line[4:6]} {line[6:8]} {line[8:10]} {line[10:]}"
    office = await create_customer(client, token_issuer, phones=[{"number": f"{readable} ext. 12"}])
    switchboard = await create_customer(client, token_issuer, phones=[{"number": line}])
    headers = token_issuer.auth_header("customers:read")

    assert office["phones"][0]["number"] == f"{line};ext=12"
    for written in (f"{line} x12", f"{line};ext=12", f"0{line[3:]} ext 12"):
        found = await client.get("/v1/customers", params={"phone": written}, headers=headers)
        assert [c["id"] for c in found.json()["items"]] == [office["id"]], written
    bare = await client.get("/v1/customers", params={"phone": line}, headers=headers)
    assert [c["id"] for c in bare.json()["items"]] == [switchboard["id"]]
    masked = await client.get(f"/v1/customers/{office['id']}", headers=headers)
    assert masked.json()["phones"][0]["number"] == f"{line[:3]}*******{line[-2:]};ext=**"


async def test_lookup_by_invalid_email_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get(
        "/v1/customers", params={"email": "nope"}, headers=token_issuer.auth_header("customers:read")
    )

    assert response.status_code == 422
    assert "query.email" in errors_of(response)


async def test_list_filters_by_tag_and_country_with_cursor_pages(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"cohort-{unique()}"
    ids = [(await create_customer(client, token_issuer, tags=[tag], country="IT"))["id"] for _ in range(3)]
    await create_customer(client, token_issuer, tags=[tag], country="ES")
    headers = token_issuer.auth_header("customers:read")

    first = (
        await client.get("/v1/customers", params={"tag": tag, "country": "IT", "limit": 2}, headers=headers)
    ).json()
    second = (
        await client.get(
            "/v1/customers",
            params={"tag": tag, "country": "IT", "limit": 2, "cursor": first["next_cursor"]},
            headers=headers,
        )
    ).json()

    assert [c["id"] for c in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None


async def test_list_filters_by_creation_range(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"range-{unique()}"
    created = await create_customer(client, token_issuer, tags=[tag])
    headers = token_issuer.auth_header("customers:read")

    before = await client.get(
        "/v1/customers", params={"tag": tag, "created_to": created["created_at"]}, headers=headers
    )
    after = await client.get(
        "/v1/customers", params={"tag": tag, "created_from": created["created_at"]}, headers=headers
    )

    assert before.json()["items"] == []
    assert [c["id"] for c in after.json()["items"]] == [created["id"]]


@pytest.mark.parametrize("cursor", ["%%%", "eyJpZCI6IDF9"])
async def test_bad_cursor_gets_400(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, cursor: str
) -> None:
    response = await client.get(
        "/v1/customers", params={"cursor": cursor}, headers=token_issuer.auth_header("customers:read")
    )

    assert response.status_code == 400
