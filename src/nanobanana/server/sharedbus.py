"""Job events shared by every process on Redis (``NANOBANANA_REDIS_URL``): an event stream on
web process A follows a job that a worker runs, and a synchronous request waiting on A wakes
the moment that job is done.

Each job's events go to a Redis stream (``nanobanana:job:<id>``, kept ``KEEP_SECONDS`` after
its last event) and, in the same step (one Lua script, so the two cannot disagree on order), to
one pub/sub channel that every process listens to.  A subscriber registers for the live events
first, then reads the stream so far: nothing falls between the two, and what arrives twice is
recognised by its stream id.  The stream ids are the events' ids (``id:`` of the SSE events).

The same channel machinery carries messages to every other process (``share_messages``):
cache invalidations, so that a revoked token, a replaced key or new defaults take effect on
every process within milliseconds, not after the caches' 30 s; and the stop of a cancelled
job's call, in whichever process runs it.

A publisher never waits for Redis: events are handed to one sender task per process, which
keeps their order.  If Redis is unreachable the events are dropped with a warning, not the
job: the job's row in the database stays the truth, and every waiter falls back to reading it
(``EVENTLESS_CHECK_SECONDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

from .events import CLOSED

if TYPE_CHECKING:
    from .services import Services

__all__ = ["FAILURES", "KEEP_SECONDS", "OUTAGE", "SharedEventBus", "share_messages"]

log = logging.getLogger("nanobanana.server")

#: How long a job's events stay readable after its last one.
KEEP_SECONDS = 600
CHANNEL = "nanobanana:events"
#: The channel of ``tell`` (its name from when it carried only cache invalidations).
TOLD = "nanobanana:invalidate"
_PREFIX = "nanobanana:job:"
#: The marker of a channel closed without ``done`` (the job was deleted while it ran).
_CLOSED = "__closed__"
#: XADD and PUBLISH in one step: the stream and the channel see the same order.
_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 1000, '*', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], KEYS[1] .. '\\n' .. id .. '\\n' .. ARGV[1])
return id
"""


#: What a Redis call may raise when the server is away or refuses.
FAILURES = (RedisError, OSError, TimeoutError)


class Outage:
    """One warning when Redis stops answering and one line when it is back, instead of a
    warning per event, limit check or lease (thousands a minute on a busy service)."""

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, what: str, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "Redis did not answer (%s, %s): %s; the service goes on without it and says "
                "when it is back.",
                what,
                type(exc).__name__,
                _DEGRADED,
            )

    def ok(self) -> None:
        if self.since is not None:
            log.warning("Redis answers again after %.0f s.", time.monotonic() - self.since)
            self.since = None


#: What the service does while Redis is away.
_DEGRADED = (
    "job events are dropped (waiters read the database), limits are counted per process, "
    "cache changes reach other processes within 30 s"
)
#: This process's view of Redis, shared by the bus and the limits.
OUTAGE = Outage()


def _order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)  # each one is itself: kept in sets
class _Subscriber:
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    #: Events that arrived before the stream so far was read (then ``after`` is None).
    early: list[dict[str, Any]] = field(default_factory=list)
    after: tuple[int, int] | None = None

    def offer(self, item: dict[str, Any]) -> None:
        if self.after is None:
            self.early.append(item)
        elif _order(item["id"]) > self.after:
            self.after = _order(item["id"])
            self.queue.put_nowait(CLOSED if item["event"] == _CLOSED else item)


class SharedEventBus:
    """``EventBus``'s three methods and ``subscribe``, across processes."""

    shared = True

    def __init__(self, redis: Any, listener: Any = None) -> None:
        """``listener``: a client without a read timeout for the pub/sub connection, which
        waits for messages indefinitely (default ``redis``)."""
        self._redis = redis
        self._listener = listener if listener is not None else redis
        self._script = redis.register_script(_PUBLISH)
        #: (job id, event) or (``TOLD``, message); None stops the sender.
        self._outbox: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        #: This process, to skip its own messages.
        self._origin = uuid.uuid4().hex.encode()
        #: Applies another process's message here (``share_messages``).
        self.on_told: Callable[[str, str], None] | None = None
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """Listen for every process's events (the caller has seen Redis answer a ping)."""
        self._tasks = [
            asyncio.create_task(self._send(), name="events-out"),
            asyncio.create_task(self._listen(), name="events-in"),
        ]
        await asyncio.wait_for(self._listening.wait(), 10)

    async def stop(self, flush_seconds: float = 5.0) -> None:
        """Send what is still queued (for at most ``flush_seconds``), then stop."""
        self._outbox.put_nowait(None)
        sender = self._tasks[0]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(sender), flush_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------- publishing
    def open(self, job_id: str) -> None:
        """Nothing to set up: a job's stream begins with its first event."""

    def publish(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        self._outbox.put_nowait((job_id, orjson.dumps({"event": event, "data": data})))

    def close(self, job_id: str) -> None:
        """The job's events end here; a ``done`` said so already (else: deleted meanwhile)."""
        self._outbox.put_nowait((job_id, orjson.dumps({"event": _CLOSED, "data": None})))

    def tell(self, kind: str, arg: str) -> None:
        """Tell the other processes (``share_messages``): drop a cache entry, stop a call."""
        message = b"\n".join((self._origin, kind.encode(), arg.encode()))
        self._outbox.put_nowait((TOLD, message))

    async def _send(self) -> None:
        while True:
            entry = await self._outbox.get()
            if entry is None:
                return
            target, payload = entry
            try:
                if target == TOLD:
                    await self._redis.publish(TOLD, payload)
                    continue
                await self._script(keys=[_PREFIX + target], args=[payload, KEEP_SECONDS, CHANNEL])
            except FAILURES as exc:  # the job goes on; its row stays the truth
                OUTAGE.failed("sending a job event", exc)
            else:
                OUTAGE.ok()

    # ------------------------------------------------------------------- listening
    async def _listen(self) -> None:
        while True:
            pubsub = self._listener.pubsub()
            try:
                await pubsub.subscribe(CHANNEL, TOLD)
                self._listening.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    if message["channel"] in (TOLD, TOLD.encode()):
                        self._told(message["data"])
                    else:
                        self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except FAILURES as exc:  # reconnect; waiters read the database meanwhile
                OUTAGE.failed("listening for job events", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _told(self, raw: bytes) -> None:
        origin, kind, arg = raw.split(b"\n", 2)
        if origin != self._origin and self.on_told is not None:
            self.on_told(kind.decode(), arg.decode())

    def _dispatch(self, raw: bytes) -> None:
        key, stream_id, payload = raw.split(b"\n", 2)
        subscribers = self._subscribers.get(key.decode()[len(_PREFIX) :])
        if not subscribers:
            return
        item = {**orjson.loads(payload), "id": stream_id.decode()}
        for sub in subscribers:
            sub.offer(item)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, job_id: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], asyncio.Queue[dict[str, Any]]] | None]:
        """(the job's events so far, queue of the next ones), wherever the job runs."""
        sub = _Subscriber()
        self._subscribers.setdefault(job_id, set()).add(sub)
        try:
            history: list[dict[str, Any]] = []
            try:
                entries = await self._redis.xrange(_PREFIX + job_id)
            except FAILURES as exc:  # live events only; the caller reads the database too
                OUTAGE.failed("reading job events", exc)
                entries = []
            for stream_id, fields in entries:
                sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
                history.append({**orjson.loads(fields[b"e"]), "id": sid})
            sub.after = _order(history[-1]["id"]) if history else (0, 0)
            early, sub.early = sub.early, []
            for item in early:
                sub.offer(item)
            if any(item["event"] == _CLOSED for item in history):
                sub.queue.put_nowait(CLOSED)
            yield [i for i in history if i["event"] != _CLOSED], sub.queue
        finally:
            subs = self._subscribers.get(job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[job_id]


def share_messages(services: Services, bus: SharedEventBus) -> None:
    """Every cache drop (a revoked token, a replaced key, new defaults, the server-keys
    switch) is told to the other processes, which drop the same entry at once.  If Redis
    is away, the caches' own 30 s bound the staleness, as with one process per database.
    A cancelled job's ``stop`` reaches the process running it (else its heartbeat finds it)."""
    auth, keys, defaults = services.auth_cache, services.key_cache, services.defaults_cache
    auth.broadcast = lambda user_id: bus.tell("auth", user_id)
    keys.broadcast = bus.tell
    defaults.broadcast = lambda user_id: bus.tell("defaults", user_id)
    handlers: dict[str, Callable[[str], object]] = {
        "auth": auth.drop_user,
        "keys": keys.drop,
        "allowed": lambda _: keys.drop_allowed(),
        "defaults": defaults.drop,
        "stop": lambda job_id: services.jobs is not None and services.jobs.stop(job_id),
    }

    def apply(kind: str, arg: str) -> None:
        handler = handlers.get(kind)
        if handler is not None:
            handler(arg)

    bus.on_told = apply
