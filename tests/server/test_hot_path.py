"""The generation hot path: cached provider keys, running slots, and the record handed over
in memory."""

from __future__ import annotations

import asyncio
import hashlib

import pybase64
from sqlalchemy import select

from nanobanana.server.db.models import Job
from nanobanana.server.slots import Slots

from .conftest import OPENROUTER_CANARY, Api


async def test_replaced_or_deleted_key_is_used_by_the_next_generation(api: Api) -> None:
    c = api.client
    h = await api.user("keyswap")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await c.post("/api/nano-banana/generate", json={"prompt": "first"}, headers=h)
    assert r.status_code == 200, r.text
    # The emulator refuses any key with "invalid" in it: the new key must be the one sent.
    await api.put_key(h, "openrouter", "sk-or-v1-CANARY-invalid-0123456789abcdef")
    r = await c.post("/api/nano-banana/generate", json={"prompt": "second"}, headers=h)
    assert r.status_code != 200
    assert r.json()["error"]["code"] in (
        "invalid_api_key",
        "authentication_failed",
        "upstream_failed",
    )
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await c.post("/api/nano-banana/generate", json={"prompt": "third"}, headers=h)
    assert r.status_code == 200, r.text
    assert (await c.delete("/api/settings/keys/openrouter", headers=h)).status_code == 204
    r = await c.post("/api/nano-banana/generate", json={"prompt": "fourth"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_api_key"
    assert "CANARY" not in repr(api.services.key_cache)


async def test_revoked_token_refused_on_the_next_request(api: Api) -> None:
    h = await api.user("revoker")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    assert (await api.client.get("/api/auth/me", headers=h)).status_code == 200
    assert (await api.client.post("/api/auth/logout", headers=h)).status_code in (200, 204)
    r = await api.client.post("/api/nano-banana/generate", json={"prompt": "x"}, headers=h)
    assert r.status_code == 401


async def test_seed_answer_matches_the_stored_record(api: Api) -> None:
    """The answer is built from the record handed over in memory; it must be what was stored."""
    c = api.client
    h = await api.user("record")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await c.post("/api/nano-banana/generate", json={"prompt": "kept"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    job = (await c.get(f"/api/generations/{body['id']}", headers=h)).json()
    assert job["status"] == "succeeded" and job["fallback"] and job["timings"]["running_s"] >= 0
    assert job["started_at"] and job["finished_at"] and job["usage"] == body["usage"]
    stored = (await c.get(job["images"][0]["url"], headers=h)).content
    assert pybase64.b64decode(body["images"][0]) == stored
    assert hashlib.sha256(stored).hexdigest() == job["images"][0]["sha256"]
    async with api.services.sessionmaker() as s:
        row = await s.scalar(select(Job).where(Job.id == body["id"]))
        assert row is not None and row.status == "succeeded" and row.started_at is not None


async def test_slots_limits_and_order() -> None:
    slots = Slots(total=2, per_user=1)
    assert slots.try_take("a") and not slots.try_take("a")
    assert slots.try_take("b") and not slots.try_take("c")  # global limit
    order: list[str] = []

    async def run(user: str) -> None:
        await slots.take(user)
        order.append(user)

    waiting = [asyncio.create_task(run(u)) for u in ("a", "c", "d")]
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(run("e"))
    await asyncio.sleep(0)
    cancelled.cancel()
    slots.give("b")  # "a" is at its own limit: "c" goes first, never blocked by "a"
    await asyncio.sleep(0)
    assert order == ["c"]
    slots.give("a")
    await asyncio.sleep(0)
    assert order == ["c", "a"]
    slots.give("c")
    await asyncio.gather(*waiting)
    assert order == ["c", "a", "d"] and slots.running == 2
    slots.give("a")
    slots.give("d")
    assert slots.running == 0 and slots.try_take("e")
