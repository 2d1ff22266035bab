"""Rate limits that hold across every process sharing a Redis (``NANOBANANA_REDIS_URL``): new
generations per user and minute, and the failed-login limits per account and per address.

Each counter is a sorted set of event times (``nanobanana:limit:<name>:<key>``), pruned and
checked in one Lua step on Redis's own clock, so that processes on hosts whose clocks differ
agree, and two processes cannot both take the last place.  If Redis stops answering, each
process counts in its own memory until it answers again (a warning says so): a limit is never
lifted for everyone by an outage, and a request never fails for it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.exceptions import RedisError

from .security import MemoryRateLimiter

__all__ = ["RedisRateLimiter"]

log = logging.getLogger("nanobanana.server")

_FAILURES = (RedisError, OSError, TimeoutError)
#: KEYS[1] the counter; ARGV: limit, window (s), mode (check | take | hit), a unique member.
#: Returns the seconds to wait (a string: Redis would truncate a number) or nil.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if ARGV[3] ~= 'hit' and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(math.max(0, tonumber(oldest[2]) + window - now))
end
if ARGV[3] ~= 'check' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
end
return false
"""


class RedisRateLimiter:
    """``security.RateLimiter`` on Redis, with this process's memory as the fallback."""

    def __init__(self, redis: Any, name: str, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._redis = redis
        self._prefix = f"nanobanana:limit:{name}:"
        self._script = redis.register_script(_SCRIPT)
        self._fallback = MemoryRateLimiter(limit, window)

    async def _run(self, key: str, mode: str) -> float | bool | None:
        """The wait, or None; False when Redis did not answer."""
        try:
            wait = await self._script(
                keys=[self._prefix + key], args=[self.limit, self.window, mode, uuid.uuid4().hex]
            )
        except _FAILURES as exc:
            log.warning(
                "Redis did not answer a rate limit check (%s); counting in this process.",
                type(exc).__name__,
            )
            return False
        return None if wait is None else float(wait)

    async def retry_after(self, key: str) -> float | None:
        wait = await self._run(key, "check")
        return await self._fallback.retry_after(key) if wait is False else wait

    async def take(self, key: str) -> float | None:
        wait = await self._run(key, "take")
        return await self._fallback.take(key) if wait is False else wait

    async def hit(self, key: str) -> None:
        if await self._run(key, "hit") is False:
            await self._fallback.hit(key)

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        try:
            await self._redis.delete(self._prefix + key)
        except _FAILURES as exc:
            log.warning("Redis did not answer a rate limit reset (%s).", type(exc).__name__)
