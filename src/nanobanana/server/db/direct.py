"""Short write transactions run whole, in one step (``Transactions.run``).

The hot path of a generation writes the job row when it is accepted, each image's row the
moment the image arrives (``jobs._Landing``), and the job's end when it finishes.  Through the
ORM session on aiosqlite, each statement makes several hops to the driver's thread and back
(cursor, execute, fetch, close, commit), each a queue hand-over and a wake-up of the event
loop: about a third of the event loop's database time for these transactions.  Here a
transaction is a plain function of a SQLAlchemy ``Connection`` (Core statements only):

- on SQLite it runs, BEGIN to COMMIT, in one call on a dedicated thread with its own
  synchronous connection (the same pragmas and ``BEGIN IMMEDIATE`` as ``engine.create_engine``):
  one hop per transaction;
- on any other database it runs through the async engine's ``run_sync`` (asyncpg has no thread
  to hop to).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from .engine import SQLITE_CONNECT_ARGS, configure_sqlite

T = TypeVar("T")


class Transactions:
    def __init__(self, engine: AsyncEngine) -> None:
        """On SQLite, a database file gets the one-step path; an in-memory database would be
        another, private database for a second connection, so it keeps the async engine."""
        self._engine = engine
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        url = engine.url
        database = url.database or ""
        if engine.dialect.name == "sqlite" and database not in ("", ":memory:"):
            if database.startswith("file:"):
                return  # a URI filename (shared memory, read-only...): the async engine only
            self._sync = create_engine(
                url.set(drivername="sqlite"),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=0,
                connect_args=SQLITE_CONNECT_ARGS,
            )
            configure_sqlite(self._sync)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="nanobanana-db")

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)`` in one transaction, committed when it returns, rolled back when
        it raises (the exception propagates)."""
        if self._sync is None or self._thread is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, fn)

    def _call(self, fn: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return fn(conn)

    def close(self) -> None:
        if self._thread is not None and self._sync is not None:
            # Closed on the thread that opened it (sqlite3 connections are thread-bound).
            self._thread.submit(self._sync.dispose).result()
            self._thread.shutdown(wait=True)
