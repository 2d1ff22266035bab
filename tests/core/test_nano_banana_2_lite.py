"""Nano Banana 2 Lite (``gemini-3.1-flash-lite-image``) as Google's model page describes it:
1K only, the ten standard ratios; through Gemini, and through OpenRouter once it lists it."""

from __future__ import annotations

from typing import Any

import pytest

from nanobanana import AsyncClient, errors
from nanobanana.catalog import Catalog, ModelSpec

from ..support import emulator_client

GOOGLE_KEY = "AIzaCANARY-lite-0001"


def google_client(emu: Any) -> AsyncClient:
    client: AsyncClient = emulator_client(emu, google_api_key=GOOGLE_KEY)
    return client


async def test_it_generates_at_1k_through_gemini(emu: Any) -> None:
    async with google_client(emu) as client:
        result = await client.generate("a fox", model="nano-banana-2-lite", aspect_ratio="16:9")
    assert (result.model, result.provider_model) == (
        "gemini-3.1-flash-lite-image",
        "gemini-3.1-flash-lite-image",
    )
    [image] = result.images
    assert (image.width, image.height) == (1344, 768)  # the 16:9 size at 1K
    [call] = [r for r in emu.requests() if r["method"] == "POST"]
    assert call["path"].endswith("/gemini-3.1-flash-lite-image:generateContent")


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [("image_size", "2K", "1K"), ("image_size", "0.5K", "1K"), ("aspect_ratio", "1:4", "21:9")],
)
async def test_what_the_model_page_rules_out_is_refused_before_any_call(
    emu: Any, option: str, value: str, allowed: str
) -> None:
    async with google_client(emu) as client:
        with pytest.raises(errors.ValidationError) as info:
            await client.generate("a fox", model="gemini-3.1-flash-lite-image", **{option: value})
    assert info.value.field == option and allowed in info.value.message
    assert emu.requests() == []


def test_openrouter_serves_it_once_its_listing_has_it() -> None:
    catalog = Catalog()
    assert catalog.get("gemini-3.1-flash-lite-image").providers == ("google",)
    listed = ModelSpec(
        id="google/gemini-3.1-flash-lite-image",
        name="Google: Nano Banana 2 Lite",
        description="",
        provider_ids={"openrouter": "google/gemini-3.1-flash-lite-image"},
        discovered=True,
    )
    catalog.merge_discovered("openrouter", [listed])
    lite = catalog.get("gemini-3.1-flash-lite-image")
    assert lite.provider_ids["openrouter"] == "google/gemini-3.1-flash-lite-image"
    assert lite.sizes == ("1K",) and not lite.discovered  # the catalog's limits still hold
