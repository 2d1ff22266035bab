"""The scale-out as deployed: two ``nanobanana serve`` web processes (NANOBANANA_JOBS=external)
and two ``nanobanana worker`` processes, each with its own data folder, sharing only a real
PostgreSQL, a real Redis and a real S3-compatible bucket (SeaweedFS).  Workers are SIGKILLed
mid-flight, repeatedly; every job ends, no prompt reaches the upstream twice, and every image
is served by both web processes from the bucket."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from nanobanana.emulator import EmulatorServer

from ..support import S3Server, clean_env, postgres_database, serve_process
from .conftest import OPENROUTER_CANARY, PASSWORD, upstream_requests
from .test_jobs import _parse_sse

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.s3,
]

NANOBANANA = Path(sys.executable).with_name("nanobanana")
LEASE_SECONDS = 2
FINAL = {"succeeded", "failed", "blocked", "interrupted"}
DB_CANARY = "db-password-CANARY-7f3a"


class Cluster:
    """The processes, their environment and their logs."""

    def __init__(self, env: dict[str, str], root: Path) -> None:
        self.env = env
        self.root = root
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start_worker(self) -> subprocess.Popen[bytes]:
        n = len(self.logs)
        data = self.root / f"worker{n}"
        data.mkdir(parents=True)
        log_path = data / "worker.log"
        self.logs.append(log_path)
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [NANOBANANA, "worker", "--data-dir", str(data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + 60
        while "ready" not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextmanager
def cluster(
    emulator: EmulatorServer, s3: S3Server, tmp_path: Path
) -> Iterator[tuple[Cluster, str, str]]:
    """Two web processes (their URLs) and two workers."""
    with postgres_database() as database, ExitStack() as stack:
        env = clean_env(
            # PostgreSQL here trusts loopback; the password is a canary for the logs.
            NANOBANANA_DATABASE_URL=database.replace("postgres@", f"postgres:{DB_CANARY}@"),
            NANOBANANA_REDIS_URL="redis://127.0.0.1:6379/0",
            NANOBANANA_STORAGE_URL=f"s3://{s3.bucket}/cluster-{uuid.uuid4().hex[:8]}",
            NANOBANANA_S3_ENDPOINT_URL=s3.endpoint,
            NANOBANANA_JOBS="external",
            NANOBANANA_MASTER_KEYS=Fernet.generate_key().decode(),
            NANOBANANA_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
            NANOBANANA_OPENROUTER_BASE_URL=emulator.openrouter_url,
            NANOBANANA_GEMINI_BASE_URL=emulator.gemini_url,
            NANOBANANA_RETRY_MAX_ATTEMPTS="1",
            NANOBANANA_GENERATIONS_PER_MINUTE="40",
            NANOBANANA_SHUTDOWN_GRACE_SECONDS="2",
            NANOBANANA_ARGON2_TIME_COST="2",
            NANOBANANA_ARGON2_MEMORY_KIB="19456",
            NANOBANANA_ARGON2_PARALLELISM="1",
            **s3.env(),
        )
        a = stack.enter_context(serve_process(NANOBANANA, tmp_path / "web-a", env, "--no-demo"))
        b = stack.enter_context(serve_process(NANOBANANA, tmp_path / "web-b", env, "--no-demo"))
        group = Cluster({**env, "NANOBANANA_DEMO": "false"}, tmp_path)
        stack.callback(group.stop)
        group.start_worker()
        group.start_worker()
        yield group, a, b


def sign_in(url: str, name: str) -> dict[str, str]:
    body = {"username": name, "password": PASSWORD}
    assert httpx.post(f"{url}/api/auth/register", json=body).status_code == 201
    r = httpx.post(f"{url}/api/auth/login", json=body)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_two_web_processes_and_two_workers_survive_killed_workers(
    emulator: EmulatorServer, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex
    with cluster(emulator, s3_server, tmp_path) as (group, a, b):
        h = sign_in(a, f"ann{marker[:6]}")
        r = httpx.put(
            f"{b}/api/settings/keys/openrouter", json={"api_key": OPENROUTER_CANARY}, headers=h
        )
        assert r.status_code == 200, r.text

        # Generations sent alternately to both web processes, while workers are killed.
        prompts = {}
        after_kills = []
        for i in range(12):
            url = (a, b)[i % 2]
            prompt = f"cluster {marker}-{i:02d} [emulator:latency:1]"
            r = httpx.post(f"{url}/api/generations", json={"prompt": prompt}, headers=h)
            assert r.status_code == 202, r.text
            prompts[r.json()["id"]] = prompt
            if i > 7:
                after_kills.append(r.json()["id"])
            if i in (3, 7):  # mid-flight: kill the first live worker, start another
                victim = next(p for p in group.workers if p.poll() is None)
                victim.send_signal(signal.SIGKILL)
                victim.wait(10)
                group.start_worker()

        # An event stream on A follows a job sent to B (run by some worker) to done.
        r = httpx.post(f"{b}/api/generations", json={"prompt": f"followed {marker}"}, headers=h)
        followed = r.json()["id"]
        prompts[followed] = f"followed {marker}"
        events = sse_events(f"{a}/api/generations/{followed}/events", h)
        assert events[-1][0] == "done" and events[-1][1]["status"] == "succeeded", events
        assert "running" in [e for e, _ in events]

        # The seed endpoint on A answers with what a worker made.
        r = httpx.post(
            f"{a}/api/nano-banana/generate",
            json={"prompt": f"seed {marker}"},
            headers=h,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["images"]) == 1

        # Every job ends within the lease (and the upstream latency) after the last kill.
        deadline = time.monotonic() + 30
        while True:
            jobs = {jid: job_view(a, jid, h) for jid in prompts}
            if all(j["status"] in FINAL for j in jobs.values()):
                break
            assert time.monotonic() < deadline, {k: v["status"] for k, v in jobs.items()}
            time.sleep(0.2)

        for name, value in s3_server.env().items():
            monkeypatch.setenv(name, value)
        store = s3_store(group.env)
        for jid, job in jobs.items():
            sent = len(upstream_requests(emulator, prompts[jid].split(" [")[0]))
            assert sent <= 1, (jid, job["status"], sent)  # never twice
            if job["status"] == "interrupted":
                # A call that reached upstream is never reported unbilled.  A job killed while
                # running may not have sent its call yet: "may be billed" is then the honest
                # answer, since its process could not know.
                if sent == 1:
                    assert job["error"]["may_be_billed"] is True, job
                if job["error"]["may_be_billed"] is False:
                    assert job["error"]["was"] == "queued" and sent == 0, job
                continue
            assert job["status"] == "succeeded", job
            assert sent == 1
            [image] = job["images"]
            from_a = httpx.get(f"{a}{image['url']}", headers=h)
            from_b = httpx.get(f"{b}{image['url']}", headers=h)
            assert from_a.status_code == from_b.status_code == 200
            assert from_a.content == from_b.content
            key = f"{image['sha256'][:2]}/{image['sha256']}.png"
            assert store_get(store, key) == from_a.content
        # Only what a killed worker had claimed was lost (and said so); what came after the
        # last kill ran.
        assert len(after_kills) == 4
        assert all(jobs[jid]["status"] == "succeeded" for jid in [*after_kills, followed])

        # A token revoked on A is refused on B within a second.
        h2 = sign_in(a, f"bob{marker[:6]}")
        assert httpx.get(f"{b}/api/auth/me", headers=h2).status_code == 200
        assert httpx.post(f"{a}/api/auth/logout", headers=h2).status_code == 204
        revoked_at = time.monotonic()
        while httpx.get(f"{b}/api/auth/me", headers=h2).status_code != 401:
            assert time.monotonic() - revoked_at < 1.0, "B still accepts the revoked token"
            time.sleep(0.02)

        # A user's rate limit holds across both web processes (40 per minute, all counted).
        h3 = sign_in(b, f"cat{marker[:6]}")
        httpx.put(
            f"{a}/api/settings/keys/openrouter", json={"api_key": OPENROUTER_CANARY}, headers=h3
        )
        codes = [
            httpx.post(
                f"{(a, b)[i % 2]}/api/generations",
                json={"prompt": f"limit {marker} {i}"},
                headers=h3,
            ).status_code
            for i in range(42)
        ]
        assert codes.count(202) == 40 and codes[-2:] == [429, 429], codes

    logs = "".join(p.read_text() for p in group.logs)
    logs += "".join((tmp_path / w / "serve.log").read_text() for w in ("web-a", "web-b"))
    for secret in (OPENROUTER_CANARY, DB_CANARY, s3_server.secret_access_key):
        assert secret not in logs
    assert "Traceback" not in logs


def job_view(url: str, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = httpx.get(f"{url}/api/generations/{job_id}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def sse_events(url: str, headers: dict[str, str]) -> list[tuple[str, Any]]:
    """The whole event stream (it ends after ``done``), as (event, data) pairs."""
    r = httpx.get(url, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return _parse_sse(r.text)


def s3_store(env: dict[str, str]) -> Any:
    from nanobanana.server.storage.s3 import S3ImageStore

    return S3ImageStore(env["NANOBANANA_STORAGE_URL"], env["NANOBANANA_S3_ENDPOINT_URL"])


def store_get(store: Any, key: str) -> bytes:
    import asyncio

    async def get() -> bytes:
        data: bytes = await store.get(key)
        return data

    return asyncio.run(get())
