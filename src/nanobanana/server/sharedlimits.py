"""Limits that hold across every process sharing a Redis (``NANOBANANA_REDIS_URL``): new
generations per user and minute, the failed-login limits per account and per address, and
how many jobs a user has running at once (``RedisUserSlots``).

Each counter is a sorted set of event times (``nanobanana:limit:<name>:<key>``), pruned and
checked in one Lua step on Redis's own clock, so that processes on hosts whose clocks differ
agree, and two processes cannot both take the last place.  If Redis stops answering, each
process counts in its own memory until it answers again (a warning says so): a limit is never
lifted for everyone by an outage, and a request never fails for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from .security import MemoryRateLimiter
from .sharedbus import FAILURES, OUTAGE

__all__ = ["RedisRateLimiter", "RedisUserSlots"]

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
        except FAILURES as exc:
            OUTAGE.failed("a rate limit check; counting in this process", exc)
            return False
        OUTAGE.ok()
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
        except FAILURES as exc:
            OUTAGE.failed("a rate limit reset", exc)


#: KEYS[1] a user's running jobs (job id -> lease expiry); ARGV: limit, lease (s), job id.
#: 1 when the job now holds one of the user's places (or already held one), else 0.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""
#: Extend the leases of the places this process holds: KEYS the users, ARGV lease then the
#: job ids, one per key.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[1])) + 1)
end
return #KEYS
"""


class RedisUserSlots:
    """How many jobs a user has running in all processes together (``NANOBANANA_MAX_
    CONCURRENT_JOBS_PER_USER``).  Each running job holds a place under a lease that its process
    renews every third of it: a process that dies frees its places within the lease, without
    anyone's help.  A job waits for a place by asking again every ``poll`` seconds.  If Redis
    does not answer, the job runs (each process's own per-user limit still holds)."""

    def __init__(self, redis: Any, limit: int, lease: float, poll: float = 0.2) -> None:
        self.limit = limit
        self.lease = lease
        self.poll = poll
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        #: job id -> user id, the places this process holds.
        self._held: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _key(user_id: str) -> str:
        return f"nanobanana:running:{user_id}"

    async def acquire(self, user_id: str, job_id: str) -> None:
        """Until ``job_id`` holds one of ``user_id``'s places."""
        while True:
            try:
                got = await self._acquire(
                    keys=[self._key(user_id)], args=[self.limit, self.lease, job_id]
                )
            except FAILURES as exc:
                OUTAGE.failed("a running-jobs check; the job runs", exc)
                return
            OUTAGE.ok()
            if got:
                self._held[job_id] = user_id
                if self._task is None or self._task.done():
                    self._task = asyncio.create_task(self._renew_forever(), name="user-slots")
                return
            await asyncio.sleep(self.poll)

    async def release(self, user_id: str, job_id: str) -> None:
        self._held.pop(job_id, None)
        try:
            await self._redis.zrem(self._key(user_id), job_id)
        except FAILURES as exc:  # the lease frees it
            OUTAGE.failed("a running-jobs release", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease / 3)
            held = list(self._held.items())
            if not held:
                return
            try:
                await self._renew(
                    keys=[self._key(u) for _, u in held], args=[self.lease, *(j for j, _ in held)]
                )
            except FAILURES as exc:
                OUTAGE.failed("a lease renewal", exc)
