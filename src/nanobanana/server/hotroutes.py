"""The two hot routes in front of the whole application stack.

``POST /api/nano-banana/generate`` and ``POST /api/v1/chat/completions`` (and
``/v1/chat/completions``) are what image tools call in a loop.  ``HotRoutes`` sits in front of
the FastAPI application (``app.App``) and does for them what the stack and their dependencies
do: the body limit (``middleware.too_large``), the bearer token (``deps.authenticate``), the
JSON body parsed into the route's request model; then it calls the route function's two
halves (the job accepted, then its answer, holding neither the body nor the user in between)
and sends the response with the security headers (``middleware.add_security_headers``).
Errors get the answers FastAPI's handlers give (``problems.answer_error``, or the dialect's
renderer for the OpenRouter-compatible route; an unexpected one ``problems.on_unexpected``'s
500).

Any other request goes to FastAPI untouched, and so does any request this path would answer
differently or could not explain as well: another method or path, a query string, no
``Authorization: Bearer`` header, a content type other than ``application/json``, a declared
``Content-Length`` over the limit, a cross-origin request when CORS is on, a body that does not
validate (FastAPI's 422 then says what to fix; the body is handed on as read).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .compat.openrouter_request import ChatRequest
from .db.models import User
from .deps import authenticate
from .middleware import add_security_headers, too_large
from .problems import HANDLED, ApiError, answer_error, on_unexpected
from .routes import compat_openrouter, generate
from .routes.compat_common import CAUGHT, dialect_answer, render_openrouter
from .schemas import GenerateIn
from .services import Services


@dataclass(frozen=True)
class HotRoute:
    model: type[BaseModel]
    #: The two halves of the route function: the request as a job (from the body, the user,
    #: the services and the Idempotency-Key), then the answer once it has ended.
    accept: Callable[[Any, User, Services, str | None], Awaitable[Any]]
    answer: Callable[[Services, Any], Awaitable[Response]]
    #: The errors its route class or the app's handlers answer, and their answer.
    caught: tuple[type[Exception], ...]
    answer_error: Callable[[Request, Exception], Awaitable[Response]]


async def _openrouter_error(request: Request, exc: Exception) -> Response:
    return dialect_answer(render_openrouter, request, exc)


_SEED = HotRoute(GenerateIn, generate.accept, generate.answer, HANDLED, answer_error)
_CHAT = HotRoute(
    ChatRequest,
    compat_openrouter.accept,
    compat_openrouter.answer,
    CAUGHT,
    _openrouter_error,
)
ROUTES = {
    "/api/nano-banana/generate": _SEED,
    "/api/v1/chat/completions": _CHAT,
    "/v1/chat/completions": _CHAT,
}


def _is_json(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


class HotRoutes:
    """``app`` (FastAPI's ``__call__``) for everything but the hot routes.  ``owner``: the
    application, set as ``scope["app"]`` as Starlette does (the error handlers read its
    state); ``max_bytes``: the body limit; ``cors``: whether CORS is on (a request with an
    ``Origin`` is then left to its middleware)."""

    def __init__(self, app: ASGIApp, owner: Any, *, max_bytes: int, cors: bool) -> None:
        self.app = app
        self.owner = owner
        self.max_bytes = max_bytes
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        authorization = content_type = idempotency_key = length = None
        origin = False
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"authorization":
                authorization = authorization or value
            elif name == b"content-type":
                content_type = content_type or value
            elif name == b"idempotency-key":
                idempotency_key = idempotency_key or value
            elif name == b"content-length":
                length = length or value
            elif name == b"origin":
                origin = True
        token = _bearer(authorization)
        if (
            token is None
            or content_type is None
            or not _is_json(content_type)
            or (origin and self.cors)
            or (length is not None and (not length.isdigit() or int(length) > self.max_bytes))
        ):
            await self.app(scope, receive, send)
            return
        scope["app"] = self.owner
        try:
            body = await _read_body(receive, self.max_bytes)
        except ApiError as exc:  # over the limit
            await self._send(scope, receive, send, await route.answer_error(Request(scope), exc))
            return
        if body is None:  # the client went away
            return
        try:
            parsed = route.model.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replay(body, receive), send)
            return
        del body
        services: Services = self.owner.state.services
        key = idempotency_key.decode("latin-1") if idempotency_key is not None else None
        try:
            auth = await authenticate(services, token)
            accepted = await route.accept(parsed, auth.user, services, key)
            # Not held while the job runs: the body (with any reference images) and the user.
            del parsed, auth
            response = await route.answer(services, accepted)
        except route.caught as exc:
            response = await route.answer_error(Request(scope), exc)
        except Exception as exc:
            # As Starlette's ServerErrorMiddleware: the 500, then the error raised again for
            # the server's log.
            await self._send(scope, receive, send, await on_unexpected(Request(scope), exc))
            raise
        await self._send(scope, receive, send, response)

    @staticmethod
    async def _send(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        add_security_headers(response.headers)
        await response(scope, receive, send)


def _bearer(authorization: bytes | None) -> str | None:
    """The credentials of ``Authorization: Bearer <credentials>``, read by the same function
    as FastAPI's ``HTTPBearer``; None for anything else."""
    if not authorization:
        return None
    scheme, credentials = get_authorization_scheme_param(authorization.decode("latin-1"))
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


async def _read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body (None if the client went away; 413 past ``max_bytes``)."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with ``body`` given again first."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
