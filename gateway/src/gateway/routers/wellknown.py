"""Discovery: the JWKS services verify tokens with, and the authorization server metadata."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlmodel import col

from gateway.models import ApiClient, RevokedToken, User
from gateway.roles import SCOPES
from gateway.runtime import GatewayDep

router = APIRouter(tags=["discovery"])


@router.get("/.well-known/jwks.json")
async def jwks(gateway: GatewayDep) -> JSONResponse:
    """The public keys that sign access tokens (the active key and retired keys still in use)."""
    return JSONResponse(await gateway.keyring.jwks(), headers={"Cache-Control": "public, max-age=60"})


@router.get("/.well-known/revocations.json")
async def revocations(gateway: GatewayDep) -> JSONResponse:
    """Ids of disabled users and clients, and of access tokens revoked before expiry: services poll this
    (like the JWKS) and refuse those tokens when called directly, not only through the gateway."""
    async with gateway.database.session() as session:
        users = await session.scalars(select(col(User.id)).where(col(User.status) != "active"))
        clients = await session.scalars(
            select(col(ApiClient.client_id)).where(col(ApiClient.status) != "active")
        )
        tokens = await session.scalars(
            select(col(RevokedToken.jti)).where(col(RevokedToken.expires_at) > int(time.time()))
        )
        body = {
            "subjects": sorted([*users.all(), *clients.all()]),
            "token_ids": sorted(tokens.all()),
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/.well-known/openid-configuration")
async def openid_configuration(gateway: GatewayDep) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414 fields): endpoints, grants, scopes, algorithms."""
    issuer = gateway.settings.jwt_issuer.rstrip("/")
    return {
        "issuer": gateway.settings.jwt_issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "grant_types_supported": ["password", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": ["token"],
        "scopes_supported": sorted(SCOPES),
        "id_token_signing_alg_values_supported": ["RS256"],
        "access_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
    }
