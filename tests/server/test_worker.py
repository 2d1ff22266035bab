"""Jobs outside the web process: web processes with ``NANOBANANA_JOBS=external`` queue what
they accept, ``nanobanana worker`` processes run it (``server.tasks``, ``server.worker``), on a
real PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import update

from nanobanana.emulator import EmulatorServer
from nanobanana.server.db.models import Job
from nanobanana.server.settings import Settings
from nanobanana.server.tasks import QUEUE, QUEUED, defer, sweep
from nanobanana.server.worker import work

from .conftest import OPENROUTER_CANARY, Api, running, upstream_requests
from .test_leases import job_of, wait_status

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

#: The master key the web and worker processes share (NANOBANANA_MASTER_KEYS).
MASTER_KEY = Fernet.generate_key().decode()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    from .conftest import _truncate

    asyncio.run(_truncate(pg_database))
    return pg_database


@pytest.fixture
def external(pg_url: str, settings_for: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings of processes that share the PostgreSQL database and its master key, the web
    processes leaving jobs to workers; keyword overrides."""

    def build(**over: Any) -> Settings:
        return settings_for(pg_url, jobs="external", master_keys=MASTER_KEY, **over)

    return build


async def queue_job(web: Api, headers: dict[str, str], prompt: str) -> str:
    """POST /api/generations; the queued job's id."""
    r = await web.client.post("/api/generations", json={"prompt": prompt}, headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def drop_task(web: Api, job_id: str) -> None:
    """Remove the job's task from the queue, as a delivery lost to a shutdown would."""
    queue: Any = web.services.job_manager.queue
    await queue.app.connector.execute_query_async(
        "DELETE FROM procrastinate_jobs WHERE queueing_lock = %(id)s", id=job_id
    )


async def until_no_task(settings: Settings, job_id: str) -> None:
    """Until every task of ``job_id`` was delivered and finished (the workers delete them)."""
    for _ in range(300):
        if await _engine_status(settings, job_id) is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"a task of job {job_id} was never delivered")


@contextlib.asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """A ``nanobanana worker`` in this event loop (its own services, the same database)."""
    task = asyncio.create_task(work(settings, install_signal_handlers=False))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def user_with_key(api: Api) -> dict[str, str]:
    h = await api.user(f"u{uuid.uuid4().hex[:8]}")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    return h


async def workers_seen(api: Api) -> set[str]:
    from sqlalchemy import select

    from nanobanana.server.db.models import Worker

    async with api.services.sessionmaker() as s:
        return set(await s.scalars(select(Worker.id)))


async def test_the_seed_endpoint_answers_with_what_a_worker_made(
    external: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """The design notes' POST /api/nano-banana/generate on a web process that runs no job:
    the job is queued with its task in one transaction, a worker runs it, the route answers
    with its images; the upstream saw the prompt once."""
    settings = external()
    marker = uuid.uuid4().hex
    async with running(settings) as web, worker(settings):
        h = await user_with_key(web)
        r = await web.client.post(
            "/api/nano-banana/generate", json={"prompt": f"a fox {marker}"}, headers=h
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["images"]) == 1 and body["prompt"] == f"a fox {marker}"
        job = await job_of(web, body["id"])
        assert job.status == "succeeded"
        assert job.owner not in (None, QUEUED, web.services.worker_id)
        assert job.owner in await workers_seen(web)
    assert len(upstream_requests(emulator, marker)) == 1


async def test_queued_jobs_wait_for_a_worker_and_run_when_one_starts(
    external: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """The asynchronous API answers 202 at once; with no worker running the job stays queued
    (no web process runs it, and a web process starting does not end it); the first worker
    to start runs it."""
    settings = external()
    marker = uuid.uuid4().hex
    async with running(settings) as web:
        h = await user_with_key(web)
        job_id = await queue_job(web, h, f"an owl {marker}")
        async with running(settings):  # a second web process starting: reconciliation
            await asyncio.sleep(0.3)
        job = await job_of(web, job_id)
        assert (job.status, job.owner) == ("queued", QUEUED)
        assert upstream_requests(emulator, marker) == []
        async with worker(settings):
            done = await wait_status(web, job_id, "succeeded", "failed", "interrupted")
        assert done.status == "succeeded", done.error_message
        r = await web.client.get(f"/api/generations/{job_id}", headers=h)
        assert r.status_code == 200 and len(r.json()["images"]) == 1
        image = await web.client.get(r.json()["images"][0]["url"], headers=h)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert len(upstream_requests(emulator, marker)) == 1


async def test_a_job_delivered_twice_is_sent_upstream_once(
    external: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """The task queue may deliver a job again (a stalled worker's jobs are handed on): the row
    decides, so the second delivery finds it claimed or ended and sends nothing."""
    settings = external()
    marker = uuid.uuid4().hex
    async with running(settings) as web:
        h = await user_with_key(web)
        job_id = await queue_job(web, h, f"slow {marker} [emulator:latency:1]")
        queue: Any = web.services.job_manager.queue
        async with worker(settings), worker(settings):
            await wait_status(web, job_id, "running")
            # Another delivery while it runs, without the queueing lock of a waiting one.
            await queue.app.tasks["nanobanana.run_job"].defer_async(job_id=job_id)
            done = await wait_status(web, job_id, "succeeded", "failed", "interrupted")
            await defer(queue.app, job_id)  # and one after it ended
            await until_no_task(settings, job_id)  # both redeliveries were run, and sent nothing
        assert done.status == "succeeded", done.error_message
    assert len(upstream_requests(emulator, marker)) == 1


async def test_a_queued_row_without_its_task_is_queued_again(
    external: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """A queued row whose task is gone (a delivery cancelled by a worker's shutdown) is found
    by the workers' sweep after the lease and queued again, then run once."""
    settings = external(worker_lease_seconds=1)
    marker = uuid.uuid4().hex
    async with running(settings) as web:
        h = await user_with_key(web)
        job_id = await queue_job(web, h, f"a hare {marker}")
        await drop_task(web, job_id)
        async with worker(settings):
            done = await wait_status(web, job_id, "succeeded", "failed", "interrupted")
        assert done.status == "succeeded", done.error_message
    assert len(upstream_requests(emulator, marker)) == 1


async def test_two_sweeps_handing_on_one_stalled_task_both_finish(
    external: Callable[..., Settings], emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker sweeps: two may list the same stalled task, and the second to hand it on
    finds it no longer stalled. That sweep carries on (it used to fail, logging a traceback,
    and skip the rest of its round); the task is handed on once and runs once."""
    settings = external(worker_lease_seconds=1)
    marker = uuid.uuid4().hex
    async with running(settings) as web:
        h = await user_with_key(web)
        job_id = await queue_job(web, h, f"a vole {marker}")
        app: Any = web.services.job_manager.queue.app
        # The task was taken by a worker that stopped beating an hour ago.
        stopped = await app.connector.execute_query_one_async(
            "INSERT INTO procrastinate_workers (last_heartbeat) "
            "VALUES (now() - interval '1 hour') RETURNING id"
        )
        await app.connector.execute_query_async(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %(worker)s "
            "WHERE queueing_lock = %(id)s",
            worker=stopped["id"],
            id=job_id,
        )
        listed = list(
            await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=1)
        )
        assert [j.queueing_lock for j in listed] == [job_id]
        await sweep(web.services, app)  # one worker hands it on
        assert await _engine_status(settings, job_id) == "todo"

        async def as_listed_before(**_: Any) -> list[Any]:
            return listed

        # Another worker listed it before that, and hands it on now.
        monkeypatch.setattr(app.job_manager, "get_stalled_jobs", as_listed_before)
        await sweep(web.services, app)
        monkeypatch.undo()
        assert await _engine_status(settings, job_id) == "todo"
        async with worker(settings):
            done = await wait_status(web, job_id, "succeeded", "failed", "interrupted")
        assert done.status == "succeeded", done.error_message
    assert len(upstream_requests(emulator, marker)) == 1


async def test_a_job_a_gone_worker_claimed_is_interrupted_not_resent(
    external: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """A row claimed by a worker that is gone (it may have been billed) is ended as
    ``interrupted`` by a live worker's reconciliation and never sent (the hand-over of a dead
    worker's tasks is the SIGKILL test's)."""
    settings = external(worker_lease_seconds=1)
    marker = uuid.uuid4().hex
    async with running(settings) as web:
        h = await user_with_key(web)
        job_id = await queue_job(web, h, f"a lynx {marker}")
        # A worker that claimed it and vanished: owner is a worker id nobody heartbeats.
        async with web.services.sessionmaker() as s, s.begin():
            await s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status="running", owner="f" * 32, started_at=Job.created_at)
            )
        await drop_task(web, job_id)
        from sqlalchemy import insert

        from nanobanana.server.db.models import Worker, utcnow

        async with web.services.sessionmaker() as s, s.begin():
            old = utcnow().replace(year=2000)
            await s.execute(
                insert(Worker).values(
                    id="f" * 32, host="elsewhere", pid=1, started_at=old, heartbeat_at=old
                )
            )
        async with worker(settings):
            done = await wait_status(web, job_id, "interrupted", "succeeded", seconds=10)
        assert done.status == "interrupted"
        assert done.error_details == {"was": "running", "may_be_billed": True}
    assert upstream_requests(emulator, marker) == []


async def start_worker_process(settings: Settings, log: Path, **env: str) -> Process:
    """``nanobanana worker`` as users run it, in its own process; ready when registered."""
    before = await _worker_ids(settings)
    variables = {
        **os.environ,
        "NANOBANANA_DATA_DIR": str(settings.data_dir),
        "NANOBANANA_DATABASE_URL": settings.resolved_database_url,
        "NANOBANANA_DEMO": "false",
        "NANOBANANA_OPENROUTER_BASE_URL": str(settings.openrouter_base_url),
        "NANOBANANA_GEMINI_BASE_URL": str(settings.gemini_base_url),
        "NANOBANANA_RETRY_MAX_ATTEMPTS": "1",
        "NANOBANANA_WORKER_LEASE_SECONDS": str(settings.worker_lease_seconds),
        "NANOBANANA_MASTER_KEYS": MASTER_KEY,
        **env,
    }
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nanobanana", "worker", env=variables, stdout=out, stderr=out
        )
    for _ in range(300):
        if (await _worker_ids(settings)) - before:
            return proc
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError(log.read_text())


async def _engine_status(settings: Settings, job_id: str) -> str | None:
    """The status of the task queue's job for ``job_id`` (None: there is none)."""
    import asyncpg

    conn = await asyncpg.connect(settings.resolved_database_url.replace("+asyncpg", ""))
    try:
        status: str | None = await conn.fetchval(
            "SELECT status::text FROM procrastinate_jobs WHERE args->>'job_id' = $1", job_id
        )
        return status
    finally:
        await conn.close()


async def _worker_ids(settings: Settings) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(settings.resolved_database_url.replace("+asyncpg", ""))
    try:
        return {r["id"] for r in await conn.fetch("SELECT id FROM workers")}
    finally:
        await conn.close()


async def test_a_worker_killed_mid_flight_loses_no_job_and_sends_none_twice(
    external: Callable[..., Settings], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """SIGKILL a worker holding two jobs of one user: one in its upstream call (claimed), one
    delivered but waiting for the user's slot (not claimed).  Within the lease the first is
    ``interrupted`` (may be billed, never re-sent) and the second runs on another worker;
    each prompt reached the upstream once, and no key reached a log."""
    settings = external(worker_lease_seconds=2)
    log = tmp_path / "workers.log"
    first_marker, second_marker = uuid.uuid4().hex, uuid.uuid4().hex
    async with running(settings) as web:
        h = await user_with_key(web)
        victim = await start_worker_process(
            settings, log, NANOBANANA_MAX_CONCURRENT_JOBS_PER_USER="1"
        )
        try:
            ids = []
            for marker in (first_marker, second_marker):
                r = await web.client.post(
                    "/api/generations",
                    json={"prompt": f"kill {marker} [emulator:latency:3]"},
                    headers=h,
                )
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            for _ in range(1000):  # the worker process may take a while on a busy machine
                if upstream_requests(emulator, first_marker):
                    break
                await asyncio.sleep(0.02)
            assert upstream_requests(emulator, first_marker), log.read_text()
            # The victim has taken the second task too (the queue's fallback poll at the
            # latest), but cannot run it before the first ends: the row stays queued.
            for _ in range(300):
                if await _engine_status(settings, ids[1]) == "doing":
                    break
                await asyncio.sleep(0.05)
            assert await _engine_status(settings, ids[1]) == "doing", log.read_text()
            second = await job_of(web, ids[1])
            assert (second.status, second.owner) == ("queued", QUEUED)
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            heir = await start_worker_process(settings, log)
            try:
                first = await wait_status(web, ids[0], "interrupted", "succeeded", seconds=20)
                second = await wait_status(web, ids[1], "succeeded", "failed", seconds=30)
            finally:
                heir.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(heir.wait(), 20) == 0, log.read_text()
        finally:
            if victim.returncode is None:
                victim.kill()
    assert first.status == "interrupted"
    assert first.error_details == {"was": "running", "may_be_billed": True}
    assert second.status == "succeeded", second.error_message
    assert len(upstream_requests(emulator, first_marker)) == 1
    assert len(upstream_requests(emulator, second_marker)) == 1
    assert OPENROUTER_CANARY not in log.read_text()


async def test_a_worker_loads_no_web_framework(
    pg_url: str, settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    """A worker runs jobs with the service layer alone: FastAPI, its routes and the pages are
    never imported (checked in a fresh interpreter, after the worker has started)."""
    settings = settings_for(pg_url)
    code = (
        "import asyncio, logging, sys\n"
        "from nanobanana.server.settings import Settings\n"
        "from nanobanana.server.worker import work\n"
        "ready = []\n"
        "class Ready(logging.Handler):\n"
        "    def emit(self, record):\n"
        "        ready.append(record.getMessage().startswith('nanobanana worker'))\n"
        "logging.getLogger('nanobanana.server').addHandler(Ready())\n"
        "logging.getLogger('nanobanana.server').setLevel(logging.INFO)\n"
        "async def main():\n"
        "    task = asyncio.create_task(work(Settings(), install_signal_handlers=False))\n"
        "    while not any(ready):\n"
        "        assert not task.done(), task.exception()\n"
        "        await asyncio.sleep(0.05)\n"
        "    await asyncio.sleep(0.5)\n"
        "    task.cancel()\n"
        "    print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastapi'\n"
        "                 or m.startswith('nanobanana.server.routes')))\n"
        "asyncio.run(main())\n"
    )
    env = {
        **os.environ,
        "NANOBANANA_DATA_DIR": str(settings.data_dir),
        "NANOBANANA_DATABASE_URL": settings.resolved_database_url,
        "NANOBANANA_DEMO": "false",
        "NANOBANANA_MASTER_KEYS": MASTER_KEY,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert out.decode().strip().splitlines()[-1] == "[]"


def test_a_worker_never_makes_a_master_key_of_its_own(tmp_path: Path) -> None:
    """A worker (or an external-jobs web process) with no master key would make its own, and
    then could not read the keys the others stored: it stops with one line saying what to set."""
    from nanobanana.server.security import StartupError, load_master_keys

    settings = Settings(data_dir=tmp_path, database_url="postgresql+asyncpg://x@127.0.0.1/x")
    with pytest.raises(StartupError, match="set NANOBANANA_MASTER_KEYS"):
        load_master_keys(settings, create=False)
    external = Settings(
        data_dir=tmp_path, database_url="postgresql+asyncpg://x@127.0.0.1/x", jobs="external"
    )
    with pytest.raises(StartupError, match="need the same master key"):
        load_master_keys(external)
    assert not (tmp_path / "master.key").exists()
    assert load_master_keys(Settings(data_dir=tmp_path))  # the embedded default makes one
    assert (tmp_path / "master.key").exists()


async def test_a_job_cancelled_on_any_web_process_is_never_sent_or_stops(
    external: Callable[..., Settings], emulator: EmulatorServer, log_capture: Any
) -> None:
    """Cancel on web process B a job queued on A: it ends `failed`/`cancelled` at once, asking
    again answers the same, and the worker that starts later sends nothing.  A job a worker
    runs, cancelled on B with no Redis between them, ends at once and the worker stops its call
    at its next heartbeat; a finished one says so (409 job_finished)."""
    settings = external(worker_lease_seconds=1.5)  # a heartbeat every 0.5 s
    marker = uuid.uuid4().hex
    async with running(settings) as a, running(settings) as b:
        h = await user_with_key(a)
        job_id = await queue_job(a, h, f"a fox {marker}")
        for _ in range(2):
            r = await b.client.post(f"/api/generations/{job_id}/cancel", headers=h)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "failed"
            assert r.json()["error"]["code"] == "job_cancelled"
        slow_id = await queue_job(a, h, f"slow {marker} [emulator:latency:3]")
        async with worker(settings):
            await wait_status(a, slow_id, "running")
            r = await b.client.post(f"/api/generations/{slow_id}/cancel", headers=h)
            assert r.status_code == 200 and r.json()["error"]["code"] == "job_cancelled"
            assert r.json()["error"]["may_be_billed"] is True
            stopped = f"Job {slow_id} was ended by another process; its call is stopped."
            for _ in range(40):  # within a heartbeat, well before the 3 s answer
                if stopped in log_capture.messages:
                    break
                await asyncio.sleep(0.05)
            assert stopped in log_capture.messages
            await until_no_task(settings, job_id)  # the cancelled job was delivered, and dropped
            await until_no_task(settings, slow_id)
            quick_id = await queue_job(a, h, f"quick {marker}")
            await wait_status(a, quick_id, "succeeded")
        r = await b.client.post(f"/api/generations/{quick_id}/cancel", headers=h)
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_finished"
        assert (await job_of(a, slow_id)).error_code == "cancelled"  # the worker wrote no end
        other = await b.user(f"v{uuid.uuid4().hex[:8]}")
        r = await b.client.post(f"/api/generations/{job_id}/cancel", headers=other)
        assert r.status_code == 404  # only its owner sees it
        assert (await job_of(a, job_id)).error_code == "cancelled"
    assert upstream_requests(emulator, f"a fox {marker}") == []


async def test_a_spending_cap_holds_across_web_processes_and_workers(
    external: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """Two web processes take requests for one user at once, a worker runs them: the cap
    (room for three images' estimates) lets exactly three through, whichever process took
    them, and the others never reach the provider."""
    settings = external()
    marker = uuid.uuid4().hex
    model = "gemini-3.1-flash-image"
    async with running(settings) as web, running(settings) as other, worker(settings):
        admin = await web.user("admin")  # the first account: the admin
        h = await user_with_key(web)
        me = (await web.client.get("/api/auth/me", headers=h)).json()["id"]
        price = web.services.catalog.find(model).pricing.image_cost("1K")
        cap = {"daily_usd": round(price * 3.5, 6)}
        r = await web.client.put(f"/api/admin/users/{me}/budget", json=cap, headers=admin)
        assert r.status_code == 200, r.text

        async def generate(i: int) -> int:
            face = web if i % 2 else other
            body = {"prompt": f"a fox {marker} {i}", "model": model}
            r = await face.client.post("/api/nano-banana/generate", json=body, headers=h)
            return r.status_code

        statuses = sorted(await asyncio.gather(*(generate(i) for i in range(20))))
    assert statuses.count(200) == 3 and set(statuses) == {200, 402}, statuses
    assert len(upstream_requests(emulator, marker)) == 3
