"""In-memory publish/subscribe of job events (``queued``, ``running``, ``attempt``,
``fallback``, ``image``, ``done``) for the SSE endpoint.

A channel lives while its job runs and keeps the events so far, so a subscriber that arrives
late still sees the whole story.  After the job ends the channel is dropped and the SSE route
answers from the database.  (Several processes would need a shared bus, e.g. Redis pub/sub,
behind the same three methods: ``sharedbus.SharedEventBus``.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Put on a subscriber's queue when the channel closes.
CLOSED: dict[str, Any] = {"event": "__closed__", "data": None}


@dataclass
class _Channel:
    history: list[dict[str, Any]] = field(default_factory=list)
    subscribers: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)


class Bus(Protocol):
    """What the job manager and the event stream route need of a bus: this process's
    (``EventBus``) or every process's (``sharedbus.SharedEventBus``)."""

    #: Whether a job running in another process can be followed.
    shared: bool

    def open(self, job_id: str) -> None: ...

    def publish(self, job_id: str, event: str, data: dict[str, Any]) -> None: ...

    def close(self, job_id: str) -> None: ...

    def tell(self, kind: str, arg: str) -> None:
        """Tell every other process (only with shared events; ``sharedbus.share_messages``)."""

    def subscribe(
        self, job_id: str
    ) -> contextlib.AbstractAsyncContextManager[
        tuple[list[dict[str, Any]], asyncio.Queue[dict[str, Any]]] | None
    ]: ...


class EventBus:
    shared = False

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    def open(self, job_id: str) -> None:
        self._channels.setdefault(job_id, _Channel())

    def publish(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        channel = self._channels.get(job_id)
        if channel is None:
            return
        item = {"event": event, "data": data, "id": len(channel.history) + 1}
        channel.history.append(item)
        for queue in channel.subscribers:
            queue.put_nowait(item)

    def tell(self, kind: str, arg: str) -> None:
        """One process: nobody else to tell."""

    def close(self, job_id: str) -> None:
        channel = self._channels.pop(job_id, None)
        if channel is None:
            return
        for queue in channel.subscribers:
            queue.put_nowait(CLOSED)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, job_id: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], asyncio.Queue[dict[str, Any]]] | None]:
        """(events so far, queue of the next ones), or None when the job is not running here."""
        channel = self._channels.get(job_id)
        if channel is None:
            yield None
            return
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        channel.subscribers.add(queue)
        try:
            yield list(channel.history), queue
        finally:
            channel.subscribers.discard(queue)
