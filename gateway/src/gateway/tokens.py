"""Access tokens (RS256 JWTs, RFC 9068 profile) and rotating refresh tokens with reuse detection."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from jose import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.keys import ALGORITHM, KeyRing
from gateway.models import RefreshToken, RevokedToken
from gateway.security import hash_secret, new_secret
from servicekit.db import insert_if_absent

_REVOKED: Any = RevokedToken.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    jti: str
    kid: str
    scope: str


async def mint_access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    audience: str,
    subject: str,
    scopes: list[str],
    client_id: str,
    ttl: int,
) -> AccessToken:
    key = await keyring.signing_key()
    now = int(time.time())
    jti = uuid.uuid4().hex
    scope = " ".join(scopes)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": jti,
    }
    token: str = jwt.encode(
        claims, key.signer, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "at+jwt"}
    )
    return AccessToken(token=token, expires_in=ttl, jti=jti, kid=key.kid, scope=scope)


async def issue_refresh_token(
    session: AsyncSession,
    *,
    user_id: str,
    scope: str,
    ttl: int,
    family_id: str | None = None,
    access: AccessToken | None = None,
) -> str:
    """A new opaque refresh token (stored hashed), in a new family unless one is given; `access` is the
    access token issued with it, revoked with the family if the family is."""
    token = new_secret()
    now = int(time.time())
    session.add(
        RefreshToken(
            token_hash=hash_secret(token),
            family_id=family_id or uuid.uuid4().hex,
            user_id=user_id,
            scope=scope,
            issued_at=now,
            expires_at=now + ttl,
            access_jti=access.jti if access else None,
            access_expires_at=now + access.expires_in if access else None,
        )
    )
    await session.flush()
    return token


async def link_access_token(session: AsyncSession, refresh_token: str, access: AccessToken) -> None:
    """Record the access token issued with a (rotated) refresh token, to revoke it with its family."""
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.token_hash) == hash_secret(refresh_token))
        .values(access_jti=access.jti, access_expires_at=int(time.time()) + access.expires_in)
    )


@dataclass(frozen=True)
class Rotation:
    """The outcome of presenting a refresh token: a new one, or why not."""

    user_id: str | None = None
    scope: str = ""
    new_token: str | None = None
    family_id: str | None = None
    error: str | None = None
    reuse_detected: bool = False


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    """Revoke every refresh token of the family, and put the access tokens issued with them that have
    not expired yet on the revocation list (the gateway and the services refuse them at once / at their
    next poll)."""
    now = int(time.time())
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    live = await session.execute(
        select(col(RefreshToken.access_jti), col(RefreshToken.access_expires_at)).where(
            col(RefreshToken.family_id) == family_id,
            col(RefreshToken.access_jti).is_not(None),
            col(RefreshToken.access_expires_at) > now,
        )
    )
    access = {jti: expires for jti, expires in live.all() if jti and expires}
    if not access:
        return
    for jti, expires in access.items():
        await revoke_access_token(session, jti, expires)


async def revoke_access_token(session: AsyncSession, jti: str, expires_at: int) -> bool:
    """Record an access token as revoked; False when it was already. One statement, not a read then an
    insert: of revocations of one token racing each other, one inserts, the others find it revoked (the
    losers' unique violation was a 500)."""
    return await insert_if_absent(session, _REVOKED, {"jti": jti, "expires_at": expires_at})


async def find_refresh_token(session: AsyncSession, token: str) -> RefreshToken | None:
    row: RefreshToken | None = await session.scalar(
        select(RefreshToken).where(col(RefreshToken.token_hash) == hash_secret(token))
    )
    return row


async def rotate_refresh_token(session: AsyncSession, token: str, *, ttl: int) -> Rotation:
    """Spend `token` for a new one in the same family. Presenting a token that was already rotated
    means it was stolen (or the client is broken): the whole family is revoked."""
    row = await find_refresh_token(session, token)
    now = int(time.time())
    if row is None:
        return Rotation(error="The refresh token is not valid.")
    if row.used_at is not None:
        await revoke_family(session, row.family_id)
        return Rotation(
            user_id=row.user_id,
            family_id=row.family_id,
            error="The refresh token was already used; its whole family is revoked.",
            reuse_detected=True,
        )
    if row.revoked_at is not None:
        return Rotation(user_id=row.user_id, family_id=row.family_id, error="The refresh token is revoked.")
    if row.expires_at <= now:
        return Rotation(user_id=row.user_id, family_id=row.family_id, error="The refresh token has expired.")
    # Claim it with a conditional update so two concurrent uses cannot both succeed.
    claimed = await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == row.id, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    if getattr(claimed, "rowcount", 1) != 1:
        await revoke_family(session, row.family_id)
        return Rotation(error="The refresh token was already used.", reuse_detected=True)
    new_token = await issue_refresh_token(
        session, user_id=row.user_id, scope=row.scope, ttl=ttl, family_id=row.family_id
    )
    return Rotation(user_id=row.user_id, scope=row.scope, new_token=new_token, family_id=row.family_id)
