"""Typed dependencies for routes: the services, a database session, the current user.

Authentication: ``Authorization: Bearer <token>``.  For GET and HEAD only, the session cookie
set at login is accepted too, so that ``<img src="/api/images/...">`` and ``EventSource`` work in
the browser; state-changing requests always need the header, so the cookie cannot be used for
cross-site request forgery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .db.models import Token, User
from .problems import ApiError
from .security import MAX_TOKEN_CHARS, hash_token
from .services import Services

SESSION_COOKIE = "nanobanana_session"
#: last_used_at is written at most this often per token (a write per request would serialise
#: every request on SQLite).
LAST_USED_RESOLUTION = timedelta(minutes=1)

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A token from POST /api/auth/login (or an API token from POST /api/auth/tokens).",
)


async def get_services(request: Request) -> Services:
    # ``async``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop on
    # every request for one attribute lookup.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass
class Auth:
    user: User
    token: Token


#: What a caller without a valid token does about it (appended to every 401's message).
SIGN_IN = (
    "Sign in at /login (the web page keeps its token in localStorage under 'token'), or create "
    "a personal API token on /settings, and send it as 'Authorization: Bearer <token>'."
)


def _unauthorized(problem: str = "Missing or invalid bearer token.") -> ApiError:
    return ApiError(
        401, "unauthorized", f"{problem} {SIGN_IN}", headers={"WWW-Authenticate": "Bearer"}
    )


async def get_auth(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Auth:
    """The caller's account, looked up in a session of its own (closed before the route runs):
    a route that waits for a generation holds no session through the authentication."""
    raw: str | None = credentials.credentials if credentials else None
    if raw is None and request.method in ("GET", "HEAD") and "authorization" not in request.headers:
        raw = request.cookies.get(SESSION_COOKIE)
    return await authenticate(services, raw)


async def authenticate(
    services: Services, raw: str | None, session: AsyncSession | None = None
) -> Auth:
    """The account and token of a bearer token (``raw``), from the cache while its
    ``last_used_at`` is fresh, else from the database, in ``session`` or a session of its own
    (401 or 403 when refused)."""
    if raw in ("null", "undefined"):
        # `Bearer ${localStorage.getItem('token')}` after signing out, or before signing in.
        raise _unauthorized(f"The bearer token is {raw!r}: this browser is not signed in.")
    if not raw or len(raw) > MAX_TOKEN_CHARS:
        raise _unauthorized()
    token_hash = hash_token(raw)
    now = services.now()
    cache = services.auth_cache
    cached = cache.get(token_hash)
    if cached is not None:
        user, token = cached
        if token.last_used_at is not None and now - token.last_used_at <= LAST_USED_RESOLUTION:
            _check(token, user, now)
            return Auth(user=user, token=token)
    epoch = cache.epoch
    if session is None:
        async with services.sessionmaker() as own:
            user, token = await _look_up(own, token_hash, now)
    else:
        user, token = await _look_up(session, token_hash, now)
    cache.put(token_hash, user, token, epoch)
    return Auth(user=user, token=token)


async def _look_up(session: AsyncSession, token_hash: str, now: datetime) -> tuple[User, Token]:
    row = (
        await session.execute(
            select(Token, User)
            .join(User, User.id == Token.user_id)
            .where(Token.token_hash == token_hash)
        )
    ).first()
    if row is None:
        raise _unauthorized()
    token, user = row.tuple()
    _check(token, user, now)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
    # End the transaction now: routes may wait a long time (a generation) and must not hold
    # a database lock meanwhile.
    await session.commit()
    return user, token


def _check(token: Token, user: User, now: datetime) -> None:
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise _unauthorized("The token has expired or was revoked.")
    if not user.is_active:
        raise ApiError(403, "account_disabled", "This account is disabled.")


AuthDep = Annotated[Auth, Depends(get_auth)]


async def get_current_user(auth: AuthDep) -> User:
    return auth.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def _query_names(dependant: Any) -> set[str]:
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """Unknown query parameters are an error (422), like unknown body fields: a misspelt
    ``?limt=5`` must not silently do something else."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    allowed = _query_names(dependant) if dependant is not None else set()
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(
            422,
            "validation_error",
            f"Unknown query parameter(s): {', '.join(repr(u[:40]) for u in unknown[:5])}.",
            allowed=sorted(allowed),
        )


async def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise ApiError(403, "forbidden", "This needs an admin account.")
    return user


AdminUser = Annotated[User, Depends(get_admin)]
