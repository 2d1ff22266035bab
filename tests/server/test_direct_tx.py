"""Short write transactions in one step (``db.direct.Transactions``), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Connection, func, insert, select

from nanobanana.server.db.models import ServerConfig

from .conftest import Api


async def _count(api: Api) -> int:
    async with api.services.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ServerConfig)) or 0)


async def test_commits_on_return_and_rolls_back_on_error(db_api: Api) -> None:
    tx = db_api.services.tx
    before = await _count(db_api)

    def write(conn: Connection) -> str:
        conn.execute(insert(ServerConfig), [{"key": "direct-a", "value": {"n": 1}}])
        return threading.current_thread().name

    thread = await tx.run(write)
    assert await _count(db_api) == before + 1

    def fail(conn: Connection) -> None:
        conn.execute(insert(ServerConfig), [{"key": "direct-b", "value": 2}])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await tx.run(fail)
    assert await _count(db_api) == before + 1  # nothing of the failed transaction is kept
    if db_api.services.engine.dialect.name == "sqlite":
        # A database file: the whole transaction ran in one call on the dedicated thread.
        assert thread.startswith("nanobanana-db")


async def test_a_generation_is_recorded_through_it(db_api: Api) -> None:
    """The job row (at intake) and, for a job answered whole with one image, its image and
    its end together are each written in one step; the history shows the finished job with
    its image."""
    from .conftest import OPENROUTER_CANARY

    c = db_api.client
    h = await db_api.user("recorded")
    await db_api.put_key(h, "openrouter", OPENROUTER_CANARY)
    calls = 0
    real = db_api.services.tx.run

    async def counting(fn):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await real(fn)

    db_api.services.tx.run = counting  # type: ignore[method-assign]
    r = await c.post("/api/nano-banana/generate", json={"prompt": "a recorded cat"}, headers=h)
    assert r.status_code == 200, r.text
    assert calls == 2
    job_id = r.json()["id"]
    r = await c.get(f"/api/generations/{job_id}", headers=h)
    assert r.status_code == 200
    job = r.json()
    assert job["status"] == "succeeded" and len(job["images"]) == 1


async def test_a_streamed_job_lands_its_image_before_it_ends(db_api: Api) -> None:
    """A job followed over its event stream (``/api/generations``) lands each image the moment
    it arrives, in its own step, and ends in another: a crash between the two keeps the
    image that was paid for."""
    from .conftest import OPENROUTER_CANARY

    c = db_api.client
    h = await db_api.user("streamed")
    await db_api.put_key(h, "openrouter", OPENROUTER_CANARY)
    steps: list[str] = []
    real = db_api.services.tx.run

    async def naming(fn):  # type: ignore[no-untyped-def]
        steps.append(fn.__qualname__.split(".<locals>")[0])
        return await real(fn)

    db_api.services.tx.run = naming  # type: ignore[method-assign]
    r = await c.post("/api/generations", json={"prompt": "a streamed cat"}, headers=h)
    assert r.status_code == 202, r.text
    await db_api.services.job_manager.wait(r.json()["id"])
    assert steps[-2:] == ["_Landing.land", "JobManager._record"]
    r = await c.get(f"/api/generations/{r.json()['id']}", headers=h)
    assert r.json()["status"] == "succeeded" and len(r.json()["images"]) == 1
