"""Generation jobs handed to ``nanobanana worker`` processes through procrastinate, a task
queue that lives in the PostgreSQL database the service already uses.

Why procrastinate (the README's "Why these dependencies" says it for users): the engine's job
and the service's job row are written in one transaction (``Queue.insert``), so a crash between
the two can neither run a job nobody recorded nor leave a recorded job that nobody runs; workers
are woken by LISTEN/NOTIFY, with no second server to run, back up and secure; it is asyncio
native and maintained.

The engine's job says only "run job X".  Whether X is sent upstream is decided by the job row,
never by the engine: a worker claims the row with one UPDATE from ``queued`` to ``running``
(``JobManager.run_queued``), and a delivery that finds the row claimed, ended or deleted does
nothing.  So an engine job may be delivered again (``sweep`` hands the jobs of a worker that
stopped beating to another) and the provider still sees the request at most once.  Queued rows
carry the owner ``QUEUED`` until a worker claims them: start-up reconciliation (``leases``)
only ends the jobs of workers that are gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, cast, column, exists, insert, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .db.models import Job, utcnow
from .settings import Settings

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.job_context import JobContext

    from .services import Services

__all__ = ["QUEUE", "QUEUED", "TASK", "Queue", "ensure_schema", "sweep", "task_app"]

log = logging.getLogger("nanobanana.server")

#: The engine's queue and task for generation jobs.
QUEUE = "generations"
TASK = "nanobanana.run_job"
#: The owner of a job row waiting in the engine's queue (no worker has claimed it yet).
QUEUED = "queue"
#: Queued rows without a task re-queued per sweep at most (the next sweep takes the rest).
SWEEP_BATCH = 500
#: Serializes the creation of the engine's tables by processes starting together.
_SCHEMA_LOCK = 0x6E62_7072  # "nbpr"


def libpq_url(database_url: str) -> str:
    """The service's SQLAlchemy URL (``postgresql+asyncpg://...``) as a libpq connection URI."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def task_app(settings: Settings, *, pool_size: int = 4) -> procrastinate.App:
    """The procrastinate app of this service: its connection pool and the generation task."""
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(settings.resolved_database_url), min_size=1, max_size=pool_size
    )
    app = procrastinate.App(connector=connector)
    app.task(name=TASK, queue=QUEUE, pass_context=True)(_run_job)
    return app


async def _run_job(context: JobContext, job_id: str) -> None:
    services: Services = context.additional_context["services"]
    await services.job_manager.run_queued(job_id)


async def ensure_schema(app: procrastinate.App) -> None:
    """Create the engine's tables once (the first process to start does it; the others wait
    for it under an advisory lock and find them)."""
    pool: Any = app.connector.pool  # type: ignore[attr-defined]  # PsycopgConnector's
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        row = await cur.fetchone()
        if row is not None and row[0]:
            return
        await conn.execute(app.schema_manager.get_schema())
        log.info("Created the task queue's tables (procrastinate).")


class Queue:
    """The web side of external jobs: a new job's row and its engine job, in one transaction.

    The row goes through a psycopg connection (a second, small SQLAlchemy engine beside the
    service's asyncpg one) because procrastinate writes its job on a psycopg connection."""

    def __init__(self, settings: Settings) -> None:
        self.app = task_app(settings, pool_size=2)
        url = make_url(settings.resolved_database_url).set(drivername="postgresql+psycopg")
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=True)

    async def open(self) -> None:
        await self.app.open_async()
        await ensure_schema(self.app)

    async def close(self) -> None:
        await self.app.close_async()
        await self.engine.dispose()

    async def insert(
        self, row: dict[str, Any], before: Callable[[Connection], None] | None = None
    ) -> None:
        """Commit the job row (``owner`` = ``QUEUED``) and its engine job together, after
        ``before(connection)`` in the same transaction."""
        async with self.engine.begin() as conn:
            if before is not None:
                await conn.run_sync(before)
            await conn.execute(insert(Job), [row])
            raw = await conn.get_raw_connection()
            await defer(self.app, row["id"], connection=raw.driver_connection)


async def defer(app: procrastinate.App, job_id: str, *, connection: Any = None) -> None:
    """Queue "run job ``job_id``" (at most one waiting engine job per row)."""
    task = app.tasks[TASK].configure(queueing_lock=job_id, connection=connection)
    await task.defer_async(job_id=job_id)


async def sweep(services: Services, app: procrastinate.App) -> None:
    """Hand on what a worker that stopped beating left: its engine jobs go back to the queue
    (a delivery of a job it had already claimed finds the row running and does nothing; the
    row is ended by ``leases``), and a queued row without a waiting engine job (a delivery
    cancelled by a worker's shutdown) gets one again.  Every worker sweeps: when two hand on
    the same engine job, the second finds it no longer stalled and leaves it."""
    import procrastinate.exceptions
    import psycopg.errors

    lease = services.settings.worker_lease_seconds
    manager = app.job_manager
    for stalled in await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=lease):
        try:
            await manager.retry_job(stalled)
        except procrastinate.exceptions.ConnectorException as exc:
            # procrastinate_retry_job raises when the job is no longer ``doing``: another
            # worker's sweep handed it on (or it ended) since it was listed.
            if not isinstance(exc.__cause__, psycopg.errors.RaiseException):
                raise
            log.debug("Engine job %s was already handed on.", stalled.id)
            continue
        log.warning("Engine job %s of a stopped worker handed to another.", stalled.id)
    cutoff = utcnow() - timedelta(seconds=lease)
    engine_jobs = table("procrastinate_jobs", column("queueing_lock"), column("status"))
    has_task = exists().where(
        engine_jobs.c.queueing_lock == Job.id,
        cast(engine_jobs.c.status, String).in_(("todo", "doing")),
    )
    async with services.sessionmaker() as session:  # one query, bounded, whatever the backlog
        waiting = list(
            await session.scalars(
                select(Job.id)
                .where(
                    Job.status == "queued",
                    Job.owner == QUEUED,
                    Job.created_at < cutoff,
                    ~has_task,
                )
                .limit(SWEEP_BATCH)
            )
        )
        await session.commit()
    for job_id in waiting:
        try:
            await defer(app, job_id)
        except procrastinate.exceptions.AlreadyEnqueued:
            continue
        log.warning("Job %s was queued without an engine job; queued again.", job_id)
