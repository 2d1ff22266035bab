"""Which process runs which job, so that processes sharing a database leave each other's jobs
alone.

Each process that runs jobs is a *worker*: a row in ``workers`` whose ``heartbeat_at`` it
refreshes every third of ``worker_lease_seconds``.  A job it creates records it as ``owner``.
A worker is gone when its heartbeat is older than the lease, or at once when it ran on this
host and its process no longer exists (a crash and a restart of the embedded service need not
wait for the lease).  Reconciliation, at start-up and with every heartbeat, ends the jobs of
gone workers (and the jobs from before owners existed) as ``interrupted``: a ``running`` job
may have been billed and is never sent again by itself; a ``queued`` one never reached the
provider.  Ending a job raises its ``attempt``, the fence that keeps a worker that lost it
from writing its end late (the images it had landed stay with the job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select, update

from . import budgets, webhooks
from .db.models import ACTIVE_STATUSES, Job, Worker, new_id, utcnow
from .services import Services

__all__ = ["INTERRUPTED_QUEUED", "INTERRUPTED_RUNNING", "Leases", "interrupt"]

log = logging.getLogger("nanobanana.server")

INTERRUPTED_RUNNING = (
    "The service stopped while this job was running. It was not re-run; the provider may "
    "have billed the calls still in flight. Every image that had arrived is kept."
)
INTERRUPTED_QUEUED = "The service stopped before this job started; nothing was sent to a provider."


def _alive_here(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (a pid taken by another process reads as
    alive: the lease then decides, later but safely)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def interrupt(
    services: Services, where: Sequence[ColumnElement[bool]], *, forget: Sequence[str] = ()
) -> int:
    """End the active jobs matching ``where`` as ``interrupted``, raising their attempt (the
    fence), and remove the workers ``forget``, in one transaction; how many jobs."""
    now = utcnow()
    total = 0
    async with services.sessionmaker() as session, session.begin():
        if forget:
            await session.execute(delete(Worker).where(Worker.id.in_(forget)))
        for status, message in (("running", INTERRUPTED_RUNNING), ("queued", INTERRUPTED_QUEUED)):
            # Their lines in the spend ledger first (the statuses still tell them apart): the
            # hold of one that was running stays (its call may have been billed).
            ending = select(Job.id).where(Job.status == status, *where)
            await session.execute(budgets.settle_where(ending, release=status == "queued"))
            await session.execute(webhooks.enqueue(ending, now, event="generation.interrupted"))
            res = await session.execute(
                update(Job)
                .where(Job.status == status, *where)
                .values(
                    status="interrupted",
                    error_code="interrupted",
                    error_message=message,
                    error_details={"was": status, "may_be_billed": status == "running"},
                    finished_at=now,
                    attempt=Job.attempt + 1,
                )
                .execution_options(synchronize_session=False)
            )
            total += int(getattr(res, "rowcount", 0) or 0)
    return total


class Leases:
    """This process as a worker: its row, its heartbeat, and the reconciliation of others."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.id = new_id()
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.lease = timedelta(seconds=services.settings.worker_lease_seconds)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Register, end what gone workers left, and keep the heartbeat going; how many jobs
        were ended."""
        now = utcnow()
        async with self.s.sessionmaker() as session, session.begin():
            session.add(
                Worker(id=self.id, host=self.host, pid=self.pid, started_at=now, heartbeat_at=now)
            )
        ended = await self.reconcile(unowned=True)
        self._task = asyncio.create_task(self._beat(), name="worker-heartbeat")
        return ended

    async def stop(self) -> None:
        """Stop the heartbeat and leave (after the job manager has ended this worker's jobs)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self.s.sessionmaker() as session, session.begin():
            await session.execute(delete(Worker).where(Worker.id == self.id))

    async def reconcile(self, *, unowned: bool = False) -> int:
        """End the active jobs of gone workers (with ``unowned``, at start-up, also those from
        before owners were recorded); forget the gone workers."""
        gone = await self._gone_workers()
        owners = []
        if gone:
            owners.append(Job.owner.in_(gone))
        if unowned:
            owners.append(Job.owner.is_(None))
        if not owners:
            return 0
        # The gone workers are forgotten in the same transaction as their jobs are ended.
        ended = await interrupt(
            self.s, [Job.status.in_(ACTIVE_STATUSES), or_(*owners)], forget=gone
        )
        if ended:
            log.warning(
                "%d job(s) were left unfinished by a stopped process; marked interrupted "
                "(not re-run).",
                ended,
            )
        return ended

    async def _gone_workers(self) -> list[str]:
        expired_before: datetime = utcnow() - self.lease
        async with self.s.sessionmaker() as session:
            rows = (await session.execute(select(Worker).where(Worker.id != self.id))).scalars()
            gone = [
                w.id
                for w in rows
                if w.heartbeat_at < expired_before
                or (w.host == self.host and not _alive_here(w.pid))
            ]
            await session.commit()
        return gone

    async def _beat(self) -> None:
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with self.s.sessionmaker() as session, session.begin():
                    res = await session.execute(
                        update(Worker).where(Worker.id == self.id).values(heartbeat_at=utcnow())
                    )
                    if not getattr(res, "rowcount", 0):  # forgotten after a long stall
                        session.add(Worker(id=self.id, host=self.host, pid=self.pid))
                await self.reconcile()
                if self.s.jobs is not None:
                    await self.s.jobs.stop_ended()
            except Exception:  # the heartbeat must outlive a bad round
                log.exception("The worker heartbeat failed; trying again.")
