"""The token endpoint: client credentials, the access token's shape, discovery documents."""

from __future__ import annotations

from gateway_harness import RunningGateway
from jose import jwt

from gateway.roles import ROLE_SCOPES, Role


async def test_client_credentials_with_basic_auth_issue_an_rfc9068_access_token(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client("pos")

    response = await gw.client_token(client_id, secret)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert "refresh_token" not in body
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.get_unverified_claims(body["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"]
    assert claims["iss"] == "http://127.0.0.1:8000"
    assert claims["aud"] == "ecom"
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["scope"].split() == list(ROLE_SCOPES[Role.pos])
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


async def test_client_credentials_in_the_form_are_accepted(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client("logistics")

    response = await gw.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )

    assert response.status_code == 200


async def test_a_narrower_scope_can_be_requested(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client("storefront")

    response = await gw.client_token(client_id, secret, scope="products:read")

    assert response.json()["scope"] == "products:read"


async def test_a_scope_the_role_does_not_grant_is_refused(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client("storefront")

    response = await gw.client_token(client_id, secret, scope="products:read privacy:admin")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_a_wrong_client_secret_gets_401_invalid_client(gw: RunningGateway) -> None:
    client_id, _ = await gw.add_client()

    response = await gw.client_token(client_id, "not-the-secret")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_an_unknown_grant_type_gets_400(gw: RunningGateway) -> None:
    response = await gw.http.post("/oauth/token", data={"grant_type": "authorization_code"})

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_a_json_body_gets_400_invalid_request(gw: RunningGateway) -> None:
    response = await gw.http.post("/oauth/token", json={"grant_type": "client_credentials"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_malformed_basic_credentials_get_401(gw: RunningGateway) -> None:
    response = await gw.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic %%%"}
    )

    assert response.status_code == 401


async def test_jwks_publishes_the_signing_key(gw: RunningGateway) -> None:
    client_id, secret = await gw.add_client()
    token = (await gw.client_token(client_id, secret)).json()["access_token"]

    keys = (await gw.http.get("/.well-known/jwks.json")).json()["keys"]

    assert jwt.get_unverified_header(token)["kid"] in {key["kid"] for key in keys}
    assert all(key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key for key in keys)


async def test_openid_configuration_names_the_endpoints(gw: RunningGateway) -> None:
    document = (await gw.http.get("/.well-known/openid-configuration")).json()

    assert document["issuer"] == "http://127.0.0.1:8000"
    assert document["token_endpoint"] == "http://127.0.0.1:8000/oauth/token"
    assert document["jwks_uri"] == "http://127.0.0.1:8000/.well-known/jwks.json"
    assert "client_credentials" in document["grant_types_supported"]


async def test_private_keys_are_encrypted_at_rest(gw: RunningGateway) -> None:
    async with gw.runtime.database.session() as session:
        from gateway.keys import list_keys

        keys = await list_keys(session)

    assert keys
    assert all("PRIVATE KEY" not in key.private_pem_enc for key in keys)
