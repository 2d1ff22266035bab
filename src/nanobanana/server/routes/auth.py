"""Accounts: register, log in, log out, who am I, and API tokens.

The first account registered becomes admin.  Login failures are limited per account and per
client address (429 with ``Retry-After``); an unknown user and a wrong password get the same
answer after the same work (a dummy hash check).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db.models import Token, User, is_object_id
from ..deps import SESSION_COOKIE, AuthDep, CurrentUser, ServicesDep, SessionDep
from ..problems import ApiError, not_found
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
from ..security import hash_token, new_token
from ..services import Services
from ..upstream import resolve_upstream
from .common import after_cursor, encode_cursor, errors

TokenKind = Literal["api", "session"]

router = APIRouter(prefix="/api/auth", tags=["auth"])

INVALID_CREDENTIALS = "Invalid username or password."


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/register", status_code=201, response_model=UserOut, responses=errors(403, 409, 422))
async def register(body: RegisterIn, services: ServicesDep, session: SessionDep) -> User:
    """Create an account. The first account becomes admin."""
    # Hash first: no database lock is held during the ~0.1 s of Argon2.
    password_hash = await services.passwords.hash(body.password)
    first = not await session.scalar(select(func.count()).select_from(User))
    if not first and not services.settings.allow_registration:
        raise ApiError(403, "registration_closed", "Registration is closed; ask an admin.")
    user = User(
        username=body.username,
        username_key=body.username.lower(),
        password_hash=password_hash,
        is_admin=first,
        is_active=True,
        created_at=services.now(),
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ApiError(409, "username_taken", "That username is taken.") from None
    return user


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
    account, address = body.username.lower(), client_address(request)
    guard = services.login_guard
    wait = guard.retry_after(account, address)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_attempts",
            f"Too many failed logins; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )
    user = await session.scalar(select(User).where(User.username_key == account))
    await session.commit()
    ok, new_hash = await services.passwords.verify(
        body.password, user.password_hash if user is not None else None
    )
    if user is None or not ok or not user.is_active:
        guard.failed(account, address)
        raise ApiError(401, "invalid_credentials", INVALID_CREDENTIALS)
    guard.succeeded(account)
    token = new_token()
    now = services.now()
    ttl = services.settings.token_ttl_seconds
    expires_at = now + timedelta(seconds=ttl)
    session.add(
        Token(
            user_id=user.id,
            token_hash=hash_token(token),
            kind="session",
            name="login",
            created_at=now,
            expires_at=expires_at,
        )
    )
    if new_hash is not None:  # Argon2 parameters rose since this hash was made
        user.password_hash = new_hash
        session.add(user)
    await session.flush()
    # At most max_sessions_per_user live sign-ins: a script that logs in on every run ends its
    # oldest sessions instead of piling up tokens.
    ended = (
        await session.scalars(
            select(Token.id)
            .where(Token.user_id == user.id, Token.kind == "session", *_live(now))
            .order_by(Token.created_at.desc(), Token.id.desc())
            .offset(services.settings.max_sessions_per_user)
        )
    ).all()
    if ended:
        await session.execute(update(Token).where(Token.id.in_(ended)).values(revoked_at=now))
    await session.commit()
    if ended:
        services.auth_cache.forget_user(user.id)
    response.set_cookie(SESSION_COOKIE, token, max_age=ttl, **_cookie(request, services))
    return TokenOut(access_token=token, expires_at=expires_at)


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
    now = services.now()
    live = await session.scalar(
        select(func.count())
        .select_from(Token)
        .where(Token.user_id == user.id, Token.kind == "api", *_live(now))
    )
    limit = services.settings.max_api_tokens_per_user
    if (live or 0) >= limit:
        await session.commit()
        raise ApiError(
            409,
            "too_many_tokens",
            f"You have {live} personal API tokens, the most one account may have ({limit}); "
            "revoke ones you no longer use (DELETE /api/tokens/{id}) and try again.",
        )
    value = new_token()
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row = Token(
        user_id=user.id,
        token_hash=hash_token(value),
        kind="api",
        name=body.name,
        created_at=now,
        expires_at=expires,
    )
    session.add(row)
    await session.commit()
    return ApiTokenCreated.model_validate(
        {**ApiTokenOut.model_validate(row).model_dump(), "token": value}
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
    stmt = select(Token).where(Token.user_id == auth.user.id, *_live(services.now()))
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


def _live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (Token.revoked_at.is_(None), or_(Token.expires_at.is_(None), Token.expires_at > now))


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
