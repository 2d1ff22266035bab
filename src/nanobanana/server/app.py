"""``create_app(settings)``: the FastAPI application factory.

Start-up (the lifespan): open the database and apply migrations; register this process as a
worker and mark the jobs that gone workers left ``queued``/``running`` as ``interrupted`` (never
re-run: a paid call is not sent twice; another live process's jobs are left alone, ``leases``);
load the
master key and check that it opens every stored provider key (a key that cannot be decrypted
stops the start with a message saying what to do); rotate stored keys to the first master key;
start the demo emulator in demo mode; open one shared HTTP session; start the worker pool and
the background refresh of the providers' model listings (``listings``).  Shutdown: stop taking
jobs, let running ones finish for ``shutdown_grace_seconds``, mark the rest ``interrupted``,
close everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from cryptography.fernet import InvalidToken
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import select

from .. import __version__
from ..catalog import Catalog
from ..discovery import ListingCache, Listings
from .db.direct import Transactions
from .db.engine import create_engine, create_sessionmaker
from .db.migrate import upgrade_database
from .db.models import ProviderKey
from .deps import reject_unknown_query
from .events import EventBus
from .jobs import JobManager
from .leases import Leases
from .listings import refresh_forever
from .middleware import BodyLimit, SecurityHeaders
from .problems import install_error_handlers, route_methods
from .security import (
    KeyVault,
    LoginGuard,
    MemoryRateLimiter,
    Passwords,
    StartupError,
    load_master_keys,
)
from .services import Services
from .settings import Settings
from .storage import LocalImageStore

log = logging.getLogger("nanobanana.server")

DESCRIPTION = """\
Generate images with Google's Gemini image models (Nano Banana) and OpenRouter's image models.

Authenticate with `Authorization: Bearer <token>` (POST /api/auth/login).  Every error has the
shape `{"error": {"code": "...", "message": "...", ...details}}`.
"""


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


async def _start(stack: AsyncExitStack, settings: Settings) -> Services:
    import aiohttp

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    vault = KeyVault(load_master_keys(settings))
    engine = create_engine(settings.resolved_database_url)
    stack.push_async_callback(engine.dispose)
    await upgrade_database(engine)
    # No connection cap here (aiohttp's default is 100): the job manager already bounds the
    # calls in flight (max_concurrent_jobs); a second, hidden limit queued the rest unseen.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))
    stack.push_async_callback(http.close)
    tx = Transactions(engine)
    stack.callback(tx.close)
    services = Services(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        tx=tx,
        store=LocalImageStore(settings.images_dir),
        vault=vault,
        passwords=Passwords(settings),
        login_guard=LoginGuard(settings),
        generation_limiter=MemoryRateLimiter(settings.generations_per_minute, 60.0),
        catalog=Catalog(),
        bus=EventBus(),
        http=http,
        listings=Listings(ListingCache(settings.listings_dir)),
    )
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
    services.jobs = JobManager(services)
    stack.push_async_callback(services.jobs.shutdown, settings.shutdown_grace_seconds)
    refresher = asyncio.create_task(refresh_forever(services), name="model-listings")
    stack.push_async_callback(_cancel, refresher)
    return services


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; ``settings`` default to ``Settings()`` (the environment)."""
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.services = await _start(stack, settings)
            log.info("nanobanana %s service ready (data in %s).", __version__, settings.data_dir)
            yield

    docs = settings.docs_enabled
    app = FastAPI(
        title="nanobanana",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by ui.docs_router, from the package instead of a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # Starlette's slash redirects build an absolute Location from the Host header: a
        # client could make them point anywhere (and a shared cache keep that). No redirects.
        redirect_slashes=False,
    )
    install_error_handlers(app)

    from .routes import (
        admin,
        auth,
        compat_openai,
        compat_openrouter,
        generate,
        generations,
        health,
        images,
        tokens,
        ui,
        uploads,
    )
    from .routes import settings as settings_routes

    strict = [Depends(reject_unknown_query)]
    routers = []
    for module in (
        health,
        auth,
        tokens,
        settings_routes,
        uploads,
        generate,
        generations,
        images,
        admin,
    ):
        app.include_router(module.router, dependencies=strict)
        routers.append(module.router)
    for module in (compat_openrouter, compat_openai):
        app.include_router(module.router)
        routers.append(module.router)
    app.include_router(ui.router)
    routers.append(ui.router)
    if docs:
        app.include_router(ui.docs_router)
        routers.append(ui.docs_router)
    # What a 405's Allow names: every method of a path, across the routes that serve it.
    app.state.route_methods = route_methods([r for router in routers for r in router.routes])

    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        # Bearer tokens need no cookies: credentials stay off, so "*" is never combined with them.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", "Idempotent-Replayed", "Location"],
        )
    app.add_middleware(SecurityHeaders)
    return app
