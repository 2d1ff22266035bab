"""Every face of the service picks the model and provider by one rule
(``nanobanana.request.resolve_target``): the seed endpoint, the jobs API and the OpenRouter-
and OpenAI-compatible endpoints answer the same user, with the same keys and saved defaults,
the same way."""

from __future__ import annotations

from typing import Any

from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Api

CHAT = "/api/v1/chat/completions"


async def _faces(api: Api, h: dict[str, str]) -> dict[str, Any]:
    """What each face does with "a fox" and no model or provider: the provider its job went
    to, or the status and error code of its refusal."""
    c = api.client
    chat = {"messages": [{"role": "user", "content": "a fox"}], "modalities": ["image", "text"]}
    calls = {
        "seed": ("/api/nano-banana/generate", {"prompt": "a fox"}),
        "chat": (CHAT, chat),
        "images": ("/v1/images/generations", {"prompt": "a fox"}),
    }
    out: dict[str, Any] = {}
    for face, (path, body) in calls.items():
        r = await c.post(path, json=body, headers=h)
        if r.status_code == 200:
            hist = await c.get("/api/generations", params={"limit": 1}, headers=h)
            out[face] = hist.json()["items"][0]["provider"]
        else:
            out[face] = (r.status_code, r.json()["error"]["message"])
    return out


async def test_with_one_key_every_face_uses_it(api: Api) -> None:
    h = await api.user("google-only")
    await api.put_key(h, "google", GOOGLE_CANARY)
    assert await _faces(api, h) == {"seed": "google", "chat": "google", "images": "google"}


async def test_both_keys_and_no_defaults_openrouter_first(api: Api) -> None:
    h = await api.user("both")
    await api.put_key(h, "google", GOOGLE_CANARY)
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    assert await _faces(api, h) == {
        "seed": "openrouter",
        "chat": "openrouter",
        "images": "openrouter",
    }


async def test_a_saved_default_provider_without_its_key_is_said_not_dodged(api: Api) -> None:
    h = await api.user("defaults-google")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await api.client.put(
        "/api/settings/defaults",
        json={"provider": "google", "model": None, "aspect_ratio": None, "image_size": None},
        headers=h,
    )
    assert r.status_code == 200, r.text
    faces = await _faces(api, h)
    assert {status for status, _ in faces.values()} == {400}
    assert len({message for _, message in faces.values()}) == 1  # one message, three dialects
    assert "google" in faces["seed"][1].lower()
