"""Forwarded headers are believed only from configured proxies (``nanobanana serve``, for real).

Behind no proxy, a client that forges X-Forwarded-For must not choose the address the login
limits count it under."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ..conftest import LEAKY_VARS

NANOBANANA = Path(sys.executable).with_name("nanobanana")
PASSWORD = "correct horse battery"


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in LEAKY_VARS and not k.startswith("NANOBANANA_")
    }
    clean.update(
        NANOBANANA_ARGON2_TIME_COST="1",
        NANOBANANA_ARGON2_MEMORY_KIB="1024",
        NANOBANANA_ARGON2_PARALLELISM="1",
        **env,
    )
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [NANOBANANA, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=clean,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail((tmp_path / "serve.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def failed_logins(url: str, count: int) -> list[int]:
    """``count`` wrong passwords, each with a different forged X-Forwarded-For."""
    statuses = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for i in range(count):
            r = c.post(
                "/api/auth/login",
                json={"username": f"user{i}", "password": "wrong-password"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            statuses.append(r.status_code)
    return statuses


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(tmp_path: Path) -> None:
    with serving(tmp_path) as url:
        statuses = failed_logins(url, 12)
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]


def test_a_configured_proxy_is_believed(tmp_path: Path) -> None:
    with serving(tmp_path, NANOBANANA_TRUSTED_PROXIES="127.0.0.1") as url:
        statuses = failed_logins(url, 12)
    assert statuses == [401] * 12  # twelve different clients behind the proxy
