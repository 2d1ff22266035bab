"""The jobs' shared library clients (``server/clientpool.py``)."""

from __future__ import annotations

from typing import Any

from nanobanana.server.clientpool import ClientPool
from nanobanana.server.upstream import Upstream

from .conftest import OPENROUTER_CANARY, Api


class FakeClient:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def upstream(key: str) -> Upstream:
    return Upstream({"openrouter": key}, {"openrouter": None}, False, {"openrouter": "user"})


def pool(clock: Clock, **options: Any) -> ClientPool:
    return ClientPool(FakeClient, clock=clock, **options)  # type: ignore[arg-type]


async def test_jobs_with_the_same_keys_share_a_client() -> None:
    p = pool(Clock())
    a = p.acquire(upstream("key-a"))
    assert p.acquire(upstream("key-a")) is a
    b = p.acquire(upstream("key-b"))
    assert b is not a
    # Same keys, another base URL or a synthetic upstream: another client.
    other_url = Upstream({"openrouter": "key-a"}, {"openrouter": "http://x"}, False, {})
    assert p.acquire(other_url) is not a


async def test_an_unused_client_is_closed_after_its_idle_time_never_one_in_use() -> None:
    clock = Clock()
    p = pool(clock, idle_seconds=60)
    a = p.acquire(upstream("key-a"))
    b = p.acquire(upstream("key-b"))
    await p.release(upstream("key-a"))
    clock.now = 59
    p.acquire(upstream("key-c"))
    await p.release(upstream("key-c"))
    assert not a.closed  # idle, within its time: reused by the next job
    assert p.acquire(upstream("key-a")) is a
    await p.release(upstream("key-a"))
    clock.now = 200
    p.acquire(upstream("key-d"))
    await p.release(upstream("key-d"))  # any release closes what idled too long
    assert a.closed and not b.closed  # b is still in use, however old
    assert p.acquire(upstream("key-a")) is not a  # a new one after that


async def test_past_max_idle_the_longest_unused_is_closed_first() -> None:
    p = pool(Clock(), max_idle=1)
    a, b = p.acquire(upstream("key-a")), p.acquire(upstream("key-b"))
    await p.release(upstream("key-a"))
    await p.release(upstream("key-b"))
    assert a.closed and not b.closed
    await p.aclose()
    assert b.closed


async def test_it_keeps_no_key_but_in_the_client() -> None:
    p = pool(Clock())
    p.acquire(upstream(OPENROUTER_CANARY))
    assert "CANARY" not in repr(p) and "clients=1" in repr(p)
    assert not any(b"CANARY" in key for key in p._clients)


async def test_one_user_s_generations_run_on_one_client(api: Api) -> None:
    h = await api.user("pooled")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    clients = api.services.job_manager._clients
    for prompt in ("one", "two"):
        r = await api.client.post("/api/nano-banana/generate", json={"prompt": prompt}, headers=h)
        assert r.status_code == 200, r.text
        assert repr(clients) == "ClientPool(clients=1, idle=1)"
    # A new key: the next generation uses a client with it.
    await api.put_key(h, "openrouter", OPENROUTER_CANARY.replace("0123", "4567"))
    r = await api.client.post("/api/nano-banana/generate", json={"prompt": "3"}, headers=h)
    assert r.status_code == 200, r.text
    assert repr(clients) == "ClientPool(clients=2, idle=2)"
