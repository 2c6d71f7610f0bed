"""The OAuth2 token endpoint (password, client_credentials, refresh_token) and revocation (RFC 7009)."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from jose.exceptions import JWTError
from pydantic import BaseModel

from gateway import audit
from gateway.clients import authenticate_client
from gateway.limits import client_ip, limit_auth_ip
from gateway.login import authenticate_person
from gateway.models import User
from gateway.roles import ROLE_SCOPES, Role, narrow, scopes_for
from gateway.runtime import PUBLIC_CLIENT_ID, Gateway, GatewayDep
from gateway.tokens import (
    find_refresh_token,
    issue_refresh_token,
    link_access_token,
    mint_access_token,
    revoke_access_token,
    revoke_family,
    rotate_refresh_token,
)
from servicekit.errors import ServiceError, problem_responses

router = APIRouter(tags=["oauth2"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(ServiceError):
    """An RFC 6749 §5.2 error, rendered as problem+json that also carries `error`/`error_description`."""

    def __init__(
        self, error: str, description: str, *, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            description,
            status=status,
            headers={**NO_STORE, **(headers or {})},
            extra={"error": error, "error_description": description},
        )


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = None


def _form_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }


_TOKEN_FORM = _form_schema(
    {
        "grant_type": {"type": "string", "enum": ["password", "client_credentials", "refresh_token"]},
        "username": {"type": "string", "description": "password grant: the email"},
        "password": {"type": "string", "format": "password"},
        "otp": {"type": "string", "description": "password grant: TOTP or recovery code when enrolled"},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string", "format": "password"},
        "refresh_token": {"type": "string"},
        "scope": {"type": "string", "description": "space-separated; default: all the role grants"},
    },
    ["grant_type"],
)


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "Send the parameters as application/x-www-form-urlencoded.")
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "The Basic credentials are malformed.", status=401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "The Basic credentials are malformed.", status=401)
    return unquote_plus(client_id), unquote_plus(secret)


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    basic = _basic_credentials(request)
    if basic is not None:
        return basic
    if form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    return None


def _narrow(granted: list[str], requested: str | None) -> list[str]:
    try:
        return narrow(granted, requested)
    except ValueError as exc:
        raise OAuthError("invalid_scope", f"Scope(s) not granted: {exc}.") from None


async def _grant_client_credentials(
    gateway: Gateway, request: Request, form: dict[str, str]
) -> TokenResponse:
    credentials = _client_credentials(request, form)
    if credentials is None:
        raise OAuthError(
            "invalid_client",
            "Authenticate the client with HTTP Basic or client_id and client_secret.",
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="ecom"'},
        )
    client_id, secret = credentials
    ip = client_ip(request)
    async with gateway.database.session() as session:
        client = await authenticate_client(session, client_id, secret)
        if client is None:
            await audit.record(
                session,
                "token.issue",
                outcome="failure",
                actor=client_id,
                ip=ip,
                detail={"grant_type": "client_credentials", "reason": "invalid_client"},
            )
        else:
            scopes = _narrow(list(ROLE_SCOPES[Role(client.role)]), form.get("scope"))
            issued = await _mint(gateway, subject=client.client_id, scopes=scopes, client_id=client.client_id)
            await audit.record(
                session,
                "token.issue",
                actor=client.client_id,
                ip=ip,
                detail={"grant_type": "client_credentials", "jti": issued.jti, "scope": issued.scope},
            )
    if client is None:
        raise OAuthError(
            "invalid_client",
            "The client is unknown, disabled, or the secret is wrong.",
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="ecom"'},
        )
    return TokenResponse(access_token=issued.token, expires_in=issued.expires_in, scope=issued.scope)


async def _mint(gateway: Gateway, *, subject: str, scopes: list[str], client_id: str) -> Any:
    settings = gateway.settings
    return await mint_access_token(
        gateway.keyring,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        subject=subject,
        scopes=scopes,
        client_id=client_id,
        ttl=settings.access_token_ttl_seconds,
    )


async def _grant_password(gateway: Gateway, request: Request, form: dict[str, str]) -> TokenResponse:
    username, password = form.get("username"), form.get("password")
    if not username or not password:
        raise OAuthError("invalid_request", "The password grant needs username and password.")
    settings = gateway.settings
    ip = client_ip(request)
    response: TokenResponse | None = None
    async with gateway.database.session() as session:
        result = await authenticate_person(
            session, settings, gateway.box, email=username, password=password, otp=form.get("otp"), ip=ip
        )
        if result.user is not None:
            scopes = _narrow(scopes_for(result.user.roles), form.get("scope"))
            issued = await _mint(gateway, subject=result.user.id, scopes=scopes, client_id=PUBLIC_CLIENT_ID)
            refresh = await issue_refresh_token(
                session,
                user_id=result.user.id,
                scope=issued.scope,
                ttl=settings.refresh_token_ttl_seconds,
                access=issued,
            )
            await audit.record(
                session,
                "token.issue",
                actor=result.user.email,
                target=result.user.id,
                ip=ip,
                detail={"grant_type": "password", "jti": issued.jti, "scope": issued.scope},
            )
            response = TokenResponse(
                access_token=issued.token,
                expires_in=issued.expires_in,
                scope=issued.scope,
                refresh_token=refresh,
            )
    if response is not None:
        return response
    if result.retry_after:
        raise OAuthError(
            "invalid_grant", result.error or "", status=429, headers={"Retry-After": str(result.retry_after)}
        )
    raise OAuthError("invalid_grant", result.error or "")


async def _grant_refresh(gateway: Gateway, request: Request, form: dict[str, str]) -> TokenResponse:
    token = form.get("refresh_token")
    if not token:
        raise OAuthError("invalid_request", "The refresh_token grant needs refresh_token.")
    settings = gateway.settings
    ip = client_ip(request)
    response: TokenResponse | None = None
    error = "The refresh token is not valid."
    async with gateway.database.session() as session:
        rotation = await rotate_refresh_token(session, token, ttl=settings.refresh_token_ttl_seconds)
        user = await session.get(User, rotation.user_id) if rotation.user_id else None
        if rotation.reuse_detected:
            await audit.record(
                session,
                "refresh_token.reuse",
                outcome="failure",
                target=rotation.user_id,
                ip=ip,
                detail={"family_id": rotation.family_id, "family_revoked": True},
            )
            error = rotation.error or error
        elif rotation.new_token is None or user is None or user.status != "active":
            if rotation.new_token is not None and rotation.family_id:
                await revoke_family(session, rotation.family_id)
            error = rotation.error or "The account is disabled."
        else:
            granted = set(scopes_for(user.roles))
            scopes = [s for s in rotation.scope.split() if s in granted or "admin" in granted]
            issued = await _mint(gateway, subject=user.id, scopes=scopes, client_id=PUBLIC_CLIENT_ID)
            await link_access_token(session, rotation.new_token, issued)
            await audit.record(
                session,
                "token.issue",
                actor=user.email,
                target=user.id,
                ip=ip,
                detail={"grant_type": "refresh_token", "jti": issued.jti, "scope": issued.scope},
            )
            response = TokenResponse(
                access_token=issued.token,
                expires_in=issued.expires_in,
                scope=issued.scope,
                refresh_token=rotation.new_token,
            )
    if rotation.reuse_detected:
        gateway.principals.forget()  # the family's access tokens were just revoked: refuse them now
    if response is None:
        raise OAuthError("invalid_grant", error)
    return response


GRANTS = {
    "client_credentials": _grant_client_credentials,
    "password": _grant_password,
    "refresh_token": _grant_refresh,
}


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses=problem_responses(400, 401, 429),
    openapi_extra=_TOKEN_FORM,
    dependencies=[Depends(limit_auth_ip)],
)
async def token(request: Request, gateway: GatewayDep) -> JSONResponse:
    """Issue an access token: grant_type password (+otp), client_credentials or refresh_token."""
    form = await _form(request)
    grant = GRANTS.get(form.get("grant_type", ""))
    if grant is None:
        raise OAuthError(
            "unsupported_grant_type", "grant_type must be password, client_credentials or refresh_token."
        )
    issued = await grant(gateway, request, form)
    return JSONResponse(issued.model_dump(exclude_none=True), headers=NO_STORE)


_REVOKE_FORM = _form_schema(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": ["refresh_token", "access_token"]},
    },
    ["token"],
)


@router.post(
    "/oauth/revoke",
    responses=problem_responses(400, 429),
    openapi_extra=_REVOKE_FORM,
    dependencies=[Depends(limit_auth_ip)],
    response_class=Response,
)
async def revoke(request: Request, gateway: GatewayDep) -> Response:
    """Revoke a refresh token (with its family) or an access token; 200 even for an unknown token."""
    form = await _form(request)
    token_value = form.get("token")
    if not token_value:
        raise OAuthError("invalid_request", "The token parameter is required.")
    ip = client_ip(request)
    async with gateway.database.session() as session:
        row = await find_refresh_token(session, token_value)
        if row is not None:
            await revoke_family(session, row.family_id)
            await audit.record(
                session,
                "token.revoke",
                target=row.user_id,
                ip=ip,
                detail={"type": "refresh_token", "family_id": row.family_id},
            )
        else:
            claims = await _access_token_claims(gateway, token_value)
            if claims is not None and await revoke_access_token(session, claims["jti"], int(claims["exp"])):
                await audit.record(
                    session,
                    "token.revoke",
                    target=str(claims.get("sub")),
                    ip=ip,
                    detail={"type": "access_token", "jti": claims["jti"]},
                )
    gateway.principals.forget()
    return Response(status_code=200, headers=NO_STORE)


async def _access_token_claims(gateway: Gateway, token_value: str) -> dict[str, Any] | None:
    """The claims of an unexpired access token this gateway signed, else None."""
    try:
        caller = await gateway.verifier.verify(token_value)
    except ServiceError:
        return None
    except JWTError:
        return None
    claims = caller.claims
    if not isinstance(claims.get("jti"), str) or int(claims.get("exp", 0)) <= time.time():
        return None
    return claims
