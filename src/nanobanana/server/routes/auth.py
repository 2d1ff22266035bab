"""Accounts: register, log in, log out, who am I, and API tokens.

What each does is ``server/accounts.py``'s (the first account is admin, the login guard
answers 429 with ``Retry-After``, one answer for an unknown user and a wrong password); these
routes read the request and render the answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from .. import accounts
from ..db.models import Token, User, is_object_id
from ..deps import SESSION_COOKIE, AuthDep, CurrentUser, ServicesDep, SessionDep
from ..problems import not_found
from ..schemas import (
    ApiTokenCreated,
    ApiTokenIn,
    ApiTokenList,
    ApiTokenOut,
    LoginIn,
    MeOut,
    RegisterIn,
    TokenOut,
    UserOut,
)
from ..services import Services
from ..upstream import resolve_upstream
from .common import after_cursor, encode_cursor, errors

TokenKind = Literal["api", "session"]

router = APIRouter(prefix="/api/auth", tags=["auth"])


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/register", status_code=201, response_model=UserOut, responses=errors(403, 409, 422))
async def register(body: RegisterIn, services: ServicesDep, session: SessionDep) -> User:
    """Create an account. The first account becomes admin."""
    return await accounts.register(session, services, body.username, body.password)


@router.post("/login", response_model=TokenOut, responses=errors(401, 422, 429))
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    services: ServicesDep,
    session: SessionDep,
) -> TokenOut:
    """Exchange a username and password for a bearer token (also set as an HttpOnly cookie,
    accepted for GET requests only)."""
    issued = await accounts.sign_in(
        session, services, body.username, body.password, client_address(request)
    )
    ttl = services.settings.token_ttl_seconds
    response.set_cookie(SESSION_COOKIE, issued.token, max_age=ttl, **_cookie(request, services))
    return TokenOut(access_token=issued.token, expires_at=issued.row.expires_at)


def _cookie(request: Request, services: Services) -> dict[str, Any]:
    """The session cookie's attributes, the same when it is set and when it is cleared:
    script-proof, never sent cross-site, and ``Secure`` when the service is reached over
    HTTPS (the connection, a trusted proxy's X-Forwarded-Proto, or an https public URL)."""
    public = services.settings.public_url or ""
    secure = request.url.scheme == "https" or public.startswith("https://")
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}


@router.post("/logout", status_code=204, responses=errors(401))
async def logout(
    request: Request, auth: AuthDep, services: ServicesDep, session: SessionDep
) -> Response:
    """Revoke the token used for this request."""
    token = await session.get(Token, auth.token.id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = services.now()
    await session.commit()
    services.auth_cache.forget_user(auth.user.id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, **_cookie(request, services))
    return response


@router.get("/me", response_model=MeOut, responses=errors(401))
async def me(user: CurrentUser, services: ServicesDep, session: SessionDep) -> MeOut:
    upstream = await resolve_upstream(session, services, user.id)
    await session.commit()
    return MeOut.model_validate(
        {**UserOut.model_validate(user).model_dump(), "demo": upstream.synthetic}
    )


# ------------------------------------------------------------------------- API tokens
@router.post("/tokens", status_code=201, response_model=ApiTokenCreated, responses=errors(401, 422))
async def create_token(
    body: ApiTokenIn, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> ApiTokenCreated:
    """A long-lived token for scripts; its value is shown only in this answer."""
    issued = await accounts.create_api_token(
        session, services, user.id, body.name, body.expires_in_days
    )
    return ApiTokenCreated.model_validate(
        {**ApiTokenOut.model_validate(issued.row).model_dump(), "token": issued.token}
    )


@router.get("/tokens", response_model=ApiTokenList, responses=errors(401, 422))
async def list_tokens(
    auth: AuthDep,
    services: ServicesDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[TokenKind | None, Query(description="`api`, `session`; unset: both")] = None,
) -> ApiTokenList:
    """Your tokens that are neither revoked nor expired (values are never shown again), newest
    first, `limit` per page."""
    stmt = select(Token).where(Token.user_id == auth.user.id, *accounts.live(services.now()))
    if kind is not None:
        stmt = stmt.where(Token.kind == kind)
    if cursor:
        stmt = stmt.where(after_cursor(Token.created_at, Token.id, cursor))
    stmt = stmt.order_by(Token.created_at.desc(), Token.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    await session.commit()
    more, rows = len(rows) > limit, rows[:limit]
    out = []
    for row in rows:
        item = ApiTokenOut.model_validate(row)
        item.current = row.id == auth.token.id
        out.append(item)
    last = rows[-1] if more and rows else None
    return ApiTokenList(
        tokens=out, next_cursor=encode_cursor(last.created_at, last.id) if last else None
    )


@router.delete("/tokens/{token_id}", status_code=204, responses=errors(401, 404))
async def revoke_token(
    token_id: str, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    if not is_object_id(token_id):
        raise not_found("token")
    row = await session.scalar(
        select(Token).where(
            Token.id == token_id, Token.user_id == user.id, Token.revoked_at.is_(None)
        )
    )
    if row is None:
        raise not_found("token")
    row.revoked_at = services.now()
    await session.commit()
    services.auth_cache.forget_user(user.id)
    return Response(status_code=204)
