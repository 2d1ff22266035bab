"""Jobs: async API, history, SSE, deletion, disconnects, crashes, shutdown, concurrency (R6-R9)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nanobanana.emulator import EmulatorServer
from nanobanana.files import read_metadata
from nanobanana.server.app import create_app
from nanobanana.server.db.models import Job, User, utcnow
from nanobanana.server.settings import Settings

from ..support import ServerThread
from .conftest import (
    GOOGLE_CANARY,
    OPENROUTER_CANARY,
    PASSWORD,
    Api,
    auth,
    running,
    upstream_requests,
)

pytestmark = pytest.mark.timeout(120)


async def _user_with_key(api: Api, name: str = "alice") -> dict[str, str]:
    h = await api.user(name)
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    return h


def _parse_sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if name:
            events.append((name, data))
    return events


async def test_async_generation_and_history(db_api: Api) -> None:
    c = db_api.client
    h = await _user_with_key(db_api)
    r = await c.post("/api/generations", json={"prompt": "async fox"}, headers=h)
    assert r.status_code == 202
    accepted = r.json()
    assert accepted["status"] == "queued"
    assert r.headers["location"] == accepted["url"] == f"/api/generations/{accepted['id']}"
    await db_api.services.job_manager.wait(accepted["id"])
    job = (await c.get(accepted["url"], headers=h)).json()
    assert job["status"] == "succeeded"
    assert job["provider"] == "openrouter" and job["cost"] is not None
    assert job["started_at"] and job["finished_at"] and job["timings"]["elapsed_s"] >= 0
    assert len(job["images"]) == 1
    img = job["images"][0]
    served = await c.get(img["url"], headers=h)
    assert hashlib.sha256(served.content).hexdigest() == img["sha256"]


async def test_history_paging_and_search(db_api: Api) -> None:
    c = db_api.client
    h = await _user_with_key(db_api)
    prompts = ["red apple", "green apple", "blue sky", "100% cotton_shirt", "Apple pie"]
    for p in prompts:
        assert (
            await c.post("/api/nano-banana/generate", json={"prompt": p}, headers=h)
        ).status_code == 200
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await c.get("/api/generations", params=params, headers=h)).json()
        assert len(page["items"]) <= 2
        seen += [i["prompt"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == prompts[::-1]  # newest first, each once
    found = (await c.get("/api/generations", params={"q": "apple"}, headers=h)).json()["items"]
    assert sorted(i["prompt"] for i in found) == ["Apple pie", "green apple", "red apple"]
    # LIKE wildcards in the query are literal characters.
    assert [
        i["prompt"]
        for i in (await c.get("/api/generations", params={"q": "100%"}, headers=h)).json()["items"]
    ] == ["100% cotton_shirt"]
    assert (await c.get("/api/generations", params={"q": "_"}, headers=h)).json()["items"][0][
        "prompt"
    ] == "100% cotton_shirt"
    assert (await c.get("/api/generations", params={"q": "%"}, headers=h)).json()["items"][0][
        "prompt"
    ] == "100% cotton_shirt"
    bad = await c.get("/api/generations", params={"cursor": "!!!"}, headers=h)
    assert bad.status_code == 422
    only_ok = (await c.get("/api/generations", params={"status": "failed"}, headers=h)).json()
    assert only_ok["items"] == []


async def test_delete_removes_files(db_api: Api) -> None:
    c = db_api.client
    h = await _user_with_key(db_api)
    r = await c.post("/api/nano-banana/generate", json={"prompt": "to delete"}, headers=h)
    job_id = r.json()["id"]
    files = sorted(p for p in db_api.settings.images_dir.rglob("*") if p.is_file())
    assert len(files) == 1  # the image; its thumbnail is made on first request
    thumb = await c.get(r.json()["image_urls"][0] + "?thumb=1", headers=h)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    files = sorted(p for p in db_api.settings.images_dir.rglob("*") if p.is_file())
    assert len(files) == 2  # the image and its thumbnail, both removed with the job
    assert (await c.delete(f"/api/generations/{job_id}", headers=h)).status_code == 204
    assert not [p for p in db_api.settings.images_dir.rglob("*") if p.is_file()]
    assert (await c.get(f"/api/generations/{job_id}", headers=h)).status_code == 404
    assert (await c.get(r.json()["image_urls"][0], headers=h)).status_code == 404
    assert (await c.delete(f"/api/generations/{job_id}", headers=h)).status_code == 404


async def test_free_memory_returned_once_idle(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the last running job, once idle, the heap's free pages go back (memory.py);
    never while jobs are still running."""
    from nanobanana.server import jobs

    manager = api.services.job_manager
    calls: list[tuple[float, bool]] = []  # (when, whether any job was running then)
    monkeypatch.setattr(jobs, "IDLE_TRIM_SECONDS", 0.2)
    monkeypatch.setattr(
        jobs, "release_free_memory", lambda: calls.append((time.monotonic(), bool(manager._tasks)))
    )
    h = await _user_with_key(api)
    slow = await api.client.post(
        "/api/generations", json={"prompt": "slow [emulator:latency:2]"}, headers=h
    )
    fast = await api.client.post("/api/nano-banana/generate", json={"prompt": "fast"}, headers=h)
    assert fast.status_code == 200
    await asyncio.sleep(0.4)
    assert not [c for c in calls if c[1]]  # never while the slow job still runs
    await manager.wait(slow.json()["id"])
    ended = time.monotonic()
    for _ in range(50):
        if any(t >= ended for t, _ in calls):
            break
        await asyncio.sleep(0.05)
    after = [t for t, _ in calls if t >= ended]
    assert len(after) == 1 and after[0] - ended >= 0.15
    assert not [c for c in calls if c[1]]


async def test_running_job_cannot_be_deleted(api: Api) -> None:
    h = await _user_with_key(api)
    r = await api.client.post(
        "/api/generations", json={"prompt": "slow [emulator:latency:0.5]"}, headers=h
    )
    job_id = r.json()["id"]
    d = await api.client.delete(f"/api/generations/{job_id}", headers=h)
    assert d.status_code == 409 and d.json()["error"]["code"] == "job_running"
    await api.services.job_manager.wait(job_id)
    assert (await api.client.delete(f"/api/generations/{job_id}", headers=h)).status_code == 204


def done_text(events: list[tuple[str, Any]]) -> str:
    return str(events[-1][1].get("text") or "")


async def test_sse_events_with_fallback(
    settings_for: Callable[..., Settings], quota_emulator: EmulatorServer
) -> None:
    async with running(settings_for(gemini_base_url=quota_emulator.gemini_url)) as api:
        h = await api.user("alice")
        await api.put_key(h, "google", GOOGLE_CANARY)
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        r = await api.client.post(
            "/api/generations", json={"prompt": "events", "provider": "google"}, headers=h
        )
        job_id = r.json()["id"]
        live = await api.client.get(f"/api/generations/{job_id}/events", headers=h)
        assert live.status_code == 200
        assert live.headers["content-type"].startswith("text/event-stream")
        events = _parse_sse(live.text)
        names = [n for n, _ in events]
        assert names[0] == "queued" and names[-1] == "done"
        assert "running" in names and "image" in names
        # The model's text is relayed as it streams in, before the image.
        texts = [d["text"] for n, d in events if n == "text"]
        assert "".join(texts).strip() and names.index("text") < names.index("image")
        assert done_text(events) == "".join(texts)
        fallback = next(d for n, d in events if n == "fallback")
        assert fallback == {"index": 0, "from": "google", "to": "openrouter"}
        attempts = [d for n, d in events if n == "attempt"]
        assert [(a["provider"], a["status"]) for a in attempts] == [
            ("google", "error"),
            ("openrouter", "ok"),
        ]
        done = events[-1][1]
        assert done["status"] == "succeeded" and done["images"][0]["url"]
        # After the end, the stream answers from the database with the same outcome.
        later = _parse_sse(
            (await api.client.get(f"/api/generations/{job_id}/events", headers=h)).text
        )
        assert [n for n, _ in later] == ["done"]
        assert later[0][1]["images"] == done["images"]


async def test_disconnect_in_process_keeps_the_result(api: Api) -> None:
    """The client goes away 50 ms into a paid call: the job still finishes and is stored."""
    h = await _user_with_key(api)
    token = h["Authorization"].split()[1]
    body = json.dumps({"prompt": "gone [emulator:latency:0.4]"}).encode()
    jobs_before = 0
    for _ in range(5):
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(0.05)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            raise OSError("the client closed the connection")

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/nano-banana/generate",
            "raw_path": b"/api/nano-banana/generate",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/json"),
                (b"authorization", f"Bearer {token}".encode()),
            ],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
            "state": {},
        }
        with pytest.raises(OSError):
            await api.app(scope, receive, send)
        jobs_before += 1
    items = (await api.client.get("/api/generations", headers=h)).json()["items"]
    assert len(items) == jobs_before
    for item in items:
        await api.services.job_manager.wait(item["id"])
    items = (await api.client.get("/api/generations", headers=h)).json()["items"]
    assert [i["status"] for i in items] == ["succeeded"] * jobs_before
    for item in items:
        data = (await api.client.get(item["images"][0]["url"], headers=h)).content
        assert hashlib.sha256(data).hexdigest() == item["images"][0]["sha256"]


def test_disconnect_real_server(
    settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """Real uvicorn: the socket closes mid-call; the job finishes, stored once."""
    marker = uuid.uuid4().hex
    with ServerThread(create_app(settings_for())) as srv, httpx.Client(base_url=srv.url) as c:
        c.post("/api/auth/register", json={"username": "alice", "password": PASSWORD})
        token = c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD}).json()[
            "access_token"
        ]
        c.cookies.clear()
        h = auth(token)
        c.put("/api/settings/keys/openrouter", json={"api_key": OPENROUTER_CANARY}, headers=h)
        body = json.dumps({"prompt": f"bye {marker} [emulator:latency:1]"}).encode()
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(
                b"POST /api/nano-banana/generate HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n".encode()
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            time.sleep(0.3)
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            items = c.get("/api/generations", headers=h).json()["items"]
            status = items[0]["status"] if items else None
            if status in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        assert status == "succeeded"
        img = items[0]["images"][0]
        data = c.get(img["url"], headers=h).content
        assert hashlib.sha256(data).hexdigest() == img["sha256"]
    assert len(upstream_requests(emulator, marker)) == 1


async def test_startup_marks_running_jobs_interrupted(
    db_url: str, settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    settings = settings_for(db_url)
    marker = uuid.uuid4().hex
    async with running(settings) as api:
        await _user_with_key(api)
        async with api.services.sessionmaker() as s, s.begin():
            user = await s.scalar(select(User))
            assert user is not None
            for status in ("running", "queued", "succeeded"):
                s.add(
                    Job(
                        user_id=user.id,
                        status=status,
                        kind="async",
                        request={"prompt": f"left {marker}", "n": 1, "provider": "openrouter"},
                        prompt=f"left {marker} {status}",
                        created_at=utcnow(),
                    )
                )
    async with running(settings) as api:
        async with api.services.sessionmaker() as s:
            jobs = {j.prompt.split()[-1]: j for j in await s.scalars(select(Job))}
        assert jobs["running"].status == "interrupted"
        assert jobs["running"].error_details == {"was": "running", "may_be_billed": True}
        assert jobs["queued"].status == "interrupted"
        assert jobs["succeeded"].status == "succeeded"
        h = auth(await api.login("alice"))
        view = (await api.client.get(f"/api/generations/{jobs['running'].id}", headers=h)).json()
        assert view["error"]["code"] == "job_interrupted"
        await asyncio.sleep(0.2)
    assert upstream_requests(emulator, marker) == []  # never re-run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_process(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NANOBANANA_DATA_DIR": str(settings.data_dir),
        "NANOBANANA_DATABASE_URL": settings.resolved_database_url,
        "NANOBANANA_DEMO": "false",
        "NANOBANANA_OPENROUTER_BASE_URL": str(settings.openrouter_base_url),
        "NANOBANANA_GEMINI_BASE_URL": str(settings.gemini_base_url),
        "NANOBANANA_ARGON2_TIME_COST": "2",
        "NANOBANANA_ARGON2_MEMORY_KIB": "19456",
        "NANOBANANA_ARGON2_PARALLELISM": "1",
    }
    code = (
        "from nanobanana.server import run; from nanobanana.server.settings import Settings; "
        f"run(Settings(), '127.0.0.1', {port})"
    )
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(log.read_text())


def _sign_up_with_key(url: str) -> dict[str, str]:
    """A user on the service at ``url``, with an OpenRouter key; their Authorization header."""
    account = {"username": "alice", "password": PASSWORD}
    httpx.post(f"{url}/api/auth/register", json=account)
    h = auth(httpx.post(f"{url}/api/auth/login", json=account).json()["access_token"])
    httpx.put(f"{url}/api/settings/keys/openrouter", json={"api_key": OPENROUTER_CANARY}, headers=h)
    return h


def test_kill9_during_the_upstream_call(
    settings_for: Callable[..., Settings], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """SIGKILL while the paid call is in flight: after a restart the job is interrupted,
    the call was made once, and it is never sent again."""
    settings = settings_for()
    port = _free_port()
    log = tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    marker = uuid.uuid4().hex
    proc = _start_process(settings, port, log)
    try:
        h = _sign_up_with_key(url)
        r = httpx.post(
            f"{url}/api/generations",
            json={"prompt": f"kill {marker} [emulator:latency:2]"},
            headers=h,
        )
        job_id = r.json()["id"]
        deadline = time.monotonic() + 10
        while not upstream_requests(emulator, marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert upstream_requests(emulator, marker), "the upstream call never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    async def restart() -> dict[str, Any]:
        async with running(settings) as api:
            r = await api.client.get(f"/api/generations/{job_id}", headers=h)
            await asyncio.sleep(0.3)
            return dict(r.json())

    job = asyncio.run(restart())
    assert job["status"] == "interrupted"
    assert job["error"]["may_be_billed"] is True
    assert len(upstream_requests(emulator, marker)) == 1
    assert not list(settings.images_dir.rglob("*.png"))
    assert OPENROUTER_CANARY not in log.read_text()


@pytest.mark.parametrize("route", ["async", "seed"])
def test_kill9_with_a_fan_out_half_done(
    settings_for: Callable[..., Settings],
    emulator: EmulatorServer,
    tmp_path: Path,
    route: str,
) -> None:
    """A 2-image request: the first call has returned its (billed) image, the second is still
    in flight when the service is SIGKILLed.  After a restart the image is there, with its
    provenance, its attempt and (when the call said) its cost; nothing is sent again."""
    settings = settings_for()
    port = _free_port()
    log = tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    marker = uuid.uuid4().hex
    # The first call answers at once, the second 60 s later.
    body = {"prompt": f"half [emulator:stagger:60:{marker}]", "num_images": 2}
    proc = _start_process(settings, port, log)
    sync_call: threading.Thread | None = None
    try:
        h = _sign_up_with_key(url)
        if route == "async":
            job_id = httpx.post(f"{url}/api/generations", json=body, headers=h).json()["id"]
        else:  # the seed endpoint answers only when both are done: it is cut off instead

            def call() -> None:
                with contextlib.suppress(httpx.TransportError):  # cut off by the kill
                    httpx.post(f"{url}/api/nano-banana/generate", json=body, headers=h, timeout=90)

            sync_call = threading.Thread(target=call)
            sync_call.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                items = httpx.get(f"{url}/api/generations", headers=h).json()["items"]
                if items:
                    break
                time.sleep(0.02)
            job_id = items[0]["id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            view = httpx.get(f"{url}/api/generations/{job_id}", headers=h).json()
            if view["images"]:
                break
            time.sleep(0.02)
        assert view["status"] == "running"
        assert len(upstream_requests(emulator, marker)) == 2  # both calls were sent
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if sync_call is not None:
            sync_call.join(10)

    async def restart() -> tuple[dict[str, Any], bytes]:
        async with running(settings) as api:
            r = await api.client.get(f"/api/generations/{job_id}", headers=h)
            job = dict(r.json())
            assert len(job["images"]) == 1, job
            image = await api.client.get(job["images"][0]["url"], headers=h)
            assert image.status_code == 200
            await asyncio.sleep(0.3)
            return job, image.content

    job, data = asyncio.run(restart())
    assert job["status"] == "interrupted"
    assert job["error"]["may_be_billed"] is True
    assert "kept" in job["error"]["message"]
    assert job["provider"] == "openrouter"
    image = job["images"][0]  # whichever of the two calls was answered first
    assert [(a["index"], a["status"]) for a in job["fallback"]] == [(image["index"], "ok")]
    if route == "seed":  # the whole answer had come: its price is known
        assert job["cost"] is not None and job["cost"] > 0
    assert hashlib.sha256(data).hexdigest() == image["sha256"]
    meta = read_metadata(data)
    assert marker in meta["prompt"] and meta["provider"] == "openrouter"
    assert meta["index"] == image["index"]
    assert len(upstream_requests(emulator, marker)) == 2  # nothing re-run
    assert OPENROUTER_CANARY not in log.read_text()


@pytest.mark.parametrize("grace", [0.05, 10.0])
async def test_graceful_shutdown(settings_for: Callable[..., Settings], grace: float) -> None:
    settings = settings_for(shutdown_grace_seconds=grace, max_concurrent_jobs_per_user=5)
    ids = []
    async with running(settings) as api:
        h = await _user_with_key(api)
        for i in range(5):
            r = await api.client.post(
                "/api/generations", json={"prompt": f"stop {i} [emulator:latency:0.6]"}, headers=h
            )
            ids.append(r.json()["id"])
        await asyncio.sleep(0.1)
    async with running(settings) as api, api.services.sessionmaker() as s:
        statuses = {j.id: j.status for j in await s.scalars(select(Job))}
    expected = "interrupted" if grace < 0.5 else "succeeded"
    assert [statuses[i] for i in ids] == [expected] * 5
    pngs = list(settings.images_dir.rglob("*.png"))
    assert len(pngs) == (0 if expected == "interrupted" else 5)


async def test_fifty_concurrent_jobs(
    db_url: str, settings_for: Callable[..., Settings], fast_emulator: EmulatorServer
) -> None:
    settings = settings_for(
        db_url,
        openrouter_base_url=fast_emulator.openrouter_url,
        max_concurrent_jobs=50,
        max_concurrent_jobs_per_user=50,
        max_queued_jobs_per_user=60,
        generations_per_minute=100,
    )
    async with running(settings) as api:
        h = await _user_with_key(api)
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                api.client.post(
                    "/api/generations",
                    json={"prompt": f"many {i} [emulator:latency:0.5]"},
                    headers=h,
                )
                for i in range(50)
            )
        )
        assert [r.status_code for r in answers] == [202] * 50
        for r in answers:
            await api.services.job_manager.wait(r.json()["id"])
        elapsed = time.monotonic() - started
        async with api.services.sessionmaker() as s:
            jobs = list(await s.scalars(select(Job)))
        assert len(jobs) == 50
        assert {j.status for j in jobs} == {"succeeded"}, {j.error_message for j in jobs}
        assert elapsed < 20


async def test_per_user_queue_limit(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(max_queued_jobs_per_user=2, max_concurrent_jobs_per_user=1)
    async with running(settings) as api:
        a = await _user_with_key(api, "alice")
        b = await _user_with_key(api, "bob")
        body = {"prompt": "queue [emulator:latency:0.3]"}
        codes = [
            (await api.client.post("/api/generations", json=body, headers=a)).status_code
            for _ in range(3)
        ]
        assert codes == [202, 202, 429]
        assert (await api.client.post("/api/generations", json=body, headers=b)).status_code == 202


async def test_refused_requests_do_not_use_the_generation_rate(
    settings_for: Callable[..., Settings], fast_emulator: EmulatorServer
) -> None:
    """Only accepted generations count against generations_per_minute: 60 requests refused
    with 422 or 400, and the losers of an idempotency race (409 or a replay), leave the budget
    whole for the valid requests that follow."""
    settings = settings_for(
        generations_per_minute=3, openrouter_base_url=fast_emulator.openrouter_url
    )
    async with running(settings) as api:
        a = await _user_with_key(api, "alice")
        refused = [
            *({"prompt": "x", "model": f"no-such-model-{i}"} for i in range(40)),
            *({"prompt": "x", "aspect_ratio": "7:3"} for _ in range(10)),
            *({"prompt": "x", "provider": "google"} for _ in range(10)),  # no Google key
        ]
        for body in refused:
            r = await api.client.post("/api/generations", json=body, headers=a)
            assert r.status_code in (400, 422), r.text
        race = await asyncio.gather(
            *(
                api.client.post(
                    "/api/generations",
                    json={"prompt": "once [emulator:latency:0.3]"},
                    headers={**a, "Idempotency-Key": "race-1"},
                )
                for _ in range(20)
            )
        )
        codes = sorted(r.status_code for r in race)
        assert codes.count(202) + codes.count(200) == len(codes) - codes.count(409)
        assert len({r.json()["id"] for r in race if r.status_code != 409}) == 1
        ok = [
            await api.client.post("/api/generations", json={"prompt": f"ok {i}"}, headers=a)
            for i in range(3)
        ]
        assert [r.status_code for r in ok] == [202, 202, 429]  # the race counted once
        for r in [*race, *ok]:
            if r.status_code in (200, 202):
                await api.services.job_manager.wait(r.json()["id"])


async def test_generation_rate_limit(
    settings_for: Callable[..., Settings], fast_emulator: EmulatorServer
) -> None:
    """B6: 100 requests at once from one user: the configured 10 run, the rest get 429 with
    Retry-After; another user is unaffected, and replays are not counted."""
    settings = settings_for(
        generations_per_minute=10, openrouter_base_url=fast_emulator.openrouter_url
    )
    async with running(settings) as api:
        a = await _user_with_key(api, "alice")
        b = await _user_with_key(api, "bob")
        answers = await asyncio.gather(
            *(
                api.client.post("/api/generations", json={"prompt": f"burst {i}"}, headers=a)
                for i in range(100)
            )
        )
        codes = [r.status_code for r in answers]
        assert codes.count(202) == 10 and codes.count(429) == 90
        limited = next(r for r in answers if r.status_code == 429)
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert (
            await api.client.post("/api/generations", json={"prompt": "b"}, headers=b)
        ).status_code == 202
        for r in answers:
            if r.status_code == 202:
                await api.services.job_manager.wait(r.json()["id"])
        async with api.services.sessionmaker() as s:
            assert len(list(await s.scalars(select(Job)))) == 11


async def test_a_job_waiting_for_its_turn_can_be_cancelled(
    settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """One running job per user: the second waits, is cancelled, and is never sent; its event
    stream ends with `done` (failed, cancelled); the seed request waiting for it gets 409."""
    from .test_leases import wait_status

    settings = settings_for(max_concurrent_jobs_per_user=1)
    marker = uuid.uuid4().hex
    async with running(settings) as api:
        h = await _user_with_key(api, "ann")
        first = await api.client.post(
            "/api/generations", json={"prompt": f"slow {marker} [emulator:latency:1.5]"}, headers=h
        )
        second = await api.client.post(
            "/api/generations", json={"prompt": f"second {marker}"}, headers=h
        )
        job_id = second.json()["id"]
        seed = asyncio.create_task(
            api.client.post(
                "/api/nano-banana/generate", json={"prompt": f"third {marker}"}, headers=h
            )
        )
        await asyncio.sleep(0.3)
        r = await api.client.post(f"/api/generations/{job_id}/cancel", headers=h)
        assert r.status_code == 200 and r.json()["error"]["code"] == "job_cancelled", r.text
        events = (await api.client.get(f"/api/generations/{job_id}/events", headers=h)).text
        assert "event: done" in events and '"cancelled"' in events
        listed = (await api.client.get("/api/generations", headers=h)).json()["items"]
        third = next(j for j in listed if j["prompt"] == f"third {marker}")
        r = await api.client.post(f"/api/generations/{third['id']}/cancel", headers=h)
        assert r.status_code == 200
        answer = await seed
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "job_cancelled"
        done = await wait_status(api, first.json()["id"], "succeeded", "failed")
        assert done.status == "succeeded"
    assert upstream_requests(emulator, f"second {marker}") == []
    assert upstream_requests(emulator, f"third {marker}") == []


async def test_a_running_job_cancelled_stops_its_call_and_keeps_what_arrived(
    settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """Two images, the second 4 s behind the first: cancelled once the first has landed, the
    job ends `failed`/`job_cancelled` with `may_be_billed` and the image that arrived; the call
    is stopped at once (the user's one running slot is free for the next job, long before the
    second image was due) and nothing the stopped call did later changes the record.  A seed
    request waiting on a running job that is cancelled gets 409 `job_cancelled`; a job waiting
    to retry a 503 sends no retry once cancelled."""
    from .test_leases import wait_status

    settings = settings_for(max_concurrent_jobs_per_user=1, retry_max_attempts=3)
    marker = uuid.uuid4().hex
    async with running(settings) as api:
        h = await _user_with_key(api, "ann")
        r = await api.client.post(
            "/api/generations",
            json={"prompt": f"two {marker} [emulator:stagger:4:{marker}]", "num_images": 2},
            headers=h,
        )
        job_id = r.json()["id"]
        for _ in range(200):
            got = (await api.client.get(f"/api/generations/{job_id}", headers=h)).json()
            if got["images"]:
                break
            await asyncio.sleep(0.02)
        assert got["status"] == "running" and len(got["images"]) == 1, got
        r = await api.client.post(f"/api/generations/{job_id}/cancel", headers=h)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["status"] == "failed" and out["error"]["code"] == "job_cancelled"
        assert out["error"]["may_be_billed"] is True and len(out["images"]) == 1
        started = time.monotonic()
        r = await api.client.post(
            "/api/nano-banana/generate", json={"prompt": f"next {marker}"}, headers=h
        )
        assert r.status_code == 200, r.text  # the slot was free: the call had stopped
        assert time.monotonic() - started < 2.5
        assert not api.services.job_manager.is_running_here(job_id)
        events = (await api.client.get(f"/api/generations/{job_id}/events", headers=h)).text
        assert "event: done" in events and "job_cancelled" in events
        again = await api.client.post(f"/api/generations/{job_id}/cancel", headers=h)
        assert again.status_code == 200 and again.json()["error"]["code"] == "job_cancelled"

        seed = asyncio.create_task(
            api.client.post(
                "/api/nano-banana/generate",
                json={"prompt": f"slow {marker} [emulator:latency:5]"},
                headers=h,
            )
        )
        for _ in range(200):
            listed = (await api.client.get("/api/generations", headers=h)).json()["items"]
            slow = next((j for j in listed if j["prompt"].startswith("slow")), None)
            if slow is not None and slow["status"] == "running":
                break
            await asyncio.sleep(0.02)
        assert slow is not None and slow["status"] == "running"
        r = await api.client.post(f"/api/generations/{slow['id']}/cancel", headers=h)
        assert r.status_code == 200 and r.json()["images"] == []
        answer = await asyncio.wait_for(seed, 2)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "job_cancelled"

        await asyncio.sleep(4.5 - (time.monotonic() - started))  # the second image's time
        final = (await api.client.get(f"/api/generations/{job_id}", headers=h)).json()
        assert final["status"] == "failed" and final["error"]["code"] == "job_cancelled"
        assert [i["index"] for i in final["images"]] == [0]
        done = await wait_status(api, slow["id"], "failed")
        assert done.error_code == "cancelled"

        # A 503 with Retry-After: 1 is retried a second later; cancelled meanwhile, it is not.
        busy = f"busy {marker} [emulator:server-error:503]"
        r = await api.client.post("/api/generations", json={"prompt": busy}, headers=h)
        busy_id = r.json()["id"]
        for _ in range(200):
            if upstream_requests(emulator, f"busy {marker}"):
                break
            await asyncio.sleep(0.02)
        r = await api.client.post(f"/api/generations/{busy_id}/cancel", headers=h)
        assert r.status_code == 200 and r.json()["error"]["code"] == "job_cancelled"
        await asyncio.sleep(2.5)
    assert len(upstream_requests(emulator, f"two {marker}")) == 2  # both were sent at once
    assert len(upstream_requests(emulator, f"busy {marker}")) == 1  # and no retry after it
