"""Token-bucket rate limits: in process memory, or shared by every gateway replica through Redis."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers()` as ASGI raw headers (lowercase names, bytes)."""
        return [(key.lower().encode(), value.encode()) for key, value in self.headers().items()]


def decide(allowed: bool, tokens: float, *, rate: float, burst: int) -> Decision:
    return Decision(
        allowed=allowed,
        limit=burst,
        remaining=max(0, math.floor(tokens)),
        reset_seconds=max(0, math.ceil((burst - tokens) / rate)),
        retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
    )


class RateLimiter(Protocol):
    async def hit(self, key: str, *, rate: float, burst: int) -> Decision: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Buckets in this process; fine for one replica."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def hit(self, key: str, *, rate: float, burst: int) -> Decision:
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - stamp) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if len(self._buckets) >= self.MAX_KEYS and key not in self._buckets:
            self._buckets.clear()  # a flood of distinct keys must not grow memory without bound
        self._buckets[key] = (tokens, now)
        return decide(allowed, tokens, rate=rate, burst=burst)

    async def close(self) -> None:
        self._buckets.clear()


# Atomic refill-and-take on the Redis server's clock, so replicas agree on time.
_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """Buckets in Redis (GATEWAY_REDIS_URL), shared by every replica. When Redis cannot be reached the
    request is let through and a warning logged: an outage of the limiter must not take the API down."""

    def __init__(self, url: str, *, prefix: str) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._prefix = prefix
        self._script: Any = self._redis.register_script(_TAKE)

    async def hit(self, key: str, *, rate: float, burst: int) -> Decision:
        try:
            allowed, tokens = await self._script(keys=[f"{self._prefix}:{key}"], args=[rate, burst])
        except Exception as exc:
            log.warning("rate limiter: Redis unavailable, letting the request through: %s", exc)
            return decide(True, float(burst), rate=rate, burst=burst)
        return decide(bool(int(allowed)), float(tokens), rate=rate, burst=burst)

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None, *, prefix: str) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, prefix=prefix)
    return MemoryRateLimiter()
