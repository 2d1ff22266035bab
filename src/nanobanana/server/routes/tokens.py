"""Personal API tokens for programs: ``POST /api/tokens`` ``{name}`` (the token is shown once),
``GET /api/tokens``, ``DELETE /api/tokens/{id}``.

A personal token is accepted as ``Authorization: Bearer`` on every API route, like a session
token, including the OpenRouter- and OpenAI-compatible ones (it is the "API key" those clients
send).  It is stored as a SHA-256 hash, never expires unless ``expires_in_days`` says so, and a
revoked token is refused (401) from the next request on.  The handlers are the account
routes' (``/api/auth/tokens``), served here under the short path the compatibility docs use.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..schemas import ApiTokenCreated, ApiTokenList
from . import auth
from .common import errors

router = APIRouter(prefix="/api/tokens", tags=["API tokens"])

router.add_api_route(
    "",
    auth.create_token,
    methods=["POST"],
    status_code=201,
    response_model=ApiTokenCreated,
    responses=errors(401, 422),
    summary="Create a personal API token",
    description="A long-lived token for programs and OpenAI/OpenRouter clients. Its value is "
    "in this answer only: store it now.",
)
router.add_api_route(
    "",
    auth.list_tokens,
    methods=["GET"],
    response_model=ApiTokenList,
    responses=errors(401),
    summary="List your tokens",
    description="Tokens that are neither revoked nor expired; values are never shown again.",
)
router.add_api_route(
    "/{token_id}",
    auth.revoke_token,
    methods=["DELETE"],
    status_code=204,
    responses=errors(401, 404),
    summary="Revoke a token",
    description="The token is refused (401) from the next request on.",
)
