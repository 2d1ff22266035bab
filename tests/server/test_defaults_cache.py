"""Saved defaults are cached per process; a change is seen by the very next generation."""

from __future__ import annotations

import base64

from nanobanana.server.defaultscache import Defaults, DefaultsCache

from ..support import image_size
from .conftest import OPENROUTER_CANARY, Api

GEN = "/api/nano-banana/generate"


async def _put_defaults(api: Api, h: dict[str, str], ratio: str | None) -> None:
    r = await api.client.put(
        "/api/settings/defaults",
        json={"provider": "openrouter", "model": None, "aspect_ratio": ratio, "image_size": None},
        headers=h,
    )
    assert r.status_code == 200, r.text


async def test_settings_change_is_seen_by_the_next_generation(api: Api) -> None:
    c = api.client
    h = await api.user("ratios")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await _put_defaults(api, h, "9:16")
    r = await c.post(GEN, json={"prompt": "tall"}, headers=h)
    assert r.status_code == 200, r.text
    assert image_size(base64.b64decode(r.json()["images"][0])) == (768, 1344)
    # Cached now; the PUT must drop it so that the very next generation uses the new ratio.
    await _put_defaults(api, h, "16:9")
    r = await c.post(GEN, json={"prompt": "wide"}, headers=h)
    assert r.status_code == 200, r.text
    assert image_size(base64.b64decode(r.json()["images"][0])) == (1344, 768)
    await _put_defaults(api, h, None)
    r = await c.post(GEN, json={"prompt": "square"}, headers=h)
    assert image_size(base64.b64decode(r.json()["images"][0])) == (1024, 1024)


async def test_defaults_are_per_user(api: Api) -> None:
    c = api.client
    a = await api.user("tall-user")
    b = await api.user("plain-user")
    for h in (a, b):
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await _put_defaults(api, a, "9:16")
    for h, size in ((a, (768, 1344)), (b, (1024, 1024)), (a, (768, 1344))):
        r = await c.post(GEN, json={"prompt": "who"}, headers=h)
        assert r.status_code == 200, r.text
        assert image_size(base64.b64decode(r.json()["images"][0])) == size


def test_cache_expires_and_ignores_reads_older_than_a_change() -> None:
    now = [0.0]
    cache = DefaultsCache(ttl=30, clock=lambda: now[0])
    old = Defaults("openrouter", None, "9:16", None)
    assert cache.get("u") == (False, None)
    epoch = cache.epoch()  # a read starts...
    cache.forget("u")  # ...a PUT commits meanwhile...
    cache.put("u", old, epoch)  # ...the read's (possibly old) row is not kept
    assert cache.get("u") == (False, None)
    cache.put("u", None, cache.epoch())  # "no defaults saved" is cached too
    assert cache.get("u") == (True, None)
    cache.put("u", old, cache.epoch())
    assert cache.get("u") == (True, old)
    now[0] = 31
    assert cache.get("u") == (False, None)
