"""Alembic migrations, shipped in the package and applied programmatically on start."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Arbitrary constant: PostgreSQL advisory lock held while migrating, so that several
#: processes starting together do not race on the schema.
_PG_LOCK_ID = 0x6E616E6F
#: The newest revision in ``migrations/versions`` (a test checks it against Alembic's head).
#: When the database already has it, the service starts without importing Alembic at all
#: (about 12 MB of resident memory for a process that would never use it again).
HEAD_REVISION = "0011"
#: Database objects that no model describes, left out of Alembic's comparisons: the
#: PostgreSQL-only trigram index of migration 0002.
UNMODELLED_INDEXES = frozenset({"ix_jobs_prompt_trgm"})
#: The task engine's own schema (``nanobanana worker``), which its own migrations keep.
TASK_ENGINE_PREFIX = "procrastinate_"


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic ``include_object`` hook: skip ``UNMODELLED_INDEXES`` and the task engine's
    tables and indexes."""
    if name is not None and name.startswith(TASK_ENGINE_PREFIX):
        return False
    return not (type_ == "index" and name in UNMODELLED_INDEXES)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: a new database)."""
    try:
        with connection.begin_nested():
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet
        return None


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
    if current_revision(connection) == HEAD_REVISION:
        return
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


async def upgrade_database(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


#: The variable that hands the database URL to the migrating child (never its argv, where
#: a password would show in the process list).
_CHILD_URL_VAR = "NANOBANANA_MIGRATE_DATABASE_URL"


def migrate_in_child(database_url: str) -> bool:
    """Run ``upgrade_database`` in a short-lived child process (``nanobanana serve`` does this
    before it starts serving): Alembic and its templates, about 12 MB, then never load in the
    long-running process, whose own upgrade finds the schema current.  True when the child
    succeeded or had nothing to do (no child is started when the schema is current);
    otherwise the caller's own upgrade runs and reports what is wrong."""
    import asyncio
    import os
    import subprocess
    import sys

    if asyncio.run(_revision(database_url)) == HEAD_REVISION:
        return True
    env = {**os.environ, _CHILD_URL_VAR: database_url}
    # Fixed argv: this interpreter and this module; the URL travels in the environment.
    argv = [sys.executable, "-m", __name__]
    done = subprocess.run(argv, env=env, capture_output=True, check=False)  # noqa: S603
    return done.returncode == 0


async def _revision(database_url: str) -> str | None:
    """The database's revision; None when it has none or cannot be read (the upgrade that
    follows says why)."""
    from .engine import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(current_revision)
    except Exception:  # noqa: BLE001 - reported by the upgrade that follows
        return None
    finally:
        await engine.dispose()


def _child_main() -> int:
    import asyncio
    import os

    from .engine import create_engine

    async def upgrade() -> None:
        engine = create_engine(os.environ[_CHILD_URL_VAR])
        try:
            await upgrade_database(engine)
        finally:
            await engine.dispose()

    asyncio.run(upgrade())
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main())
