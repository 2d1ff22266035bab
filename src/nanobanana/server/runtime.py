"""The long-lived objects of a service process, without any web framework: what ``nanobanana
serve`` (``app``) and ``nanobanana worker`` (``worker``) both start.

``start_services``: open the database and apply migrations; register this process as a worker
and end as ``interrupted`` the jobs that gone workers left ``queued``/``running`` (never re-run:
a paid call is not sent twice; another live process's jobs are left alone, ``leases``); load the
master key and check that it opens every stored provider key (a key that cannot be decrypted
stops the start with a message saying what to do); rotate stored keys to the first master key;
start the demo emulator in demo mode; open one shared HTTP session; start the job manager and
the background refresh of the providers' model listings (``listings``) and the sender of
webhook deliveries (``webhooks``).  Closing the stack
stops taking jobs, lets running ones finish for ``shutdown_grace_seconds``, marks the rest
``interrupted`` and closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import select

from ..catalog import Catalog
from ..discovery import ListingCache, Listings
from .db.direct import Transactions
from .db.engine import create_engine, create_sessionmaker
from .db.migrate import upgrade_database
from .db.models import ProviderKey
from .events import Bus, EventBus
from .jobs import JobManager
from .leases import Leases
from .listings import refresh_forever
from .security import (
    KeyVault,
    LoginGuard,
    MemoryRateLimiter,
    Passwords,
    RateLimiter,
    StartupError,
    load_master_keys,
)
from .services import Services
from .settings import Settings
from .storage import ImageStore, LocalImageStore
from .webhooks import Dispatcher

__all__ = ["check_and_rotate_keys", "open_store", "start_services"]

log = logging.getLogger("nanobanana.server")


async def check_and_rotate_keys(services: Services) -> None:
    """Every stored provider key must decrypt; keys under an older master key are re-encrypted
    under the first one (MultiFernet rotation)."""
    vault = services.vault
    async with services.sessionmaker() as session, session.begin():
        rows = (await session.scalars(select(ProviderKey))).all()
        unreadable = 0
        rotated = 0
        for row in rows:
            try:
                if vault.needs_rotation(row.ciphertext):
                    row.ciphertext = vault.rotate(row.ciphertext)
                    rotated += 1
            except InvalidToken:
                unreadable += 1
        if unreadable:
            raise StartupError(
                f"{unreadable} of {len(rows)} stored provider key(s) cannot be decrypted with the "
                "configured master key(s). Start with the master key they were saved under "
                "(NANOBANANA_MASTER_KEYS=<new>,<old> rotates them to the new key), or restore "
                f"the key file {services.settings.resolved_master_key_file}."
            )
    if rotated:
        log.info("Re-encrypted %d stored provider key(s) under the first master key.", rotated)


async def start_services(
    stack: AsyncExitStack, settings: Settings, *, accepts_jobs: bool = True
) -> Services:
    """Everything a process that serves or runs jobs needs, closed with ``stack``.
    ``accepts_jobs``: a web process (with ``NANOBANANA_JOBS=external`` it queues the jobs it
    accepts for the workers), not a ``nanobanana worker``."""
    import aiohttp

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    vault = KeyVault(load_master_keys(settings, create=None if accepts_jobs else False))
    engine = create_engine(settings.resolved_database_url)
    stack.push_async_callback(engine.dispose)
    await upgrade_database(engine)
    # No connection cap here (aiohttp's default is 100): the job manager already bounds the
    # calls in flight (max_concurrent_jobs); a second, hidden limit queued the rest unseen.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))
    stack.push_async_callback(http.close)
    tx = Transactions(engine)
    stack.callback(tx.close)
    redis = await _redis(stack, settings)
    bus = await _bus(stack, redis, settings)
    limiter = _limiters(redis)
    services = Services(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        tx=tx,
        store=await open_store(settings.storage_url, settings.s3_endpoint_url)
        or LocalImageStore(settings.images_dir),
        vault=vault,
        passwords=Passwords(settings),
        login_guard=LoginGuard(settings, limiter=limiter),
        generation_limiter=limiter("generations", settings.generations_per_minute, 60.0),
        catalog=Catalog(),
        bus=bus,
        http=http,
        listings=Listings(ListingCache(settings.listings_dir)),
    )
    if redis is not None:  # redis is imported only when configured (the redis extra)
        from .sharedbus import SharedEventBus, share_messages
        from .sharedlimits import RedisUserSlots

        assert isinstance(bus, SharedEventBus)
        share_messages(services, bus)
        services.user_slots = RedisUserSlots(
            redis, settings.max_concurrent_jobs_per_user, settings.worker_lease_seconds
        )
        stack.push_async_callback(services.user_slots.close)  # after the job manager's end
    await check_and_rotate_keys(services)
    # Only the jobs of processes that are gone are reconciled: others may share the database.
    leases = Leases(services)
    await leases.start()
    services.worker_id = leases.id
    stack.push_async_callback(leases.stop)
    if settings.demo_enabled:
        from .demo import DemoUpstream

        demo = DemoUpstream()
        await demo.start()
        stack.push_async_callback(demo.stop)
        services.demo = demo
    queue = None
    if accepts_jobs and settings.jobs == "external":
        from .tasks import Queue

        queue = Queue(settings)
        await queue.open()
        stack.push_async_callback(queue.close)
    services.jobs = JobManager(services, queue)
    stack.push_async_callback(services.jobs.shutdown, settings.shutdown_grace_seconds)
    refresher = asyncio.create_task(refresh_forever(services), name="model-listings")
    stack.push_async_callback(_cancel, refresher)
    services.webhooks = Dispatcher(services)
    sender = asyncio.create_task(services.webhooks.run_forever(), name="webhooks")
    stack.push_async_callback(_cancel, sender)
    return services


async def _redis(stack: AsyncExitStack, settings: Settings) -> Any:
    """The Redis client the processes share (``NANOBANANA_REDIS_URL``), or None."""
    if settings.redis_url is None:
        return None
    import redis.asyncio

    # A Redis that hangs must not hang requests: every command gives up after 5 s.
    client = redis.asyncio.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=5, socket_connect_timeout=5
    )
    stack.push_async_callback(client.aclose)
    try:
        await client.ping()
    except (OSError, TimeoutError, redis.exceptions.RedisError) as exc:
        raise StartupError(
            f"Redis at NANOBANANA_REDIS_URL did not answer ({type(exc).__name__}): start it, or "
            "unset the variable to keep job events and limits in each process."
        ) from None
    return client


async def open_store(storage_url: str | None, endpoint_url: str | None) -> ImageStore | None:
    """The S3 bucket that every process shares, checked now (a wrong bucket or key stops the
    start, not the first generation); None without ``storage_url`` (the local folder)."""
    if storage_url is None:
        return None
    from obstore.exceptions import BaseError

    from .storage.s3 import S3ImageStore

    store = S3ImageStore(storage_url, endpoint_url)
    try:
        await store.check()
    except (BaseError, OSError) as exc:  # said in one line, without the URL's details
        raise StartupError(
            f"The image bucket {store.bucket!r} (NANOBANANA_STORAGE_URL) cannot be written "
            f"({type(exc).__name__}): check that it exists, the AWS_* credentials and "
            "NANOBANANA_S3_ENDPOINT_URL."
        ) from None
    return store


async def _bus(stack: AsyncExitStack, client: Any, settings: Settings) -> Bus:
    """This process's event bus, or with Redis every process's (stopped after the job manager,
    so that the last events are sent)."""
    if client is None or settings.redis_url is None:
        return EventBus()
    import redis.asyncio

    from .sharedbus import SharedEventBus

    # The pub/sub connection waits for messages indefinitely: no read timeout, a health check.
    listener = redis.asyncio.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_connect_timeout=5, health_check_interval=30
    )
    stack.push_async_callback(listener.aclose)
    bus = SharedEventBus(client, listener)
    await bus.start()
    stack.push_async_callback(bus.stop)
    return bus


def _limiters(redis: Any) -> Callable[[str, int, float], RateLimiter]:
    """Makes the rate limits: in this process, or with Redis across all of them."""
    if redis is None:
        return lambda _name, limit, window: MemoryRateLimiter(limit, window)
    from .sharedlimits import RedisRateLimiter

    return lambda name, limit, window: RedisRateLimiter(redis, name, limit, window)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
