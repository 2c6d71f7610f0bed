"""RS256 signing keys: stored in the gateway DB (private half encrypted), published as a JWKS.

The active key signs; `rotate` makes a new active key and retires the old one, which stays in the JWKS
until every token it signed has expired.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk
from jose.backends.base import Key
from prometheus_client import Gauge
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.models import SigningKey
from gateway.security import SecretBox
from servicekit.db import Database, insert_if_absent

ALGORITHM = "RS256"
KEY_SIZE = 2048
# Retired keys stay published this long after the last token they signed expires (clock skew).
PUBLISH_MARGIN_SECONDS = 60

ACTIVE_KEY_CREATED = Gauge(
    "gateway_signing_key_created_timestamp_seconds",
    "Unix time the active token signing key was created (0 while there is none); "
    "time() minus it is the key's age, which the rotation-due alert watches",
)


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    signer: Key


def _context(kid: str) -> str:
    return f"signing-key:{kid}"


def _unix_time(moment: datetime) -> float:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def public_jwk(kid: str, public_pem: str) -> dict[str, Any]:
    public: dict[str, Any] = jwk.construct(public_pem, algorithm=ALGORITHM).to_dict()
    public.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return public


ROTATE_ATTEMPTS = 5


class KeyRotationConflict(RuntimeError):
    """Other rotations kept making the active key while this one tried to replace it."""


async def new_signing_key(box: SecretBox) -> SigningKey:
    """A new active RSA key (generated off the event loop), not added to any session yet."""
    private = await asyncio.to_thread(rsa.generate_private_key, public_exponent=65537, key_size=KEY_SIZE)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    kid = f"{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:12]}"
    return SigningKey(
        kid=kid,
        public_pem=public_pem,
        private_pem_enc=box.seal(private_pem, context=_context(kid)),
        status="active",
        created_at=datetime.now(UTC),
    )


async def _insert_if_no_active(session: AsyncSession, key: SigningKey) -> bool:
    """Insert `key` as the active key unless another key is active (the partial unique index
    `ux_signing_keys_one_active` decides between concurrent writers): True when inserted."""
    return await insert_if_absent(session, SigningKey.__table__, key.model_dump())  # type: ignore[attr-defined]


async def list_keys(session: AsyncSession) -> list[SigningKey]:
    return list((await session.scalars(select(SigningKey).order_by(col(SigningKey.created_at)))).all())


async def rotate_keys(session: AsyncSession, box: SecretBox, *, access_token_ttl: int) -> SigningKey:
    """Retire the active key, keeping it published until its tokens expire, and make a new one active.

    The new key is generated before anything is written. Retiring and inserting race other rotations:
    the index allows one active key, so an insert that finds another rotation's key active retires that
    one too and tries again (each rotation ends with its own key active, one after the other)."""
    key = await new_signing_key(box)
    for _ in range(ROTATE_ATTEMPTS):
        now = datetime.now(UTC)
        await session.execute(
            update(SigningKey)
            .where(col(SigningKey.status) == "active")
            .values(
                status="retired",
                retired_at=now,
                published_until=int(now.timestamp()) + access_token_ttl + PUBLISH_MARGIN_SECONDS,
            )
            .execution_options(synchronize_session=False)
        )
        if await _insert_if_no_active(session, key):
            return key
    raise KeyRotationConflict("other key rotations kept replacing the active key; try again")


async def ensure_signing_key(session: AsyncSession, box: SecretBox) -> SigningKey | None:
    """Create the first key when there is none; returns it, or None when one existed (or another
    process created it at the same moment)."""
    existing = await session.scalar(select(SigningKey).where(col(SigningKey.status) == "active").limit(1))
    if existing is not None:
        return None
    key = await new_signing_key(box)
    return key if await _insert_if_no_active(session, key) else None


class KeyRing:
    """The keys the running gateway signs and verifies with, reloaded from the DB every few seconds
    (so `ecom keys rotate` in another process takes effect without a restart)."""

    def __init__(self, database: Database, box: SecretBox, *, cache_seconds: float = 5.0) -> None:
        self.database = database
        self.box = box
        self.cache_seconds = cache_seconds
        self._active: ActiveKey | None = None
        self._public: dict[str, dict[str, Any]] = {}
        self._loaded_at = -math.inf
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        async with self.database.session() as session:
            keys = await list_keys(session)
        now = int(time.time())
        public: dict[str, dict[str, Any]] = {}
        active: ActiveKey | None = self._active
        newest_active: SigningKey | None = None
        for key in keys:
            if key.status == "active":
                public[key.kid] = public_jwk(key.kid, key.public_pem)
                newest_active = key
            elif key.published_until is not None and key.published_until > now:
                public[key.kid] = public_jwk(key.kid, key.public_pem)
        if newest_active is not None and (active is None or active.kid != newest_active.kid):
            pem = self.box.open(newest_active.private_pem_enc, context=_context(newest_active.kid))
            active = ActiveKey(newest_active.kid, jwk.construct(pem, algorithm=ALGORITHM))
        self._active = active if newest_active is not None else None
        ACTIVE_KEY_CREATED.set(0 if newest_active is None else _unix_time(newest_active.created_at))
        self._public = public
        self._loaded_at = time.monotonic()

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at < self.cache_seconds:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self.cache_seconds:
                await self.load()

    async def signing_key(self) -> ActiveKey:
        await self._fresh()
        if self._active is None:
            raise RuntimeError("the gateway has no active signing key")
        return self._active

    async def jwks(self) -> dict[str, Any]:
        await self._fresh()
        return {"keys": list(self._public.values())}

    async def get(self, kid: str) -> dict[str, Any] | None:
        """servicekit's KeySource: the public JWK of `kid` if it is published."""
        await self._fresh()
        return self._public.get(kid)
