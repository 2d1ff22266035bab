"""Job events shared by processes on a real Redis (127.0.0.1:6379, started by ``make
services``): a subscriber in one process sees what another publishes, late or live, in order
and once; a web process's event stream and its synchronous routes follow a job a worker runs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from nanobanana.emulator import EmulatorServer
from nanobanana.server.events import CLOSED
from nanobanana.server.security import StartupError, hash_token
from nanobanana.server.settings import Settings
from nanobanana.server.sharedbus import SharedEventBus

from .conftest import Api, auth, running, upstream_requests
from .test_jobs import _parse_sse
from .test_leases import job_of, wait_status
from .test_worker import MASTER_KEY, user_with_key, worker

REDIS_URL = "redis://127.0.0.1:6379/0"

pytestmark = [pytest.mark.timeout(60), pytest.mark.redis]


@contextlib.asynccontextmanager
async def bus() -> AsyncIterator[SharedEventBus]:
    """One process's shared bus."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc!r}); start it: make services")
    b = SharedEventBus(client)
    await b.start()
    try:
        yield b
    finally:
        await b.stop()
        await client.aclose()


async def next_events(queue: asyncio.Queue[dict[str, Any]], n: int) -> list[Any]:
    return [await asyncio.wait_for(queue.get(), 5) for _ in range(n)]


async def test_a_subscriber_elsewhere_sees_every_event_once_in_order() -> None:
    """Process B subscribes while A's job runs: the events so far come as history, the next
    ones live, none twice, ids increasing; one that subscribes after the end gets the whole
    story; the end of the channel is said."""
    job = uuid.uuid4().hex
    async with bus() as a, bus() as b:
        a.publish(job, "queued", {"id": job})
        a.publish(job, "running", {"id": job})
        for _ in range(100):  # sent in the background
            async with b.subscribe(job) as sub:
                assert sub is not None
                if len(sub[0]) == 2:
                    break
            await asyncio.sleep(0.02)
        async with b.subscribe(job) as sub:
            assert sub is not None
            history, queue = sub
            assert [e["event"] for e in history] == ["queued", "running"]
            for i in range(20):
                a.publish(job, "text", {"text": str(i)})
            a.publish(job, "done", {"id": job, "status": "succeeded"})
            a.close(job)
            live = await next_events(queue, 22)
        assert [e["data"]["text"] for e in live[:20]] == [str(i) for i in range(20)]
        assert live[20]["event"] == "done" and live[21] is CLOSED
        ids = [e["id"] for e in history + live[:21]]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        assert len(set(ids)) == len(ids)
        async with b.subscribe(job) as late:
            assert late is not None
            story, queue = late
            assert [e["event"] for e in story] == ["queued", "running", *["text"] * 20, "done"]
            assert (await next_events(queue, 1)) == [CLOSED]


async def test_events_published_while_subscribing_are_not_lost_or_doubled() -> None:
    """A burst published while B reads the history: each event reaches B exactly once."""
    job = uuid.uuid4().hex
    async with bus() as a, bus() as b:
        for i in range(50):
            a.publish(job, "text", {"text": str(i)})
        async with b.subscribe(job) as sub:
            assert sub is not None
            history, queue = sub
            for i in range(50, 100):
                a.publish(job, "text", {"text": str(i)})
            a.close(job)
            seen = [e["data"]["text"] for e in history]
            while True:
                ev = await asyncio.wait_for(queue.get(), 5)
                if ev is CLOSED:
                    break
                seen.append(ev["data"]["text"])
        assert seen == [str(i) for i in range(100)]


@pytest.fixture(params=[pytest.param("external", marks=pytest.mark.postgres), "embedded"])
def redis_settings(
    request: pytest.FixtureRequest, settings_for: Callable[..., Settings]
) -> Settings:
    """Events on Redis: jobs left to workers on PostgreSQL, or run by the web process on
    SQLite."""
    if request.param == "embedded":
        return settings_for(redis_url=REDIS_URL)
    from .conftest import _truncate

    database = request.getfixturevalue("pg_database")
    asyncio.run(_truncate(database))
    return settings_for(database, jobs="external", master_keys=MASTER_KEY, redis_url=REDIS_URL)


async def test_an_event_stream_follows_a_job_through_redis(
    redis_settings: Settings, emulator: EmulatorServer
) -> None:
    """GET /api/generations/{id}/events on a web process that runs no job (external) or runs
    it (embedded), with the events on Redis: queued, running, the attempt, the image and done;
    the seed endpoint answers (woken by the done event when a worker ran it)."""
    settings = redis_settings
    jobs = settings.jobs
    marker = uuid.uuid4().hex
    async with contextlib.AsyncExitStack() as stack:
        web = await stack.enter_async_context(running(settings))
        assert web.services.bus.shared  # the events below crossed Redis
        if jobs == "external":
            await stack.enter_async_context(worker(settings))
        h = await user_with_key(web)
        r = await web.client.post(
            "/api/generations", json={"prompt": f"a fox {marker} [emulator:latency:1]"}, headers=h
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        events = await sse_events(web, f"/api/generations/{job_id}/events", h)
        names = [e for e, _ in events]
        assert names[0] == "queued" and names[-1] == "done", names
        assert {"running", "attempt", "image"} <= set(names), names
        assert events[-1][1]["status"] == "succeeded"
        assert len(events[-1][1]["images"]) == 1
        r = await web.client.post(
            "/api/nano-banana/generate", json={"prompt": f"an owl {marker}"}, headers=h
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["images"]) == 1
    assert len(upstream_requests(emulator, marker)) == 2


async def sse_events(api: Api, path: str, headers: dict[str, str]) -> list[tuple[str, Any]]:
    """The whole event stream (it ends after ``done``), as (event, data) pairs."""
    r = await api.client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    return _parse_sse(r.text)


async def test_a_redis_that_does_not_answer_stops_the_start_in_one_line(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(StartupError, match="Redis at NANOBANANA_REDIS_URL did not answer"):
        async with running(settings):
            pass


@pytest.fixture
def shared_pg_settings(pg_database: str, settings_for: Callable[..., Settings]) -> Settings:
    """Two or more web processes on one PostgreSQL database and one Redis."""
    from .conftest import _truncate

    asyncio.run(_truncate(pg_database))
    return settings_for(pg_database, redis_url=REDIS_URL)


@pytest.mark.postgres
async def test_a_revocation_on_one_process_holds_on_the_other_at_once(
    shared_pg_settings: Settings,
) -> None:
    """A token that process B has just accepted (and cached for 30 s) is refused by B right
    after it is revoked on A; likewise a replaced provider key and new defaults."""
    async with running(shared_pg_settings) as a, running(shared_pg_settings) as b:
        h = await a.user("alice")
        token = a.tokens["alice"]
        assert (await b.client.get("/api/auth/me", headers=h)).status_code == 200
        assert b.services.auth_cache.get(hash_token(token)) is not None
        assert (await a.client.post("/api/auth/logout", headers=h)).status_code == 204
        assert await eventually(lambda: b.services.auth_cache.get(hash_token(token)) is None)
        assert (await b.client.get("/api/auth/me", headers=h)).status_code == 401

        h = auth(await a.login("alice"))
        user_id = (await b.client.get("/api/auth/me", headers=h)).json()["id"]
        b.services.key_cache.put(user_id, {"openrouter": "old"})
        b.services.defaults_cache.put(user_id, None, b.services.defaults_cache.epoch())
        await a.put_key(h, "openrouter", "sk-or-v1-" + "1" * 64)
        assert await eventually(lambda: b.services.key_cache.get(user_id) is None)
        r = await a.client.put("/api/settings/defaults", json={"aspect_ratio": "16:9"}, headers=h)
        assert r.status_code == 200, r.text
        assert await eventually(lambda: b.services.defaults_cache.get(user_id) == (False, None))


@pytest.mark.postgres
async def test_a_job_cancelled_on_one_process_stops_its_call_on_the_other_at_once(
    shared_pg_settings: Settings, emulator: EmulatorServer
) -> None:
    """A job running on A (a 5 s call), cancelled on B: B ends it at once and A stops the call
    within a second (told through Redis, not at its heartbeat 10 s later), writing no end of
    its own."""
    marker = uuid.uuid4().hex
    async with running(shared_pg_settings) as a, running(shared_pg_settings) as b:
        h = await user_with_key(a)
        r = await a.client.post(
            "/api/generations", json={"prompt": f"slow {marker} [emulator:latency:5]"}, headers=h
        )
        job_id = r.json()["id"]
        await wait_status(a, job_id, "running")
        assert a.services.job_manager.is_running_here(job_id)
        r = await b.client.post(f"/api/generations/{job_id}/cancel", headers=h)
        assert r.status_code == 200 and r.json()["error"]["code"] == "job_cancelled", r.text
        assert await eventually(lambda: not a.services.job_manager.is_running_here(job_id))
        assert (await job_of(a, job_id)).error_code == "cancelled"


async def eventually(check: Callable[[], bool], seconds: float = 1.0) -> bool:
    """Whether ``check`` holds within ``seconds`` (the bound the service promises)."""
    for _ in range(int(seconds / 0.01)):
        if check():
            return True
        await asyncio.sleep(0.01)
    return check()


def test_the_server_extra_alone_needs_no_redis_nor_task_queue(tmp_path: Any) -> None:
    """``pip install '.[server]'`` has neither redis nor procrastinate: the embedded service
    starts and generates without them (checked with their imports blocked)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for name in ('redis', 'procrastinate', 'psycopg', 'asyncpg'):\n"
        "    sys.modules[name] = None\n"
        "import asyncio, httpx\n"
        "from nanobanana.server.app import create_app\n"
        "from nanobanana.server.settings import Settings\n"
        "async def main():\n"
        f"    app = create_app(Settings(data_dir={str(tmp_path)!r}, demo=True))\n"
        "    async with app.router.lifespan_context(app):\n"
        "        t = httpx.ASGITransport(app=app)\n"
        "        async with httpx.AsyncClient(transport=t, base_url='http://x') as c:\n"
        "            body = {'username': 'ann', 'password': 'correct horse battery'}\n"
        "            await c.post('/api/auth/register', json=body)\n"
        "            r = await c.post('/api/auth/login', json=body)\n"
        "            h = {'Authorization': 'Bearer ' + r.json()['access_token']}\n"
        "            r = await c.post('/api/nano-banana/generate', json={'prompt': 'a fox'},\n"
        "                             headers=h)\n"
        "            print(r.status_code, len(r.json()['images']))\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["200", "1"]


async def test_a_rate_limit_on_redis_holds_across_processes_and_counts_once() -> None:
    """Two processes' limiters on one Redis share the count: concurrent takes never pass the
    limit together, the wait is what the oldest event leaves, and a reset clears it."""
    import redis.asyncio

    from nanobanana.server.sharedlimits import RedisRateLimiter

    name = f"test-{uuid.uuid4().hex[:8]}"
    a_client = redis.asyncio.Redis.from_url(REDIS_URL)
    b_client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        a = RedisRateLimiter(a_client, name, 5, 60.0)
        b = RedisRateLimiter(b_client, name, 5, 60.0)
        results = await asyncio.gather(*(lim.take("ann") for lim in [a, b] * 10))
        assert sum(r is None for r in results) == 5
        waits = [r for r in results if r is not None]
        assert all(59 < w <= 60 for w in waits)
        assert await a.retry_after("bob") is None
        await b.hit("bob")
        assert await a.retry_after("bob") is None  # one of five
        await a.reset("ann")
        assert await b.take("ann") is None
    finally:
        await a_client.aclose()
        await b_client.aclose()


async def test_a_rate_limit_without_redis_counts_in_the_process() -> None:
    """Redis going away lifts no limit: each process counts in its own memory meanwhile."""
    import redis.asyncio

    from nanobanana.server.sharedlimits import RedisRateLimiter

    client = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0")
    try:
        limiter = RedisRateLimiter(client, "away", 2, 60.0)
        assert await limiter.take("ann") is None
        assert await limiter.take("ann") is None
        wait = await limiter.take("ann")
        assert wait is not None and wait > 59
    finally:
        await client.aclose()


@pytest.mark.postgres
async def test_generation_and_login_limits_hold_across_two_web_processes(
    pg_database: str, settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """A user's generations per minute count on both web processes together, and failed
    logins on one lock the account out on the other."""
    from .conftest import _truncate

    await asyncio.to_thread(lambda: asyncio.run(_truncate(pg_database)))
    settings = settings_for(
        pg_database,
        redis_url=REDIS_URL,
        generations_per_minute=3,
        login_max_failures_per_account=2,
    )
    async with running(settings) as a, running(settings) as b:
        h = await user_with_key(a)
        codes = []
        for web in (a, b, a, b):
            r = await web.client.post(
                "/api/generations", json={"prompt": "a fox [emulator:latency:0]"}, headers=h
            )
            codes.append(r.status_code)
        assert codes == [202, 202, 202, 429], codes
        carol = f"carol{uuid.uuid4().hex[:8]}"  # Redis keeps the count beyond this test
        await a.register(carol)
        for _ in range(2):
            r = await a.client.post(
                "/api/auth/login", json={"username": carol, "password": "wrong password!"}
            )
            assert r.status_code == 401
        r = await b.client.post(
            "/api/auth/login", json={"username": carol, "password": "correct horse battery"}
        )
        assert r.status_code == 429, r.text


async def test_a_users_running_places_are_shared_and_leased() -> None:
    """Two processes' slots on one Redis: a user at the limit waits until a place is freed
    anywhere; a place whose process stopped renewing it is free after the lease."""
    import redis.asyncio

    from nanobanana.server.sharedlimits import RedisUserSlots

    user = f"u{uuid.uuid4().hex[:8]}"
    clients = [redis.asyncio.Redis.from_url(REDIS_URL) for _ in range(2)]
    a = RedisUserSlots(clients[0], 2, lease=1.0, poll=0.05)
    b = RedisUserSlots(clients[1], 2, lease=1.0, poll=0.05)
    try:
        await a.acquire(user, "j1")
        await b.acquire(user, "j2")
        third = asyncio.create_task(a.acquire(user, "j3"))
        await asyncio.sleep(0.3)
        assert not third.done()  # two running, in two processes: the third waits
        await b.release(user, "j2")
        await asyncio.wait_for(third, 2)
        await a.acquire(user, "j3")  # a job that holds its place gets it again at once
        await asyncio.sleep(1.5)  # a's renewals keep j1 and j3 past the lease
        fourth = asyncio.create_task(b.acquire(user, "j4"))
        await asyncio.sleep(0.3)
        assert not fourth.done()
        await a.close()  # a "dies": no more renewals; its places lapse with the lease
        await asyncio.wait_for(fourth, 3)
    finally:
        await b.close()
        for c in clients:
            await c.aclose()


@pytest.mark.postgres
async def test_a_users_running_limit_holds_across_two_web_processes(
    shared_pg_settings: Settings, settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """NANOBANANA_MAX_CONCURRENT_JOBS_PER_USER=1 on two web processes sharing Redis: jobs sent
    to both never run two at once."""
    settings = shared_pg_settings.model_copy(update={"max_concurrent_jobs_per_user": 1})
    async with running(settings) as a, running(settings) as b:
        h = await user_with_key(a)
        ids = []
        for web in (a, b, a):
            r = await web.client.post(
                "/api/generations", json={"prompt": "slow [emulator:latency:0.5]"}, headers=h
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        most = 0
        for _ in range(200):
            async with a.services.sessionmaker() as s:
                from sqlalchemy import func, select

                from nanobanana.server.db.models import Job

                running_now = await s.scalar(
                    select(func.count()).where(Job.id.in_(ids), Job.status == "running")
                )
                done = await s.scalar(
                    select(func.count()).where(Job.id.in_(ids), Job.status == "succeeded")
                )
            most = max(most, running_now or 0)
            if done == 3:
                break
            await asyncio.sleep(0.05)
        assert done == 3 and most == 1


async def test_an_outage_is_said_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    """A Redis that stops answering is one warning, not one per check; its return one line."""
    import logging

    import redis.asyncio

    from nanobanana.server.sharedlimits import RedisRateLimiter

    up = redis.asyncio.Redis.from_url(REDIS_URL)
    down = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0")
    try:
        working = RedisRateLimiter(up, f"t{uuid.uuid4().hex[:6]}", 1000, 60.0)
        away = RedisRateLimiter(down, "away", 1000, 60.0)
        await working.take("ann")  # whatever came before, Redis answers now
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="nanobanana.server"):
            for _ in range(50):
                await away.take("ann")
            await working.take("ann")
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 2, lines
        assert lines[0].startswith("Redis did not answer (a rate limit check")
        assert lines[1].startswith("Redis answers again after")
    finally:
        await up.aclose()
        await down.aclose()
