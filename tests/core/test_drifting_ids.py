"""Ids that drift: a model is sent by the id its provider's live listing has (the GA id once it
is listed, the preview id while only it is); a refused id is looked up again in the listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nanobanana import AsyncClient, errors
from nanobanana.catalog import Catalog, ModelSpec
from nanobanana.discovery import ListingCache

KEYS = {"openrouter": "sk-or-v1-CANARY-drift-0001", "google": "AIzaCANARY-drift-0001"}
GA = "google/gemini-3.1-flash-image"
PREVIEW = "google/gemini-3.1-flash-image-preview"


def listed(*ids: str) -> list[ModelSpec]:
    return [
        ModelSpec(id=i, name=i, description="", provider_ids={"openrouter": i}, discovered=True)
        for i in ids
    ]


def test_the_listing_decides_which_id_is_sent() -> None:
    catalog = Catalog()
    assert catalog.get("gemini-3.1-flash-image").provider_ids["openrouter"] == PREVIEW  # built-in
    catalog.merge_discovered("openrouter", listed(GA, PREVIEW))
    assert catalog.get("gemini-3.1-flash-image").provider_ids["openrouter"] == GA  # GA first
    catalog.merge_discovered("openrouter", listed(PREVIEW))
    assert catalog.get("gemini-3.1-flash-image").provider_ids["openrouter"] == PREVIEW
    catalog.merge_discovered("openrouter", listed("acme/other"))  # neither: left as it was
    assert catalog.get("gemini-3.1-flash-image").provider_ids["openrouter"] == PREVIEW
    assert catalog.get("gemini-3.1-flash-image").provider_ids["google"] == "gemini-3.1-flash-image"
    assert not catalog.get("gemini-3.1-flash-image").discovered
    assert catalog.find(GA) is catalog.get("gemini-3.1-flash-image")  # not a model of its own


def test_naming_the_retired_id_gets_the_current_one_with_a_note() -> None:
    catalog = Catalog()
    catalog.merge_discovered("openrouter", listed(GA))
    choice = catalog.resolve(PREVIEW)
    assert choice.wire_id("openrouter") == GA
    assert choice.note is not None and "write 'gemini-3.1-flash-image' instead" in choice.note


def client(emu: Any, cache: ListingCache, **kw: Any) -> AsyncClient:
    return AsyncClient(
        api_keys=KEYS,
        base_urls={"openrouter": emu.openrouter_url, "google": emu.gemini_url},
        env={},
        use_keys_file=False,
        listing_cache=cache,
        **kw,
    )


def posted(emu: Any) -> list[str]:
    return [
        r["body"]["model"] if r["service"] == "openrouter" else r["path"]
        for r in emu.requests()
        if r["method"] == "POST"
    ]


def listings(emu: Any) -> int:
    return sum(1 for r in emu.requests() if r["method"] == "GET")


async def test_a_retired_preview_id_is_replaced_by_the_listed_ga_id(
    emu: Any, tmp_path: Path
) -> None:
    emu.retire(PREVIEW)  # OpenRouter lists only the GA id now
    cache = ListingCache(tmp_path)
    async with client(emu, cache) as c:
        result = await c.generate("a fox")  # the default model, on OpenRouter
    assert posted(emu) == [PREVIEW, GA]  # the built-in id is refused, then the listed one
    assert result.provider_model == GA and result.images
    assert any(f"openrouter no longer serves {PREVIEW!r}" in w for w in result.warnings)
    assert [a.error_code for a in result.attempts] == ["upstream_bad_request", None]
    assert listings(emu) == 1

    # The next run reads the kept listing: the GA id at once, no refusal, no listing call.
    emu.reset()
    emu.retire(PREVIEW)
    async with client(emu, cache) as c:
        again = await c.generate("a fox")
    assert posted(emu) == [GA] and listings(emu) == 0
    assert not any("no longer serves" in w for w in again.warnings)


async def test_a_model_no_listed_id_serves_is_refused_as_the_provider_says(
    emu: Any, tmp_path: Path
) -> None:
    emu.retire(PREVIEW, GA)
    async with client(emu, ListingCache(tmp_path)) as c:
        with pytest.raises(errors.ModelNotServedError, match="is not a valid model ID") as info:
            await c.generate("a fox", provider="openrouter")
    assert posted(emu) == [PREVIEW]  # nothing else to try: not a silent switch of model
    assert len(info.value.attempts) == 1


async def test_gemini_follows_its_listing_too(emu: Any, tmp_path: Path) -> None:
    emu.retire("gemini-3.1-flash-image")  # only the preview id is served
    async with client(emu, ListingCache(tmp_path)) as c:
        result = await c.generate("a fox", provider="google")
    paths = posted(emu)
    assert len(paths) == 2 and paths[0].endswith("/gemini-3.1-flash-image:generateContent")
    assert paths[1].endswith("/gemini-3.1-flash-image-preview:generateContent")
    assert result.provider_model == "gemini-3.1-flash-image-preview"


async def test_a_client_without_discovery_sends_the_built_in_id(emu: Any, tmp_path: Path) -> None:
    emu.retire(PREVIEW)
    async with client(emu, ListingCache(tmp_path), discover=False) as c:
        with pytest.raises(errors.ModelNotServedError):
            await c.generate("a fox", provider="openrouter")
    assert posted(emu) == [PREVIEW] and listings(emu) == 0
