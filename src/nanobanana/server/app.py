"""``create_app(settings)``: the FastAPI application factory.

Its lifespan starts the process's services (``runtime.start_services``: database and
migrations, leases, keys, demo emulator, job manager, model listings) and closes them on
shutdown (running jobs get ``shutdown_grace_seconds`` to finish, the rest end ``interrupted``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from .. import __version__
from .deps import reject_unknown_query
from .hotroutes import HotRoutes
from .middleware import BodyLimit, SecurityHeaders
from .problems import install_error_handlers, route_methods
from .runtime import start_services
from .settings import Settings

log = logging.getLogger("nanobanana.server")

DESCRIPTION = """\
Generate images with Google's Gemini image models (Nano Banana) and OpenRouter's image models.

Authenticate with `Authorization: Bearer <token>` (POST /api/auth/login).  Every error has the
shape `{"error": {"code": "...", "message": "...", ...details}}`.
"""


class App(FastAPI):
    """The FastAPI application, with the hot routes (``hotroutes``) served in front of it."""

    #: Set by ``create_app``; hands everything else to ``FastAPI.__call__``.
    hot: HotRoutes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.hot(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; ``settings`` default to ``Settings()`` (the environment)."""
    settings = settings if settings is not None else Settings()

    from starlette.routing import Route

    from .routes.mcp import METHODS, PATH, McpEndpoint

    mcp_endpoint = McpEndpoint(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.services = await start_services(stack, settings)
            await stack.enter_async_context(mcp_endpoint.serving(app.state.services))
            log.info("nanobanana %s service ready (data in %s).", __version__, settings.data_dir)
            yield

    docs = settings.docs_enabled
    app = App(
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
        compat_openrouter_images,
        generate,
        generations,
        health,
        images,
        sessions,
        tokens,
        ui,
        uploads,
        usage,
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
        sessions,
        images,
        usage,
        admin,
    ):
        app.include_router(module.router, dependencies=strict)
        routers.append(module.router)
    for module in (compat_openrouter, compat_openrouter_images, compat_openai):
        app.include_router(module.router)
        routers.append(module.router)
    app.include_router(ui.router)
    routers.append(ui.router)
    if docs:
        app.include_router(ui.docs_router)
        routers.append(ui.docs_router)
    # MCP over streamable HTTP: an ASGI endpoint of the MCP SDK's, behind the bearer token.
    app.router.routes.append(Route(PATH, mcp_endpoint, methods=METHODS))
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
    app.hot = HotRoutes(
        functools.partial(FastAPI.__call__, app),
        app,
        max_bytes=settings.max_request_bytes,
        cors=bool(settings.cors_origins),
    )
    return app
