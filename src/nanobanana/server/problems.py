"""One JSON error shape for every error the service returns.

::

    {"error": {"code": "quota_exceeded", "message": "...", ...details}}

``code`` is stable and machine-readable; ``message`` is for people; details depend on the code
(``field`` and ``allowed`` for bad parameters, ``job_id``, ``provider``, ``reason``,
``retry_after``...).  FastAPI's own 422, 404 and 405 answers are rewritten to the same shape.

Under the drop-in prefixes the shape is the one those clients parse (``compat/errors.py``):
OpenRouter's under ``/api/v1`` (an integer ``code``, the HTTP status), OpenAI's under ``/v1``
and on the OpenAI-compatible routes.  The compatible routes render their own errors; the
handlers here cover what reaches no route (an unknown path, a method the path does not allow)
and what the middleware refuses.
Library and service errors (``nanobanana.errors``, ``server/errors.py``) are reported as
``server/reports.py`` says.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import NanobananaError
from .compat.errors import Flavour, from_api, openai_error, openrouter_error
from .reports import Report, report, report_of
from .schemas import PATTERN_HINTS

log = logging.getLogger("nanobanana.server")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """An error answer: status, code, message, details, headers.

    A subclass of Starlette's HTTPException so that FastAPI passes it through untouched even
    when it is raised while a request body is being read (the body size limit)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(status_code=status, detail=message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}

    def response(self) -> Response:
        return json_response(self.body(), self.status, self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"No such {what}.")


# --------------------------------------------------------------------- library errors
def job_error(code: str, message: str, details: dict[str, Any] | None, **extra: Any) -> ApiError:
    """The answer for an error code (raised, or stored on a job that ended with it)."""
    return from_report(report(code, message, details, **extra))


def from_report(r: Report) -> ApiError:
    return ApiError(r.status, r.code, r.message, headers=r.headers, **r.details)


def from_library(exc: NanobananaError, **extra: Any) -> ApiError:
    return from_report(report_of(exc, **extra))


# ------------------------------------------------------------------------- handlers
def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: pydantic's "input" and "ctx" could echo a password or
    # an API key back to the caller (and into any log of responses).
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]


#: Paths under ``/api/v1`` that speak OpenAI's dialect (its Images API, mirrored there).
_OPENAI_UNDER_OPENROUTER = ("/api/v1/images/generations", "/api/v1/images/edits")


def dialect_of(path: str) -> Flavour | None:
    """The drop-in dialect whose clients call ``path``, if any."""
    if path.startswith(_OPENAI_UNDER_OPENROUTER) or path == "/v1" or path.startswith("/v1/"):
        return "openai"
    if path == "/api/v1" or path.startswith("/api/v1/"):
        return "openrouter"
    return None


def answer_for(path: str, error: ApiError) -> Response:
    """``error`` in the shape a client calling ``path`` parses."""
    dialect = dialect_of(path)
    if dialect is None:
        return error.response()
    problem = from_api(error.status, error.code, error.message, error.details, error.headers)
    body = openrouter_error(problem) if dialect == "openrouter" else openai_error(problem)
    return json_response(body, problem.status, problem.response_headers())


def _answer(request: Request, error: ApiError) -> Response:
    return answer_for(request.url.path, error)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _answer(request, exc)


#: An example body for messages about the body as a whole.
_EXAMPLE_BODY = '{"prompt": "a banana"}'


def _explain(error: dict[str, Any]) -> str:
    """One validation error as a sentence that says what to fix."""
    loc = error.get("loc", ())
    kind = error.get("type")
    ctx = error.get("ctx") or {}
    where = ".".join(str(p) for p in loc if p != "body" and not isinstance(p, int)) or "request"
    if kind == "json_invalid":
        at = next((p for p in loc if isinstance(p, int)), None)
        why = f" ({ctx['error']} at character {at})" if ctx.get("error") and at is not None else ""
        return f"The request body is not valid JSON{why}. Send a JSON object, e.g. {_EXAMPLE_BODY}."
    if tuple(loc) == ("body",) and kind in ("model_attributes_type", "dict_type", "missing"):
        return (
            "The request body must be a JSON object sent with 'Content-Type: application/json', "
            f"e.g. {_EXAMPLE_BODY}."
        )
    if kind == "missing":
        return f"{where} is required."
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        if where == "prompt":
            return "The prompt is empty: describe the image you want."
        return f"{where} must not be empty."
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_HINTS:
        label = {"api_key": "The API key", "username": "The username"}.get(where, where)
        return f"{label} {PATTERN_HINTS[ctx['pattern']]}."
    if kind == "extra_forbidden":
        return f"{where} is not a field of this request; remove it."
    if kind == "value_error" and ctx.get("error"):  # our validators: "is blank (...): ..."
        return f"The {where} {ctx['error']}."
    return f"Invalid {where}: {str(error.get('msg', 'invalid value')).rstrip('.')}."


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    raw = exc.errors()
    message = _explain(raw[0]) if raw else "Invalid request."
    return _answer(request, ApiError(422, "validation_error", message, errors=errors))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route that matched the path; a path served
        # by several routes (GET here, PUT there) allows all of theirs.
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; use {' or '.join(allowed)}."
    if exc.status_code == 404 and dialect_of(request.url.path) is not None:
        message = f"This service has no endpoint {request.url.path}."
    return _answer(request, ApiError(exc.status_code, code, message, headers=headers))


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def route_methods(routes: Iterable[BaseRoute]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Each route's path pattern and methods, for ``_allowed_methods``."""
    return [
        (route.path_regex, frozenset(route.methods))
        for route in routes
        if isinstance(route, Route | APIRoute) and route.methods
    ]


def _allowed_methods(request: Request) -> list[str]:
    table = getattr(request.app.state, "route_methods", ())
    methods = {m for regex, allowed in table if regex.match(request.url.path) for m in allowed}
    order = _METHOD_ORDER
    return sorted(methods, key=lambda m: order.index(m) if m in order else len(order))


async def _on_library(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NanobananaError)
    return _answer(request, from_library(exc))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _answer(request, ApiError(500, "internal_error", "Internal server error."))


_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    ApiError: _on_api_error,
    RequestValidationError: _on_validation,
    StarletteHTTPException: _on_http,
    NanobananaError: _on_library,
}

#: The errors the handlers above answer (any other is an unexpected error, a 500).
HANDLED = tuple(_HANDLERS)


def install_error_handlers(app: FastAPI) -> None:
    for kind, handler in _HANDLERS.items():
        app.add_exception_handler(kind, handler)
    app.add_exception_handler(Exception, on_unexpected)


async def answer_error(request: Request, exc: Exception) -> Response:
    """The answer the app's handlers give to ``exc`` (one of ``HANDLED``), for code that runs
    outside FastAPI's routing (``hotroutes``); any other exception is raised again."""
    for kind in type(exc).__mro__:
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return await handler(request, exc)
    raise exc
