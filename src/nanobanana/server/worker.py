"""``nanobanana worker``: a process that runs generation jobs and serves no HTTP.

It shares the service's PostgreSQL database with the web processes (``NANOBANANA_JOBS=external``
there) and takes jobs from the task queue (``tasks``), as many at once as
``NANOBANANA_MAX_CONCURRENT_JOBS``.  It is a worker in the lease sense too (``leases``): its jobs
are ended as ``interrupted`` by the others when it dies after claiming them, and handed to
another worker when it dies before.  SIGTERM or SIGINT stops it: it takes no new job, lets
running ones finish for ``NANOBANANA_SHUTDOWN_GRACE_SECONDS`` and ends the rest as
``interrupted``.  No web framework is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from .runtime import start_services
from .security import StartupError
from .services import Services
from .settings import Settings

if TYPE_CHECKING:
    import procrastinate

__all__ = ["run_worker", "work"]

log = logging.getLogger("nanobanana.server")


async def work(settings: Settings, *, install_signal_handlers: bool = True) -> None:
    """Run jobs until stopped (a signal, or the task's cancellation)."""
    _require_postgresql(settings)
    from .tasks import QUEUE, ensure_schema, task_app

    async with AsyncExitStack() as stack:
        services = await start_services(stack, settings, accepts_jobs=False)
        app = task_app(settings, pool_size=8)
        await app.open_async()
        stack.push_async_callback(app.close_async)
        await ensure_schema(app)
        sweeper = asyncio.create_task(_sweep_forever(services, app), name="task-sweep")
        lease = settings.worker_lease_seconds
        log.info(
            "nanobanana worker %s ready: up to %d jobs at once.",
            services.worker_id,
            settings.max_concurrent_jobs,
        )
        try:
            await app.run_worker_async(
                queues=[QUEUE],
                name=f"nanobanana-{services.worker_id}",
                concurrency=settings.max_concurrent_jobs,
                additional_context={"services": services},
                install_signal_handlers=install_signal_handlers,
                shutdown_graceful_timeout=settings.shutdown_grace_seconds,
                update_heartbeat_interval=lease / 3,
                stalled_worker_timeout=lease,
                # The job rows are the record; the engine's finished jobs are not kept.
                delete_jobs="always",
            )
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper


def _require_postgresql(settings: Settings) -> None:
    if not settings.uses_postgresql:
        raise StartupError(
            "nanobanana worker takes its jobs from a PostgreSQL database shared with the web "
            "processes: set NANOBANANA_DATABASE_URL=postgresql+asyncpg://user@host/db (and "
            "NANOBANANA_JOBS=external for the web processes)."
        )


async def _sweep_forever(services: Services, app: procrastinate.App) -> None:
    from .tasks import sweep

    every = services.settings.worker_lease_seconds / 3
    while True:
        await asyncio.sleep(every)
        try:
            await sweep(services, app)
        except Exception:  # the sweep must outlive a bad round
            log.exception("The task queue sweep failed; trying again.")


def run_worker(settings: Settings) -> None:
    """``nanobanana worker``: migrate, then run jobs until SIGTERM or SIGINT (blocking)."""
    _require_postgresql(settings)
    from .memory import prepare_process
    from .security import KeyVault, load_master_keys

    prepare_process()
    KeyVault(load_master_keys(settings, create=False))  # stops here, with one line
    from .db.migrate import migrate_in_child

    migrate_in_child(settings.resolved_database_url)
    asyncio.run(work(settings))
