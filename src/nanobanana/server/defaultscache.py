"""A short-lived, in-process cache of each user's saved generation defaults (``UserSettings``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from .db.models import UserSettings


@dataclass(frozen=True)
class Defaults:
    """A snapshot of a ``UserSettings`` row (not an ORM object: it outlives any session)."""

    provider: str | None
    model: str | None
    aspect_ratio: str | None
    image_size: str | None
    webhook_url: str | None = None


class DefaultsCache:
    """Every generation reads the caller's defaults; they change only through
    ``PUT /api/settings/defaults``, which drops the entry (``forget``) after its commit, so in
    this process the next generation sees the change.  ``ttl`` bounds how long another process
    of the same database could use replaced defaults.

    A read that began before a ``forget`` must not store what it read (it may be the old row):
    ``forget`` moves an epoch, and ``put`` is ignored unless the epoch is the one ``epoch()``
    gave before the read.
    """

    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, Defaults | None]] = {}
        self._epoch = 0

    def __repr__(self) -> str:
        return f"DefaultsCache(users={len(self._entries)})"

    def epoch(self) -> int:
        return self._epoch

    def get(self, user_id: str) -> tuple[bool, Defaults | None]:
        """(found, defaults): ``defaults`` is None when the user saved none."""
        hit = self._entries.get(user_id)
        if hit is None:
            return False, None
        if hit[0] <= self._clock():
            del self._entries[user_id]
            return False, None
        return True, hit[1]

    def put(self, user_id: str, value: Defaults | None, epoch: int) -> None:
        if epoch != self._epoch:
            return
        if len(self._entries) > 10_000:  # bound memory: drop expired entries, then everything
            now = self._clock()
            self._entries = {u: v for u, v in self._entries.items() if v[0] > now}
            if len(self._entries) > 10_000:
                self._entries.clear()
        self._entries[user_id] = (self._clock() + self.ttl, value)

    #: Tells the other processes (``sharedbus.share_messages``).
    broadcast: Callable[[str], None] | None = None

    def forget(self, user_id: str) -> None:
        """Drop ``user_id``'s defaults here and, with a shared Redis, in every process."""
        self.drop(user_id)
        if self.broadcast is not None:
            self.broadcast(user_id)

    def drop(self, user_id: str) -> None:
        self._epoch += 1
        self._entries.pop(user_id, None)


async def user_defaults(
    session: AsyncSession, cache: DefaultsCache, user_id: str
) -> Defaults | None:
    """The user's saved defaults (None if none), from the cache or the database."""
    found, value = cache.get(user_id)
    if found:
        return value
    epoch = cache.epoch()
    row = await session.get(UserSettings, user_id)
    value = (
        None
        if row is None
        else Defaults(
            provider=row.provider,
            model=row.model,
            aspect_ratio=row.aspect_ratio,
            image_size=row.image_size,
            webhook_url=row.webhook_url,
        )
    )
    cache.put(user_id, value, epoch)
    return value
