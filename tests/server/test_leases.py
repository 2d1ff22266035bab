"""Processes sharing one database: each owns the jobs it runs, and only the jobs of a process
that is gone are ended as interrupted (``server.leases``), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from nanobanana.emulator import EmulatorServer
from nanobanana.server.db.models import Job, StoredImage, User, Worker, utcnow
from nanobanana.server.settings import Settings

from .conftest import OPENROUTER_CANARY, Api, running, upstream_requests

pytestmark = pytest.mark.timeout(120)


async def job_of(api: Api, job_id: str) -> Job:
    async with api.services.sessionmaker() as s:
        job = await s.get(Job, job_id)
        assert job is not None
        return job


async def wait_status(api: Api, job_id: str, *wanted: str, seconds: float = 15.0) -> Job:
    for _ in range(int(seconds / 0.05)):
        job = await job_of(api, job_id)
        if job.status in wanted:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} is {job.status}, not {wanted}")


async def start_slow_job(api: Api, marker: str) -> tuple[str, dict[str, str]]:
    h = await api.user(f"u{uuid.uuid4().hex[:8]}")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await api.client.post(
        "/api/generations",
        json={"prompt": f"slow {marker} [emulator:latency:3]"},
        headers=h,
    )
    assert r.status_code == 202, r.text
    return r.json()["id"], h


async def end_elsewhere(api: Api, job_id: str) -> None:
    """What another process does to a job it finds orphaned: ends it and raises its attempt."""
    async with api.services.sessionmaker() as s, s.begin():
        await s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="interrupted", attempt=Job.attempt + 1, error_code="interrupted")
        )


async def test_a_second_process_leaves_the_first_ones_jobs_alone(
    db_url: str, settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """A process starting on a shared database used to mark every running job interrupted,
    another live process's included; now that job runs to its end."""
    settings = settings_for(db_url)
    marker = uuid.uuid4().hex
    async with running(settings) as first:
        job_id, _ = await start_slow_job(first, marker)
        await wait_status(first, job_id, "running")
        async with running(settings) as second:
            assert (await job_of(second, job_id)).status == "running"
            done = await wait_status(first, job_id, "succeeded", "failed", "interrupted")
        assert done.status == "succeeded", done.error_message
        assert done.owner == first.services.worker_id
    assert len(upstream_requests(emulator, marker)) == 1


async def test_the_jobs_of_a_gone_process_are_ended_within_the_lease(
    db_url: str, settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """A worker elsewhere stopped beating: its running job may have been billed and is ended
    as interrupted (never re-sent), its queued one as never sent; a live worker's job and a
    finished job are left alone."""
    settings = settings_for(db_url, worker_lease_seconds=1)
    async with running(settings) as api:
        await api.user("alice")
        now = utcnow()
        async with api.services.sessionmaker() as s, s.begin():
            user = await s.scalar(select(User))
            assert user is not None
            hour = timedelta(hours=1)
            s.add(Worker(id="gone", host="elsewhere", pid=1, heartbeat_at=now - hour))
            s.add(Worker(id="alive", host="elsewhere", pid=1, heartbeat_at=now + hour))
            for owner, status in (("gone", "running"), ("gone", "queued"), ("alive", "running")):
                s.add(
                    Job(
                        user_id=user.id,
                        status=status,
                        kind="async",
                        request={"prompt": "left", "n": 1, "provider": "openrouter"},
                        prompt=f"{owner} {status}",
                        owner=owner,
                        created_at=now,
                    )
                )
        # The heartbeat (every third of the lease) reconciles.
        for _ in range(100):
            async with api.services.sessionmaker() as s:
                jobs = {j.prompt: j for j in await s.scalars(select(Job))}
                workers = set(await s.scalars(select(Worker.id)))
            if jobs["gone running"].status == "interrupted":
                break
            await asyncio.sleep(0.05)
        assert jobs["gone running"].error_details == {"was": "running", "may_be_billed": True}
        assert jobs["gone running"].attempt == 1
        assert jobs["gone queued"].status == "interrupted"
        assert jobs["gone queued"].error_details == {"was": "queued", "may_be_billed": False}
        assert jobs["alive running"].status == "running"
        assert "gone" not in workers and "alive" in workers
        assert api.services.worker_id in workers
        first = api.services.worker_id
    async with running(settings) as again:  # a clean stop removes its worker row
        async with again.services.sessionmaker() as s:
            workers = set(await s.scalars(select(Worker.id)))
        assert first not in workers and again.services.worker_id in workers


async def test_a_process_that_lost_its_job_cannot_write_its_end(
    settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """The fence: once another process has ended a job (its attempt raised), the first one's
    late "succeeded" matches nothing; the image it paid for is still kept with the job."""
    settings = settings_for()
    marker = uuid.uuid4().hex
    async with running(settings) as api:
        job_id, _ = await start_slow_job(api, marker)
        await wait_status(api, job_id, "running")
        await end_elsewhere(api, job_id)
        await api.services.job_manager.wait(job_id)
        job = await job_of(api, job_id)
        assert job.status == "interrupted"
        async with api.services.sessionmaker() as s:
            images = list(await s.scalars(select(StoredImage).where(StoredImage.job_id == job_id)))
        assert len(images) == 1  # landed as it arrived, before the fenced end
    assert len(upstream_requests(emulator, marker)) == 1


async def test_a_job_answered_whole_keeps_its_image_behind_the_fence(
    settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """A seed call lands its one image together with its end; when another process has
    ended the job meanwhile, the fenced end matches nothing but the image is still kept."""
    settings = settings_for()
    marker = uuid.uuid4().hex
    async with running(settings) as api:
        h = await api.user(f"u{uuid.uuid4().hex[:8]}")
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        call = asyncio.create_task(
            api.client.post(
                "/api/nano-banana/generate",
                json={"prompt": f"slow {marker} [emulator:latency:2]"},
                headers=h,
            )
        )
        job_id = None
        for _ in range(100):
            async with api.services.sessionmaker() as s:
                job_id = await s.scalar(select(Job.id).where(Job.prompt.contains(marker)))
            if job_id is not None:
                break
            await asyncio.sleep(0.05)
        assert job_id is not None
        await wait_status(api, job_id, "running")
        await end_elsewhere(api, job_id)
        r = await call
        # This process's end was not recorded: the caller learns the job was interrupted.
        assert r.status_code == 503 and r.json()["error"]["code"] == "job_interrupted"
        job = await job_of(api, job_id)
        assert job.status == "interrupted"
        async with api.services.sessionmaker() as s:
            images = list(await s.scalars(select(StoredImage).where(StoredImage.job_id == job_id)))
        assert len(images) == 1  # the image paid for is kept with the job
    assert len(upstream_requests(emulator, marker)) == 1
