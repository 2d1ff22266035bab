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
from nanobanana.server.security import StartupError
from nanobanana.server.settings import Settings
from nanobanana.server.sharedbus import SharedEventBus

from .conftest import Api, running, upstream_requests
from .test_worker import user_with_key, worker

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
    return settings_for(database, jobs="external", redis_url=REDIS_URL)


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
    import json

    out: list[tuple[str, Any]] = []
    async with api.client.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200
        event = None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event is not None:
                out.append((event, json.loads(line[6:])))
                event = None
    return out


async def test_a_redis_that_does_not_answer_stops_the_start_in_one_line(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(StartupError, match="Redis at NANOBANANA_REDIS_URL did not answer"):
        async with running(settings):
            pass
