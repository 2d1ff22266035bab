"""Headless account management (``nanobanana users create``)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from ..errors import UsageError
from .accounts import new_user
from .db.engine import create_engine, create_sessionmaker
from .db.migrate import upgrade_database
from .db.models import User, utcnow
from .schemas import RegisterIn
from .security import Passwords
from .settings import Settings


async def acreate_user(
    settings: Settings, username: str, password: str, admin: bool = False
) -> str:
    """Create an account in the configured database (migrating it first); returns its id."""
    try:
        RegisterIn(username=username, password=password)
    except ValueError as exc:
        raise UsageError(
            "Usernames are 3-64 letters, digits, '_', '.' or '-'; passwords at least 8 characters."
        ) from exc
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade_database(engine)
        password_hash = await Passwords(settings).hash(password)
        async with create_sessionmaker(engine)() as session, session.begin():
            taken = await session.scalar(
                select(User.id).where(User.username_key == username.lower())
            )
            if taken:
                raise UsageError(f"The username {username!r} is taken.")
            user = new_user(username, password_hash, is_admin=admin, now=utcnow())
            session.add(user)
            await session.flush()
            return user.id
    finally:
        await engine.dispose()


def create_user(settings: Settings, username: str, password: str, admin: bool = False) -> str:
    """Blocking form of ``acreate_user`` for the command line."""
    return asyncio.run(acreate_user(settings, username, password, admin))
