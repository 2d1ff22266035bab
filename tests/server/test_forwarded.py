"""Forwarded headers are believed only from configured proxies (``nanobanana serve``, for real).

Behind no proxy, a client that forges X-Forwarded-For must not choose the address the login
limits count it under."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ..support import clean_env, serve_process

NANOBANANA = Path(sys.executable).with_name("nanobanana")
PASSWORD = "correct horse battery"


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[str]:
    fast_hashes = {
        "NANOBANANA_ARGON2_TIME_COST": "1",
        "NANOBANANA_ARGON2_MEMORY_KIB": "1024",
        "NANOBANANA_ARGON2_PARALLELISM": "1",
    }
    with serve_process(NANOBANANA, tmp_path / "data", clean_env(**fast_hashes, **env)) as url:
        yield url


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
