"""The emulator's ASGI app: OpenRouter + Gemini routes and the ``/_emulator`` control routes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import gemini, openrouter
from .config import EmulatorConfig
from .state import EmulatorState, state_of

__all__ = ["create_app"]


async def health(request: Request) -> Response:
    state = state_of(request)
    return JSONResponse(
        {
            "status": "ok",
            "fixed_payload": state.config.fixed_payload,
            "default_scenario": state.config.default_scenario,
        }
    )


async def recorded(request: Request) -> Response:
    entries = state_of(request).requests.snapshot()
    limit = request.query_params.get("limit")
    if limit and limit.isdigit():
        entries = entries[-int(limit) :] if int(limit) else []
    return JSONResponse({"requests": entries})


async def reset(request: Request) -> Response:
    state_of(request).reset()
    return JSONResponse({"status": "reset"})


def _control_routes() -> list[BaseRoute]:
    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/requests", recorded, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
    ]


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """A new, independent emulator app (its own caches, recorded requests and counters)."""
    state = EmulatorState(config or EmulatorConfig())
    app = Starlette(routes=[*openrouter.routes(), *gemini.routes(), *_control_routes()])
    app.state.emulator = state
    return app
