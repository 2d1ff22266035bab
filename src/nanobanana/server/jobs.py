"""The in-process worker pool that runs generation jobs.

A job runs in a task owned by the pool, never by the HTTP request that created it, so a client
that goes away cannot cancel a paid call: the job finishes, its images are stored and it shows
up in the history.  Concurrency is bounded per user and overall (a user's slot is taken before
a global one, so one user's backlog never holds global slots while it waits).  Database
transactions are short and never span an upstream call.

Lifecycle: queued -> running -> succeeded | failed | blocked, or interrupted when the service
stops first.  Nothing is ever re-run automatically: a call that may have been billed is not
sent twice.

With ``NANOBANANA_JOBS=external`` a web process runs no job: it commits each new job as
``queued`` together with its task for the ``nanobanana worker`` processes (``tasks.Queue``),
and its synchronous routes wait for the row to end.  A worker runs what the task queue
delivers (``run_queued``), in the same pool and with the same landing as here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ..catalog import IMAGE_RATIOS, nearest_ratio, size_class
from ..conversation import answering_image
from ..errors import ContentError, NanobananaError, ReferenceImageError
from ..files import Pieces, file_data
from ..request import GenerationRequest
from ..types import (
    Attempt,
    AttemptEvent,
    Image,
    ImageEvent,
    Result,
    StreamEvent,
    TextDelta,
    file_extension,
    flat_dict,
)
from . import budgets, webhooks
from .clientpool import ClientPool
from .db.models import ACTIVE_STATUSES, Job, StoredImage, Upload, new_id
from .errors import ShuttingDown, TooManyJobs
from .events import CLOSED
from .leases import interrupt
from .listings import client_for
from .memory import release_free_memory
from .reports import error_details
from .services import Services
from .sessions import history_of
from .slots import Slots
from .tasks import Queue
from .upstream import Upstream, resolve_upstream
from .views import generation_out

log = logging.getLogger("nanobanana.server")

_IMAGE_COLUMNS = tuple(StoredImage.__table__.columns)
#: Seconds without a running job before free heap memory is returned to the system.
IDLE_TRIM_SECONDS = 2.0
#: How often a process that does not run a job reads whether it has ended (first, last).
POLL_SECONDS = (0.05, 0.5)
#: Why an image a spending cap left out of its job was not made (the job's warning says
#: which cap, and when it resets).
CUT_BY_CAP = "Not made: it would have passed a spending cap."
#: With shared events: how long a waiter goes without one before it reads the job's row (a
#: job ended by another process's reconciliation has no ``done`` event).
EVENTLESS_CHECK_SECONDS = 2.0


@dataclass
class _Files:
    index: int
    data: Pieces
    mime_type: str
    width: int
    height: int
    sha256: str


@dataclass
class Finished:
    """A job's end, handed in memory to the request waiting for it: the complete job record,
    its image rows and the stored bytes (the same bytes the store holds), so a synchronous
    answer needs no re-read of the database or the files."""

    job: Job
    images: list[StoredImage]
    data: list[Pieces]


class _Relay:
    """Turns the client's events into the job's SSE events."""

    def __init__(self, services: Services, job_id: str) -> None:
        self.bus = services.bus
        self.job_id = job_id
        self.first_provider: dict[int, str] = {}

    def __call__(self, ev: StreamEvent) -> None:
        if isinstance(ev, AttemptEvent):
            att = ev.attempt
            first = self.first_provider.setdefault(att.index, att.provider)
            if att.provider != first:
                self.first_provider[att.index] = att.provider
                self.bus.publish(
                    self.job_id,
                    "fallback",
                    {"index": att.index, "from": first, "to": att.provider},
                )
            self.bus.publish(self.job_id, "attempt", flat_dict(att))
        elif isinstance(ev, TextDelta):
            self.bus.publish(self.job_id, "text", {"text": ev.text, "index": ev.index})
        elif isinstance(ev, ImageEvent):
            img = ev.image
            self.bus.publish(
                self.job_id,
                "image",
                {
                    "index": img.index,
                    "mime_type": img.mime_type,
                    "width": img.width,
                    "height": img.height,
                },
            )


class _Landing:
    """Each image lands the moment it arrives: its file written and its row inserted, with the
    attempts made so far, before anything else happens to the job.  A crash after an upstream
    call returned its image (and was billed) then loses nothing: the restarted service shows
    the job interrupted, with that image and what it cost.

    A landing that fails (a full disk) is logged and tried again when the job ends.

    One exception: a job answered whole with one image (``at_end``) lands it when it ends,
    in the transaction that ends the job.  Nothing runs between the image's arrival and the
    job's end but in-memory bookkeeping, so nothing more is at risk, and a commit and a hand-over
    to the database thread fewer is the hot path's largest single saving."""

    def __init__(self, services: Services, job: Job, user_id: str, at_end: bool = False) -> None:
        self.s = services
        self.job = job
        self.user_id = user_id
        self.at_end = at_end
        self.relay = _Relay(services, job.id)
        self.attempts: list[dict[str, Any]] = []
        self.rows: dict[int, StoredImage] = {}
        self.data: dict[int, Pieces] = {}
        self.costs: list[tuple[float | None, bool]] = []
        #: Images that arrived and are not stored yet (their landing is under way, failed,
        #: or waits for the end).
        self.arrived: dict[int, Image] = {}
        #: Landings under way, each in its own task: stopping the call never cuts one short.
        self._landing: set[asyncio.Task[None]] = set()
        #: The job's row was deleted while it ran: nothing more is kept.
        self.gone = False

    async def __call__(self, ev: StreamEvent) -> None:
        self.relay(ev)
        if isinstance(ev, AttemptEvent):
            self.attempts.append(flat_dict(ev.attempt))
        elif isinstance(ev, ImageEvent) and ev.image.index not in self.rows and not self.gone:
            self.arrived[ev.image.index] = ev.image
            if not self.at_end:
                task = asyncio.ensure_future(self._land_arrived(ev.image))
                self._landing.add(task)
                task.add_done_callback(self._landing.discard)
                await asyncio.shield(task)

    async def _land_arrived(self, image: Image) -> None:
        try:
            await self.land(image)
        except Exception as exc:  # kept in memory; landed again when the job ends
            log.error(
                "Image %d of job %s could not be stored when it arrived; trying again "
                "when the job ends.",
                image.index,
                self.job.id,
                exc_info=exc,
            )

    async def settle(self) -> None:
        """After the call was stopped (a cancellation, a shutdown): let the landings under
        way finish, then land every image that arrived and is not stored yet.  Each was
        paid for."""
        if self._landing:
            await asyncio.gather(*self._landing, return_exceptions=True)
        for image in list(self.arrived.values()):
            if self.gone:
                return
            await self._land_arrived(image)
        if self.rows and not self.gone:
            # A job cancelled while it ran was settled in the ledger when it was cancelled:
            # the images (and cost) that arrived since count too.  Its hold stays.
            job_id = self.job.id
            try:
                await self.s.tx.run(lambda c: c.execute(budgets.settle(job_id, release=False)))
            except Exception as exc:  # the line keeps its hold, which counts against caps
                log.error("Job %s: its spend line could not be updated.", job_id, exc_info=exc)

    async def land(self, image: Image, end: dict[str, Any] | None = None) -> bool:
        """Write the image's file and insert its row; update the job with what is known now.

        With ``end`` (the job's final values), the same transaction ends the job, fenced by its
        attempt as ``JobManager._record`` is; returns whether it did.  If another process ended
        the job meanwhile, the image still lands as it would have on arrival."""
        f = await asyncio.to_thread(_prepare_file, image)
        row = await _stored_row(self.s, self.job.id, self.user_id, f)
        meta = image.metadata
        landed = Attempt(
            provider=meta.get("provider") or self.job.provider or "",
            model=meta.get("provider_model") or "",
            status="ok",
            index=image.index,
        )
        costs = [*self.costs, (meta.get("cost"), bool(meta.get("cost_is_estimate")))]
        values: dict[str, Any] = {"attempts": [*self.attempts, flat_dict(landed)]}
        if not self.rows:
            values.update(
                provider=landed.provider,
                model=meta.get("model") or self.job.model,
                provider_model=landed.model,
            )
        if all(c is not None for c, _ in costs):  # unknown while streaming; None if synthetic
            values["cost"] = sum(c for c, _ in costs if c is not None)
            values["cost_is_estimate"] = any(e for _, e in costs)
        image_row = {c.key: getattr(row, c.key) for c in _IMAGE_COLUMNS}
        job_id, attempt = self.job.id, self.job.attempt
        hooked = self.job.webhook_url is not None
        ended = False

        def record(conn: Connection) -> bool:
            nonlocal ended
            if end is not None:
                fenced = update(Job).where(Job.id == job_id, Job.attempt == attempt)
                ended = bool(conn.execute(fenced.values(**end)).rowcount)
            if not ended:
                res = conn.execute(update(Job).where(Job.id == job_id).values(**values))
                if not res.rowcount:
                    return False
            conn.execute(insert(StoredImage), [image_row])
            if ended and end is not None:  # after the image: the ledger counts it
                conn.execute(budgets.settle_end(job_id, end))
                if hooked:
                    conn.execute(webhooks.enqueue_one(job_id, end["finished_at"]))
            return True

        if await self.s.tx.run(record):
            if ended and hooked and self.s.webhooks is not None:
                self.s.webhooks.wake()
            self.rows[image.index] = row
            self.data[image.index] = f.data
            self.costs = costs
            self.arrived.pop(image.index, None)
        else:
            self.gone = True
        return ended


async def _stored_row(services: Services, job_id: str, user_id: str, f: _Files) -> StoredImage:
    """Write one image's file; its row, not yet inserted."""
    ext = file_extension(f.mime_type)
    key = await services.store.put(f.data, extension=ext, sha256=f.sha256)
    return StoredImage(
        id=new_id(),
        job_id=job_id,
        user_id=user_id,
        index=f.index,
        sha256=f.sha256,
        mime_type=f.mime_type,
        width=f.width,
        height=f.height,
        size=len(f.data),
        storage_key=key,
        thumb_key=None,
        created_at=services.now(),
        aspect_ratio=nearest_ratio(IMAGE_RATIOS, f.width, f.height),
        image_size=size_class(f.width, f.height),
        favourite=False,
    )


class JobManager:
    def __init__(self, services: Services, queue: Queue | None = None) -> None:
        """``queue``: this process leaves the jobs it accepts to the workers (external)."""
        self.s = services
        self.queue = queue
        settings = services.settings
        self._slots = Slots(settings.max_concurrent_jobs, settings.max_concurrent_jobs_per_user)
        self._active: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Per running job, its end for the requests waiting on it (a future rather than an
        #: ``asyncio.Event``: an Event's deque is 600 bytes, held by each waiting request).
        self._waiters: dict[str, asyncio.Future[Finished | None]] = {}
        #: The upstream call of each job running here (``stop`` cancels it).
        self._calls: dict[str, asyncio.Future[Result]] = {}
        #: Jobs ended elsewhere (cancelled) whose call is to stop.
        self._stopped: set[str] = set()
        self._closing = False
        self._idle_trim: asyncio.TimerHandle | None = None
        #: The library clients the jobs run with, shared by the jobs with the same keys.
        self._clients = ClientPool(functools.partial(client_for, services))

    # ----------------------------------------------------------------------- public
    def active_jobs(self, user_id: str) -> int:
        return self._active.get(user_id, 0)

    async def check_capacity(self, user_id: str) -> None:
        if self._closing:
            raise ShuttingDown("The service is shutting down; try again soon.")
        active = self.active_jobs(user_id) if self.queue is None else await self._counted(user_id)
        if active >= self.s.settings.max_queued_jobs_per_user:
            raise TooManyJobs(
                f"You have {active} generations queued or running; wait for some to finish.",
                retry_after=5,
            )

    async def _counted(self, user_id: str) -> int:
        """The user's active jobs in every process (external jobs run elsewhere)."""
        async with self.s.sessionmaker() as session:
            n = await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES))
            )
            await session.commit()
        return int(n or 0)

    def reserve(self, user_id: str) -> bool:
        """Take a running slot now if one is free (the job is then created as ``running``);
        the caller hands it to ``submit(started=True)`` or gives it back with ``release``.
        Never with external jobs (a worker takes them from the queue), nor when a user's
        running jobs are counted across processes (the place is taken when the job runs)."""
        if self.queue is not None or self.s.user_slots is not None or self._closing:
            return False
        return self._slots.try_take(user_id)

    async def insert(
        self, row: dict[str, Any], before: Callable[[Connection], None] | None = None
    ) -> None:
        """Commit a new job's row; with external jobs, together with its task for a worker.
        ``before(connection)`` runs first in the same transaction (``budgets.reserve``: it
        may refuse the job)."""
        if self.queue is not None:
            await self.queue.insert(row, before)
            return

        def write(conn: Connection) -> None:
            if before is not None:
                before(conn)
            conn.execute(insert(Job), [row])

        await self.s.tx.run(write)

    def release(self, user_id: str) -> None:
        self._slots.give(user_id)

    def submit(
        self, job: Job, user_id: str, *, upstream: Upstream | None = None, started: bool = False
    ) -> None:
        """Run a job that was just committed (detached from any session: the pool owns it).
        ``started``: it was committed as ``running`` with a slot from ``reserve``;
        ``upstream``: the keys already resolved for it (else resolved when it starts)."""
        self._enter(job, user_id)
        self.s.bus.publish(job.id, job.status, {"id": job.id, "status": job.status})
        task = asyncio.create_task(
            self._run(job, user_id, upstream, started), name=f"nanobanana-job-{job.id}"
        )
        self._tasks[job.id] = task

    def _enter(self, job: Job, user_id: str) -> None:
        self.s.bus.open(job.id)
        self._waiters[job.id] = asyncio.get_running_loop().create_future()
        self._active[user_id] = self._active.get(user_id, 0) + 1

    async def run_queued(self, job_id: str) -> None:
        """Run a job the task queue delivered, in the queue's task, unless its row is no longer
        ``queued`` (claimed by another worker, ended or deleted: then nothing is sent).  A
        cancellation (the worker stopping past its grace) ends a job it had claimed as
        ``interrupted``; one still waiting for a slot stays queued for another worker."""
        if job_id in self._tasks:  # delivered again while this worker already holds it
            return
        async with self.s.sessionmaker() as session:
            job = await session.get(Job, job_id)
            await session.commit()
        if job is None or job.status != "queued" or self._closing or job_id in self._tasks:
            return
        user_id = job.user_id
        self._enter(job, user_id)
        self._tasks[job_id] = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._run(job, user_id, None, False)
        except asyncio.CancelledError:
            mine = [Job.id == job_id, Job.owner == self.s.worker_id]
            await asyncio.shield(interrupt(self.s, mine))
            raise

    async def wait(self, job_id: str) -> Finished | None:
        """Until the job has ended.  Its end as it was recorded when it ran here (None when it
        did not run here, or was deleted meanwhile: read the database then)."""
        waiter = self._waiters.get(job_id)
        if waiter is None:
            if self.queue is not None:
                await self._until_ended(job_id)
            return None
        # Shielded: a waiting request that goes away must not cancel the others' wait.
        return await asyncio.shield(waiter)

    async def _until_ended(self, job_id: str) -> None:
        """Until the job's row is ended or gone: woken by its ``done`` event when events are
        shared, else reading the row more slowly as the wait grows."""
        bus = self.s.bus
        if bus.shared:
            async with bus.subscribe(job_id) as sub:
                assert sub is not None  # a shared bus follows every job
                history, queue = sub
                if any(ev["event"] == "done" for ev in history):
                    return
                if not await is_active(self.s, job_id):
                    return
                while True:
                    try:
                        ev = await asyncio.wait_for(queue.get(), EVENTLESS_CHECK_SECONDS)
                    except TimeoutError:
                        if not await is_active(self.s, job_id):
                            return
                        continue
                    if ev is CLOSED or ev["event"] == "done":
                        return
        delay, longest = POLL_SECONDS
        while await is_active(self.s, job_id):
            await asyncio.sleep(delay)
            delay = min(longest, delay * 1.5)

    def is_running_here(self, job_id: str) -> bool:
        return job_id in self._tasks

    def stop(self, job_id: str) -> bool:
        """Stop the upstream call of a job running here whose row was already ended by
        ``cancel`` (in this or another process): no retry or fallback is sent after it, the
        images that had arrived are kept, and the end is the one ``cancel`` recorded.
        Whether the job was running here."""
        if job_id not in self._tasks:
            return False
        self._stopped.add(job_id)
        call = self._calls.get(job_id)
        if call is not None:
            call.cancel()
        return True

    async def stop_ended(self) -> None:
        """Stop the calls of the jobs running here whose rows another process has ended (a
        cancellation told by no shared event bus): read with every heartbeat."""
        running = list(self._calls)
        if not running:
            return
        async with self.s.sessionmaker() as session:
            ended = await session.scalars(
                select(Job.id).where(Job.id.in_(running), Job.status != "running")
            )
            await session.commit()
        for job_id in ended:
            if job_id in self._calls:
                log.info("Job %s was ended by another process; its call is stopped.", job_id)
                self.stop(job_id)

    async def shutdown(self, grace: float) -> None:
        """Let running jobs finish for ``grace`` seconds; mark the rest interrupted."""
        self._closing = True
        if self._idle_trim is not None:
            self._idle_trim.cancel()
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            log.info("Waiting up to %.0f s for %d running job(s).", grace, len(pending))
            await asyncio.wait(pending, timeout=grace)
        leftover = {jid: t for jid, t in self._tasks.items() if not t.done()}
        for task in leftover.values():
            task.cancel()
        await asyncio.gather(*leftover.values(), return_exceptions=True)
        if leftover:
            await mark_interrupted(self.s, list(leftover))
            log.warning("Marked %d unfinished job(s) as interrupted.", len(leftover))
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        await self._clients.aclose()

    # ----------------------------------------------------------------------- memory
    def _trim_when_idle(self) -> None:
        """Once no job has run for ``IDLE_TRIM_SECONDS`` (the last answers sent), give the
        heap's free pages back to the system: without it a burst of landings leaves RSS
        ~180 MB up for good (see ``memory``).  Nothing happens while jobs keep coming."""
        if self._idle_trim is not None:
            self._idle_trim.cancel()
        self._idle_trim = asyncio.get_running_loop().call_later(
            IDLE_TRIM_SECONDS, self._trim_if_idle
        )

    def _trim_if_idle(self) -> None:
        self._idle_trim = None
        if not self._tasks and not self._closing:
            asyncio.get_running_loop().run_in_executor(None, release_free_memory)

    # ----------------------------------------------------------------------- running
    async def _run(self, job: Job, user_id: str, upstream: Upstream | None, holding: bool) -> None:
        job_id = job.id
        finished: Finished | None = None
        shared = self.s.user_slots
        placed = False
        try:
            if not holding:
                await self._slots.take(user_id)
                holding = True
            if shared is not None:  # the user's place among all processes' running jobs
                await shared.acquire(user_id, job_id)
                placed = True
            finished = await self._execute(job, user_id, upstream)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the last resort: a job must always end, and say why
            log.error("Job %s failed with an unexpected error.", job_id, exc_info=exc)
            finished = await self._finish_failed(
                job, "internal_error", "Internal error while running the job.", {}, []
            )
        finally:
            if holding:
                self._slots.give(user_id)
            self._tasks.pop(job_id, None)
            self._stopped.discard(job_id)
            left = self._active.get(user_id, 1) - 1
            if left <= 0:
                self._active.pop(user_id, None)
            else:
                self._active[user_id] = left
            waiter = self._waiters.pop(job_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(finished)
            if not self._tasks:
                self._trim_when_idle()
            self.s.bus.close(job_id)
            if placed and shared is not None:  # last: the bookkeeping above is done already
                await asyncio.shield(shared.release(user_id, job_id))

    async def _start(self, job: Job, user_id: str) -> Upstream | None:
        """A queued job takes its turn: ``running`` in one UPDATE (None: deleted meanwhile)."""
        now = self.s.now()
        async with self.s.sessionmaker() as session, session.begin():
            res = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == "queued", Job.attempt == job.attempt)
                .values(status="running", started_at=now, owner=self.s.worker_id)
                .execution_options(synchronize_session=False)
            )
            if not getattr(res, "rowcount", 0):
                return None
            # Keys may have changed while it was queued.
            upstream = await resolve_upstream(session, self.s, user_id)
        job.status = "running"
        job.started_at = now
        self.s.bus.publish(job.id, "running", {"id": job.id, "status": "running"})
        return upstream

    async def _references(self, job: Job, user_id: str) -> list[bytes]:
        ids = list(job.request.get("images") or [])
        if not ids:  # no query for the usual prompt without references
            return []
        async with self.s.sessionmaker() as session:
            uploads = {
                u.id: u
                for u in await session.scalars(
                    select(Upload).where(Upload.id.in_(ids), Upload.user_id == user_id)
                )
            }
            await session.commit()
        refs: list[bytes] = []
        for upload_id in ids:
            upload = uploads.get(upload_id)
            if upload is None:
                raise ReferenceImageError("A reference image was deleted.", field="images")
            refs.append(await self.s.store.get(upload.storage_key))
        return refs

    async def _execute(self, job: Job, user_id: str, upstream: Upstream | None) -> Finished | None:
        try:
            if job.status == "queued":
                upstream = await self._start(job, user_id)
                if upstream is None:
                    return None
            elif upstream is None:
                async with self.s.sessionmaker() as session:
                    upstream = await resolve_upstream(session, self.s, user_id)
                    await session.commit()
            refs = await self._references(job, user_id)
            # A turn of an editing session, or a drop-in call with the conversation before it.
            earlier = job.session_id is not None or bool(job.request.get("history"))
            history = await history_of(self.s, job, user_id) if earlier else ()
        except NanobananaError as exc:
            return await self._finish_failed(job, exc.code, exc.message, error_details(exc), [])
        request = GenerationRequest.from_record(job.request, images=refs)
        cut = job.request.get(budgets.CUT)
        if cut is not None:  # the caps had room for fewer images than it asked for
            request = request.with_(n=cut["n"])
        if history:
            request = request.with_(history=history)
        one_whole = job.kind != "async" and request.n == 1
        landing = _Landing(self.s, job, user_id, at_end=one_whole)
        # Released in the ``finally`` below: nothing that can raise comes in between.
        client = self._clients.acquire(upstream)
        call = asyncio.ensure_future(
            client.run(
                request,
                on_event=landing,
                # Async jobs are watched over their event stream, so the model's text is relayed
                # as it arrives; the synchronous routes answer once, so they skip SSE parsing.
                stream=job.kind == "async",
            )
        )
        self._calls[job.id] = call
        if job.id in self._stopped:  # cancelled while it was starting
            call.cancel()
        try:
            result = await call
        except asyncio.CancelledError:
            # A shutdown (this task cancelled) or a cancellation (``stop``: only the call
            # was): either way every image that arrived is stored before anything else.
            await asyncio.shield(landing.settle())
            task = asyncio.current_task()
            if job.id not in self._stopped or (task is not None and task.cancelling()):
                raise
            log.info(
                "Job %s was cancelled while running; %d image(s) that had arrived are kept.",
                job.id,
                len(landing.rows),
            )
            return None
        except NanobananaError as exc:
            status = "blocked" if isinstance(exc, ContentError) else "failed"
            attempts = [flat_dict(a) for a in exc.attempts]
            return await self._finish_failed(
                job,
                exc.code,
                exc.message,
                error_details(exc),
                attempts,
                status=status,
                synthetic=upstream.synthetic,
            )
        finally:
            self._calls.pop(job.id, None)
            await self._clients.release(upstream)
        return await self._finish_ok(job, result, landing)

    async def _finish_ok(self, job: Job, result: Result, landing: _Landing) -> Finished | None:
        # Every image landed as it came, unless its landing failed or waits for the end.
        waiting = [i for i in result.images if i.index not in landing.rows]
        last = waiting.pop() if landing.at_end and len(waiting) == 1 else None
        for image in waiting:
            if not landing.gone:
                await landing.land(image)
        if landing.gone:
            return None  # deleted while running: keep nothing
        values: dict[str, Any] = {
            "status": "succeeded",
            "effective_prompt": result.effective_prompt,
            "provider": result.provider,
            "model": result.model,
            "provider_model": result.provider_model,
            "text": result.text or None,
            "attempts": [flat_dict(a) for a in result.attempts],
            "failures": [flat_dict(f) for f in result.failures],
            "warnings": list(result.warnings),
            "grounding": None if result.grounding is None else result.grounding.to_dict(),
            "usage": flat_dict(result.usage),
            "cost": result.usage.cost,  # None for synthetic images (the client clears it)
            "cost_is_estimate": result.usage.cost_is_estimate,
            "synthetic": result.synthetic,
            "finished_at": self.s.now(),
        }
        values["timings"] = _timings(job, values["finished_at"], result)
        cut = job.request.get(budgets.CUT)
        if cut is not None:
            values["warnings"].append(cut["message"])
            values["failures"] += [
                {"index": i, "error": CUT_BY_CAP, "error_code": "budget_exceeded"}
                for i in range(cut["n"], job.request["n"])
            ]
        first = answering_image(result)
        if first is not None and (job.session_id is not None or job.kind == "openrouter"):
            # A later turn continues from this answer; a drop-in chat answer hands it to its
            # client (``compat.openrouter_response``).
            values["continuation"] = first.continuation
        if last is not None:
            ended = await landing.land(last, end=values)
            if not ended and not landing.gone:
                log.warning(
                    "Job %s ended elsewhere meanwhile; its end here is not recorded.", job.id
                )
        else:
            ended = await self._record(job, values)
        if not ended:
            return None  # deleted while running (keep nothing), or ended by another process
        rows = [landing.rows[i] for i in sorted(landing.rows)]
        for name, value in values.items():
            setattr(job, name, value)
        out = generation_out(job, rows)
        log.info(
            "Job %s succeeded: %d image(s) from %s/%s, cost %s%s.",
            job.id,
            len(rows),
            result.provider,
            result.model,
            "unknown" if job.cost is None else f"${job.cost:.4f}",
            " (SYNTHETIC, demo emulator)" if result.synthetic else "",
        )
        self.s.bus.publish(job.id, "done", out)
        return Finished(job, rows, [landing.data[r.index] for r in rows])

    async def _record(self, job: Job, values: dict[str, Any]) -> bool:
        """The job's end in one UPDATE, run in one step (``db.direct``); False when the job
        was deleted meanwhile, or ended by another process that found this one gone (its
        attempt raised: the fence, see ``leases``).  Its images are already in (``_Landing``)."""
        job_id, attempt, hooked = job.id, job.attempt, job.webhook_url is not None

        def record(conn: Connection) -> bool:
            stmt = update(Job).where(Job.id == job_id, Job.attempt == attempt).values(**values)
            if not conn.execute(stmt).rowcount:
                return False
            conn.execute(budgets.settle_end(job_id, values))
            if hooked:  # its delivery, in the same transaction: sent at least once
                conn.execute(webhooks.enqueue_one(job_id, values["finished_at"]))
            return True

        if await self.s.tx.run(record):
            if hooked and self.s.webhooks is not None:
                self.s.webhooks.wake()
            return True
        log.warning("Job %s ended elsewhere meanwhile; its end here is not recorded.", job_id)
        return False

    async def _finish_failed(
        self,
        job: Job,
        code: str,
        message: str,
        details: dict[str, Any],
        attempts: list[dict[str, Any]],
        *,
        status: str = "failed",
        synthetic: bool = False,
    ) -> Finished | None:
        values: dict[str, Any] = {
            "status": status,
            "error_code": code,
            "error_message": message,
            "error_details": details,
            "attempts": attempts,
            "synthetic": synthetic,
            "finished_at": self.s.now(),
        }
        values["timings"] = _timings(job, values["finished_at"], None)
        if not await self._record(job, values):
            return None
        for name, value in values.items():
            setattr(job, name, value)
        out = generation_out(job, [])
        log.warning("Job %s %s: %s.", job.id, status, code)
        self.s.bus.publish(job.id, "done", out)
        return Finished(job, [], [])


def _timings(job: Job, finished_at: datetime, result: Result | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if job.started_at is not None:
        out["queued_s"] = round((job.started_at - job.created_at).total_seconds(), 3)
        out["running_s"] = round((finished_at - job.started_at).total_seconds(), 3)
    if result is not None:
        out["elapsed_s"] = round(result.elapsed_s, 3)
        if result.first_image_s is not None:
            out["first_image_s"] = round(result.first_image_s, 3)
    return out


def _prepare_file(image: Image) -> _Files:
    """PNG provenance and the hash (CPU work, run in a thread).

    No thumbnail here: it is made on its first request (``GET /api/images/{id}?thumb=1``).
    Decoding every pixel cost more CPU than the rest of a generation together (~80% of the
    service's time per 1K image, ~50 MB of pixels per 4K one), for a preview only the web UI
    asks for.
    """
    data = file_data(image)
    return _Files(
        index=image.index,
        data=data,
        mime_type=image.mime_type,
        width=image.width,
        height=image.height,
        sha256=data.sha256(),
    )


async def is_active(services: Services, job_id: str) -> bool:
    """Whether the job is queued or running (in any process)."""
    async with services.sessionmaker() as session:
        status = await session.scalar(select(Job.status).where(Job.id == job_id))
        await session.commit()
    return status in ACTIVE_STATUSES


#: What a cancelled job says, by the status it was cancelled in.
CANCELLED = {
    "queued": "Cancelled before it was sent to a provider; nothing was billed.",
    "running": "Cancelled while it ran: the call already sent was stopped and nothing more was "
    "sent. The provider may bill what was sent; every image that had arrived is kept.",
}


async def cancel(services: Services, job_id: str) -> bool:
    """Cancel a queued or running job, wherever it runs; False when it had already ended.

    The job ends ``failed`` with the code ``cancelled`` in one UPDATE that raises its attempt
    (the fence that keeps whichever process holds it from sending or recording anything more).
    A queued one is never sent (``may_be_billed: false``): the process that was to run it
    finds the row no longer queued.  A running one (``may_be_billed: true``) has its call
    stopped by its owner: at once when it is this process or the processes share events
    (Redis), else at the owner's next heartbeat (``JobManager.stop_ended``).  No retry or
    fallback is sent after it, and every image that had arrived is kept."""
    if await _cancel_if(services, job_id, "queued"):
        return True
    if not await _cancel_if(services, job_id, "running"):
        return False
    if services.jobs is None or not services.jobs.stop(job_id):
        services.bus.tell("stop", job_id)
    return True


async def cancel_queued(services: Services, job_id: str) -> bool:
    """Cancel the job only if it is still queued, so never sent (a caller gone before it ran);
    one already running goes on and keeps what it is paid for.  Whether it was cancelled."""
    return await _cancel_if(services, job_id, "queued")


async def _cancel_if(services: Services, job_id: str, was: str) -> bool:
    """End the job as cancelled if its status is still ``was``; whether it was.  Its hold on
    the spending caps is released if it never ran (``budgets``)."""
    async with services.sessionmaker() as session, session.begin():
        res = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == was)
            .values(
                status="failed",
                error_code="cancelled",
                error_message=CANCELLED[was],
                error_details={"was": was, "may_be_billed": was == "running"},
                finished_at=services.now(),
                attempt=Job.attempt + 1,
            )
            .execution_options(synchronize_session=False)
        )
        cancelled = bool(getattr(res, "rowcount", 0))
        if cancelled:
            await session.execute(budgets.settle(job_id, release=was == "queued"))
            await session.execute(webhooks.enqueue_one(job_id, services.now()))
    if cancelled and services.webhooks is not None:
        services.webhooks.wake()
    return cancelled


async def mark_interrupted(services: Services, job_ids: list[str]) -> int:
    """The jobs ``job_ids`` left queued or running become ``interrupted`` (never re-run)."""
    return await interrupt(services, [Job.id.in_(job_ids)])
