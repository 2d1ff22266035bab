"""Models only a provider's live listing has, in the service: usable by id from every face,
shown by ``GET /api/nano-banana/models``, shared by the processes of one data folder and
refreshed in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nanobanana.emulator import EmulatorServer
from nanobanana.server import listings
from nanobanana.server.settings import Settings

from .conftest import OPENROUTER_CANARY, Api, running

GPT_IMAGE = "openai/gpt-5-image-mini"  # text and image out
KLEIN = "black-forest-labs/flux.2-klein-4b"  # image only


def listing_calls(emu: EmulatorServer) -> list[str]:
    return [
        r["service"]
        for r in emu.requests()
        if r["method"] == "GET" and r["path"].endswith("/models")
    ]


def sent(emu: EmulatorServer) -> dict[str, list[str]]:
    """The model and modalities of every chat completion the emulator saw."""
    return {
        r["body"]["model"]: r["body"].get("modalities")
        for r in emu.requests()
        if r["method"] == "POST" and r["path"].endswith("/chat/completions")
    }


async def models(api: Api, h: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = await api.client.get("/api/nano-banana/models", headers=h)
    assert r.status_code == 200, r.text
    return {m["id"]: m for m in r.json()["models"]}


async def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not seen in time")


async def test_a_listed_model_works_by_id_from_every_face(api: Api, emu: EmulatorServer) -> None:
    """Without server keys the service still reads OpenRouter's public listing, in the
    background and without a key; what it lists is then usable by id everywhere."""
    await wait_for(lambda: api.services.catalog.find(GPT_IMAGE) is not None)
    [background] = [r for r in emu.requests() if r["path"].endswith("/models")]
    assert background["auth_header"] is None
    h = await api.user("discoverer")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    assert (await models(api, h))[GPT_IMAGE]["discovered"]

    seed = await api.client.post(
        "/api/nano-banana/generate",
        json={"prompt": "a fox", "model": GPT_IMAGE, "num_images": 1},
        headers=h,
    )
    assert seed.status_code == 200, seed.text
    assert seed.json()["model"] == GPT_IMAGE
    assert listing_calls(emu) == ["openrouter"]  # the background's, and no other

    chat = await api.client.post(
        "/api/v1/chat/completions",
        json={
            "model": KLEIN,
            "messages": [{"role": "user", "content": "a fox"}],
            "modalities": ["image"],
        },
        headers=h,
    )
    assert chat.status_code == 200, chat.text
    images = await api.client.post(
        "/v1/images/generations", json={"prompt": "a fox", "model": GPT_IMAGE}, headers=h
    )
    assert images.status_code == 200, images.text
    assert listing_calls(emu) == ["openrouter"]
    # What the listing says is used: an image-only model is not asked for text.
    assert sent(emu) == {GPT_IMAGE: ["image", "text"], KLEIN: ["image"]}

    listed = await models(api, h)
    assert listed[GPT_IMAGE]["discovered"] and listed[KLEIN]["discovered"]
    assert listed[GPT_IMAGE]["provider"] == "openrouter" and listed[GPT_IMAGE]["available"]
    assert not listed["gemini-3.1-flash-image"]["discovered"]


async def test_an_id_no_listing_has_is_refused_after_one_listing(
    api: Api, emu: EmulatorServer
) -> None:
    h = await api.user("typo")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await api.client.post(
        "/api/nano-banana/generate", json={"prompt": "a fox", "model": "acme/painter"}, headers=h
    )
    assert r.status_code == 422, r.text
    assert "acme/painter" in r.json()["error"]["message"], r.text
    # Where a user of the service finds the models, not a command of the CLI.
    assert "GET /api/nano-banana/models lists" in r.json()["error"]["message"], r.text
    assert "nanobanana models" not in r.json()["error"]["message"], r.text
    again = await api.client.post(
        "/api/nano-banana/generate", json={"prompt": "a fox", "model": "acme/other"}, headers=h
    )
    assert again.status_code == 422
    assert listing_calls(emu) == ["openrouter"]  # a fresh listing is trusted for a while


async def test_processes_sharing_a_data_folder_share_what_they_listed(
    settings_for: Callable[..., Settings], emu: EmulatorServer
) -> None:
    settings = settings_for()
    async with running(settings) as first, running(settings) as second:
        h = await first.user("shared")
        await first.put_key(h, "openrouter", OPENROUTER_CANARY)
        r = await first.client.post(
            "/api/nano-banana/generate", json={"prompt": "a fox", "model": GPT_IMAGE}, headers=h
        )
        assert r.status_code == 200, r.text
        assert listing_calls(emu) == ["openrouter"]
        assert (settings.data_dir / "listings").is_dir()

        # The second process picks the listing up in its background round, without a call.
        await listings.refresh(second.services)
        assert GPT_IMAGE in await models(second, h)
        again = await second.client.post(
            "/api/nano-banana/generate", json={"prompt": "a fox", "model": KLEIN}, headers=h
        )
        assert again.status_code == 200, again.text
    assert listing_calls(emu) == ["openrouter"]
    assert OPENROUTER_CANARY not in "".join(
        p.read_text() for p in (settings.data_dir / "listings").iterdir()
    )


async def test_the_server_keys_list_in_the_background(
    settings_for: Callable[..., Settings], emu: EmulatorServer
) -> None:
    settings = settings_for(openrouter_api_key=OPENROUTER_CANARY, allow_server_keys=True)
    async with running(settings) as api:
        await wait_for(lambda: api.services.catalog.find(GPT_IMAGE) is not None)
        h = await api.user("anyone")
        assert (await models(api, h))[GPT_IMAGE]["discovered"]
        r = await api.client.post(
            "/api/nano-banana/generate", json={"prompt": "a fox", "model": GPT_IMAGE}, headers=h
        )
        assert r.status_code == 200, r.text
    assert listing_calls(emu) == ["openrouter"]  # the background round, not the request


async def test_the_demo_emulator_lists_in_memory_only(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(demo=True, openrouter_base_url=None, gemini_base_url=None)
    async with running(settings) as api:
        await wait_for(lambda: api.services.catalog.find(GPT_IMAGE) is not None)
        h = await api.user("visitor")
        r = await api.client.post(
            "/api/nano-banana/generate", json={"prompt": "a fox", "model": KLEIN}, headers=h
        )
        assert r.status_code == 200, r.text
        assert r.json()["model"] == KLEIN
    assert not (settings.data_dir / "listings").exists()  # its port changes every run


async def test_the_service_sends_the_id_the_listing_has(
    settings_for: Callable[..., Settings], emu: EmulatorServer
) -> None:
    """OpenRouter lists only the GA id: the background round learns it, and the default
    model is sent by it from the first request (no refused call)."""
    emu.retire("google/gemini-3.1-flash-image-preview")
    settings = settings_for(openrouter_api_key=OPENROUTER_CANARY, allow_server_keys=True)
    async with running(settings) as api:
        await wait_for(lambda: listing_calls(emu) == ["openrouter"])
        await wait_for(
            lambda: (
                api.services.catalog.get("gemini-3.1-flash-image").provider_ids["openrouter"]
                == "google/gemini-3.1-flash-image"
            )
        )
        h = await api.user("ga-user")
        r = await api.client.post("/api/nano-banana/generate", json={"prompt": "a fox"}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["model"], body["provider_model"]) == (
            "gemini-3.1-flash-image",
            "google/gemini-3.1-flash-image",
        )
        r = await api.client.get("/api/nano-banana/models?provider=openrouter", headers=h)
        [entry] = [m for m in r.json()["models"] if m["id"] == "gemini-3.1-flash-image"]
        assert entry["provider_model"] == "google/gemini-3.1-flash-image"
    assert list(sent(emu)) == ["google/gemini-3.1-flash-image"]


async def test_the_models_show_nano_banana_2_lite_with_its_limits(api: Api) -> None:
    h = await api.user("lite-viewer")
    r = await api.client.get("/api/nano-banana/models?provider=google", headers=h)
    [lite] = [m for m in r.json()["models"] if m["id"] == "gemini-3.1-flash-lite-image"]
    assert lite["name"] == "Nano Banana 2 Lite (Gemini 3.1 Flash Lite Image)"
    assert lite["sizes"] == ["1K"] and "21:9" in lite["aspect_ratios"]
    assert "1:4" not in lite["aspect_ratios"] and lite["aliases"] == ["nano-banana-2-lite"]
    assert lite["price_per_image"] == {"1K": None} and not lite["discovered"]
