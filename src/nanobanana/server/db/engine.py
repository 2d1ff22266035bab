"""Engine and session factory.  SQLite gets WAL, a busy timeout, foreign keys and
``BEGIN IMMEDIATE`` transactions; PostgreSQL is used as it comes.

Why ``BEGIN IMMEDIATE``: in WAL mode a deferred transaction that read and then tries to write
after another connection committed fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT)
without waiting for the busy timeout.  Taking the write lock at ``BEGIN`` makes every
transaction wait its turn instead.  The price is that transactions must stay short: no code holds
a session open across an upstream call or a response body.
"""

from __future__ import annotations

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

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CONNECT_ARGS = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True)
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args=SQLITE_CONNECT_ARGS)
    configure_sqlite(engine.sync_engine)
    return engine


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
