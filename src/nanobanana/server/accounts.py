"""Accounts: sign-up, sign-in with the login guard, and personal API tokens.

The first account registered becomes admin.  Login failures are limited per account and per
client address; an unknown user and a wrong password get the same answer after the same work
(a dummy hash check).  No HTTP here: the routes render what these return or raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .db.models import Token, User
from .errors import (
    InvalidCredentials,
    RegistrationClosed,
    TooManyApiTokens,
    TooManyAttempts,
    UsernameTaken,
)
from .security import hash_token, new_token
from .services import Services

INVALID_CREDENTIALS = "Invalid username or password."


@dataclass(frozen=True)
class Issued:
    """A token as issued: its value is known only now."""

    token: str
    row: Token


def live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a token that is neither revoked nor expired."""
    return (Token.revoked_at.is_(None), or_(Token.expires_at.is_(None), Token.expires_at > now))


def new_user(username: str, password_hash: str, *, is_admin: bool, now: datetime) -> User:
    """An account's row: the name as typed, and its case-folded key for unique look-ups."""
    return User(
        username=username,
        username_key=username.lower(),
        password_hash=password_hash,
        is_admin=is_admin,
        is_active=True,
        created_at=now,
    )


async def register(session: AsyncSession, services: Services, username: str, password: str) -> User:
    """A new account (the first one is admin); committed."""
    # Hash first: no database lock is held during the ~0.1 s of Argon2.
    password_hash = await services.passwords.hash(password)
    first = not await session.scalar(select(func.count()).select_from(User))
    if not first and not services.settings.allow_registration:
        raise RegistrationClosed("Registration is closed; ask an admin.")
    user = new_user(username, password_hash, is_admin=first, now=services.now())
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise UsernameTaken("That username is taken.") from None
    return user


async def sign_in(
    session: AsyncSession, services: Services, username: str, password: str, address: str
) -> Issued:
    """A session token for the right password; committed.  At most ``max_sessions_per_user``
    live sign-ins: a script that logs in on every run ends its oldest sessions instead of
    piling up tokens."""
    account = username.lower()
    guard = services.login_guard
    wait = await guard.retry_after(account, address)
    if wait is not None:
        raise TooManyAttempts(f"Too many failed logins; try again in {wait} s.", retry_after=wait)
    user = await session.scalar(select(User).where(User.username_key == account))
    await session.commit()
    ok, new_hash = await services.passwords.verify(
        password, user.password_hash if user is not None else None
    )
    if user is None or not ok or not user.is_active:
        await guard.failed(account, address)
        raise InvalidCredentials(INVALID_CREDENTIALS)
    await guard.succeeded(account)
    token = new_token()
    now = services.now()
    row = Token(
        user_id=user.id,
        token_hash=hash_token(token),
        kind="session",
        name="login",
        created_at=now,
        expires_at=now + timedelta(seconds=services.settings.token_ttl_seconds),
    )
    session.add(row)
    if new_hash is not None:  # Argon2 parameters rose since this hash was made
        user.password_hash = new_hash
        session.add(user)
    await session.flush()
    ended = (
        await session.scalars(
            select(Token.id)
            .where(Token.user_id == user.id, Token.kind == "session", *live(now))
            .order_by(Token.created_at.desc(), Token.id.desc())
            .offset(services.settings.max_sessions_per_user)
        )
    ).all()
    if ended:
        await session.execute(update(Token).where(Token.id.in_(ended)).values(revoked_at=now))
    await session.commit()
    if ended:
        services.auth_cache.forget_user(user.id)
    return Issued(token, row)


async def create_api_token(
    session: AsyncSession,
    services: Services,
    user_id: str,
    name: str,
    expires_in_days: int | None,
) -> Issued:
    """A long-lived token for scripts; committed.  At most ``max_api_tokens_per_user`` live."""
    now = services.now()
    count = await session.scalar(
        select(func.count())
        .select_from(Token)
        .where(Token.user_id == user_id, Token.kind == "api", *live(now))
    )
    limit = services.settings.max_api_tokens_per_user
    if (count or 0) >= limit:
        await session.commit()
        raise TooManyApiTokens(
            f"You have {count} personal API tokens, the most one account may have ({limit}); "
            "revoke ones you no longer use (DELETE /api/tokens/{id}) and try again."
        )
    value = new_token()
    row = Token(
        user_id=user_id,
        token_hash=hash_token(value),
        kind="api",
        name=name,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(row)
    await session.commit()
    return Issued(value, row)
