"""Engine and session factory.  SQLite gets WAL, a busy timeout, foreign keys and
``BEGIN IMMEDIATE`` transactions; PostgreSQL is used as it comes.

Why ``BEGIN IMMEDIATE``: in WAL mode a deferred transaction that read and then tries to write
after another connection committed fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT)
without waiting for the busy timeout.  Taking the write lock at ``BEGIN`` makes every
transaction wait its turn instead.  The price is that transactions must stay short: no code holds
a session open across an upstream call or a response body.

The SQLite file holds password hashes, token hashes and encrypted keys: it is created readable
by its owner only (0600, as the master key and the images are), and SQLite gives its ``-wal``
and ``-shm`` files the same mode.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger("nanobanana.server")
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CONNECT_ARGS = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True)
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_file(Path(database).expanduser())
    engine = create_async_engine(url, connect_args=SQLITE_CONNECT_ARGS)
    configure_sqlite(engine.sync_engine)
    return engine


def private_file(path: Path) -> None:
    """Create ``path`` (and its folder) readable by its owner only; an existing file that
    others can read is made private, with a warning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & 0o077:
            log.warning(
                "The database file %s was readable by others (the database holds password "
                "and token hashes and encrypted keys); it is now readable by its owner only.",
                file,
            )
            file.chmod(stat.S_IMODE(mode) & 0o700)


def configure_sqlite(engine: Engine) -> None:
    """WAL, the busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` (see the module docstring)
    on every connection of ``engine`` (a synchronous engine, or an async one's ``sync_engine``)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (see the module docstring).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
