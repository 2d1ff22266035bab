"""``/mcp``: nanobanana's MCP tools over streamable HTTP (docs/mcp.md), for the user whose
bearer token comes with each request (a personal API token from the settings page).

The token is checked here, before the MCP SDK sees the request: a missing, unknown, expired or
revoked one is the service's usual 401.  The tools run on ``mcp.service.ServiceBackend`` for
that user, so every call is a job in their history, with their keys, defaults, fallback and
rate limit.  The transport is stateless (each POST stands alone), so any web process can
answer any request; progress comes as server-sent events in the call's own response.

The MCP server is built on the first request; the SDK comes with the ``mcp`` extra: without
it ``/mcp`` answers 404 saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ..deps import authenticate
from ..problems import ApiError, answer_error
from ..services import Services
from ..settings import Settings

PATH = "/mcp"
METHODS = ["GET", "POST", "DELETE"]
#: Where the endpoint leaves the caller for the tools, in the ASGI scope's ``state``.
_STATE = "nanobanana.mcp"

INSTRUCTIONS = (
    "Image generation with Google's Gemini image models (Nano Banana) and OpenRouter's image "
    "models, as a user of this nanobanana service: every call is kept in your history, with "
    "your keys. Each result links the image (download it with the same bearer token) and "
    "carries a small preview (full_size=true for the whole image). Use edit_image to change an "
    "existing picture, continue_session for a series of edits that build on each other."
)


class McpEndpoint:
    """The ASGI endpoint of ``/mcp``.  The MCP server is built on the first request (the SDK's
    import costs about a second and some memory that a service nobody calls it on need not
    pay); ``serving`` stops it with the process's services."""

    def __init__(self, settings: Settings) -> None:
        self.public_url = settings.public_url
        self._services: Services | None = None
        self._lock: asyncio.Lock | None = None
        #: The SDK's session manager once started; ``False`` when the mcp extra is missing.
        self._manager: Any = None
        self._stop: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def serving(self, services: Services) -> AsyncIterator[None]:
        self._services, self._lock = services, asyncio.Lock()
        try:
            yield
        finally:
            if self._stop is not None and self._holder is not None:
                self._stop.set()
                await self._holder
            self._manager = self._stop = self._holder = None

    async def _started(self) -> Any:
        """The session manager, started on first use (``False``: no mcp extra)."""
        assert self._lock is not None and self._services is not None, "not serving"
        async with self._lock:
            if self._manager is None:
                self._manager = await self._start(self._services)
        return self._manager

    async def _start(self, services: Services) -> Any:
        try:
            from mcp.server.transport_security import TransportSecuritySettings

            from ...mcp.service import REFERENCES_HELP, ServiceBackend
            from ...mcp.tools import build_server
        except ModuleNotFoundError as exc:
            if exc.name is None or not exc.name.startswith("mcp"):
                raise
            return False

        def backend_for(ctx: Any) -> ServiceBackend:
            state = ctx.request_context.request.scope["state"][_STATE]
            return ServiceBackend(services, state["user"], state["base_url"])

        server = build_server(
            backend_for,
            catalog=services.catalog,
            references_help=REFERENCES_HELP,
            instructions=INSTRUCTIONS,
        )
        # Requests carry a bearer token, which a page on another site cannot add: the SDK's
        # Host/Origin check against DNS rebinding is not needed, and would refuse the
        # service's own name behind a proxy.
        server.streamable_http_app(
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = server.session_manager
        # The manager's task group is entered and left in a task of its own, not in the
        # request that happened to start it.
        ready, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with manager.run():
                ready.set()
                await stop.wait()

        holder = asyncio.create_task(hold())
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({holder, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if holder.done():  # it could not start: its error
            holder.result()
        self._stop, self._holder = stop, holder
        return manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        services: Services = request.app.state.services
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        try:
            auth = await authenticate(services, token if scheme.lower() == "bearer" else None)
        except ApiError as err:
            await (await answer_error(request, err))(scope, receive, send)
            return
        manager = await self._started()
        if manager is False:
            error = ApiError(
                404,
                "not_found",
                "This service has no MCP endpoint: install nanobanana with its mcp extra "
                "(pip install '.[mcp]').",
            )
            await (await answer_error(request, error))(scope, receive, send)
            return
        base_url = self.public_url or str(request.base_url)
        scope.setdefault("state", {})[_STATE] = {"user": auth.user, "base_url": base_url}
        await manager.handle_request(scope, receive, send)
