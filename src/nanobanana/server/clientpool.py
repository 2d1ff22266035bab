"""The library clients the jobs run with, one per set of keys, shared by the jobs using it.

A client holds its keys, base URLs and providers (each with its transport on the service's
connection pool): about 2 KB, held by a generation for its whole upstream wait.  The jobs that
run with the same keys (one user's, the server's, the demo emulator's) share one client
instead: ``acquire`` hands out the client of an ``Upstream``, ``release`` gives it back.  A
client nobody uses is closed after ``idle_seconds`` (and beyond ``max_idle`` idle clients, the
oldest first), so a replaced or deleted key does not stay in memory for long.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from ..client import AsyncClient
from .upstream import Upstream


@dataclass(slots=True)
class _Entry:
    client: AsyncClient
    #: The jobs using it now.
    users: int = 0


def _key(upstream: Upstream) -> bytes:
    """A digest of the keys, base URLs and kind: the keys themselves are never a dict key
    here (a traceback's locals or a debugger's view of the pool would show them)."""
    material = (
        sorted(upstream.api_keys.items()),
        sorted(upstream.base_urls.items()),
        upstream.synthetic,
    )
    return hashlib.sha256(orjson.dumps(material)).digest()


class ClientPool:
    def __init__(
        self,
        build: Callable[[Upstream], AsyncClient],
        *,
        idle_seconds: float = 60.0,
        max_idle: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._build = build
        self.idle_seconds = idle_seconds
        self.max_idle = max_idle
        self._clock = clock
        self._clients: dict[bytes, _Entry] = {}
        #: The unused clients' keys, the longest unused first, with when they were released.
        self._idle: OrderedDict[bytes, float] = OrderedDict()

    def __repr__(self) -> str:  # never the keys
        return f"ClientPool(clients={len(self._clients)}, idle={len(self._idle)})"

    def acquire(self, upstream: Upstream) -> AsyncClient:
        """The client for ``upstream``'s keys and base URLs; give it back with ``release``."""
        key = _key(upstream)
        entry = self._clients.get(key)
        if entry is None:
            entry = self._clients[key] = _Entry(self._build(upstream))
        else:
            self._idle.pop(key, None)
        entry.users += 1
        return entry.client

    async def release(self, upstream: Upstream) -> None:
        key = _key(upstream)
        entry = self._clients.get(key)
        if entry is None:
            return
        entry.users -= 1
        now = self._clock()
        if entry.users <= 0:
            self._idle[key] = now
        await self._close_idle(now)

    async def _close_idle(self, now: float) -> None:
        while self._idle:
            key, since = next(iter(self._idle.items()))
            if len(self._idle) <= self.max_idle and now - since < self.idle_seconds:
                return
            del self._idle[key]
            await self._clients.pop(key).client.aclose()

    async def aclose(self) -> None:
        """Close every client (at shutdown, once no job runs)."""
        entries = list(self._clients.values())
        self._clients.clear()
        self._idle.clear()
        for entry in entries:
            await entry.client.aclose()
