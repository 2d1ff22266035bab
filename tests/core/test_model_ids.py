"""The model ids of the design notes and of older tools, and OpenRouter's variant suffixes.

Each old spelling maps to the current catalog entry with a warning that says what to write
instead; a variant (``:free``, ``:nitro``) is kept and sent to OpenRouter, never dropped.
"""

from __future__ import annotations

import pytest

from nanobanana import AsyncClient, errors
from nanobanana.catalog import Catalog

KEYS = {"openrouter": "sk-or-v1-CANARY-ids-0001", "google": "AIzaCANARY-ids-0001"}

#: The design notes' ids -> (the catalog entry, the variant kept).
NOTES_IDS = {
    "google/gemini-2.5-flash-image-preview:free": ("gemini-2.5-flash-image", "free"),
    "google/gemini-2.5-flash-image-preview": ("gemini-2.5-flash-image", None),
    "google/gemini-3-pro-image-preview": ("gemini-3-pro-image", None),
    "gemini-2.5-flash-image-preview": ("gemini-2.5-flash-image", None),
    "openrouter/gemini-2.5-flash-image-preview": ("gemini-2.5-flash-image", None),
}


def client_for(emu, **kw):
    return AsyncClient(
        api_keys=KEYS,
        base_urls={"openrouter": emu.openrouter_url, "google": emu.gemini_url},
        env={},
        use_keys_file=False,
        **kw,
    )


def sent_models(emu) -> list[str]:
    return [r["body"]["model"] for r in emu.requests() if r["service"] == "openrouter"]


@pytest.mark.parametrize("name", NOTES_IDS)
def test_the_notes_ids_resolve_with_their_variant(name: str) -> None:
    choice = Catalog().resolve(name)
    assert (choice.spec.id, choice.variant) == NOTES_IDS[name]


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("google/gemini-2.5-flash-image-preview:free", "gemini-2.5-flash-image:free"),
        ("google/gemini-2.5-flash-image-preview", "gemini-2.5-flash-image"),
        ("gemini-2.5-flash-image-preview", "gemini-2.5-flash-image"),
        ("openrouter/gemini-2.5-flash-image-preview", "gemini-2.5-flash-image"),
        ("gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ("openrouter/google/gemini-3.1-flash-image-preview", "gemini-3.1-flash-image"),
    ],
)
def test_an_old_spelling_says_what_to_write_instead(name: str, instead: str) -> None:
    note = Catalog().resolve(name).note
    assert note is not None and f"write {instead!r} instead" in note


@pytest.mark.parametrize(
    "name",
    [
        "gemini-3.1-flash-image",
        "google/gemini-3-pro-image-preview",
        "nano-banana-2",
        "GEMINI-3-PRO-IMAGE",
    ],
)
def test_a_current_id_or_alias_has_no_note(name: str) -> None:
    assert Catalog().resolve(name).note is None


def test_a_variant_that_is_no_variant_is_refused_with_the_list() -> None:
    with pytest.raises(errors.UnknownModelError) as info:
        Catalog().resolve("gemini-3.1-flash-image:fre")
    assert "':fre' is not an OpenRouter variant" in info.value.message
    assert "free" in info.value.message and "nitro" in info.value.message


def test_a_variant_is_not_sent_to_google() -> None:
    choice = Catalog().resolve("gemini-3.1-flash-image:free")
    assert choice.wire_id("openrouter") == "google/gemini-3.1-flash-image-preview:free"
    with pytest.raises(errors.ValidationError) as info:
        choice.wire_id("google")
    assert "OpenRouter model variant" in info.value.message


# ------------------------------------------------------------------ through the library
@pytest.mark.parametrize(
    "name",
    [
        "google/gemini-2.5-flash-image-preview",
        "google/gemini-3-pro-image-preview",
        "gemini-2.5-flash-image-preview",
        "openrouter/gemini-2.5-flash-image-preview",
    ],
)
async def test_the_notes_ids_generate(emu, name: str) -> None:
    async with client_for(emu) as client:
        r = await client.generate("a fox", model=name)
    assert r.model == NOTES_IDS[name][0] and r.images
    note = Catalog().resolve(name).note
    assert note is None or note in r.warnings


async def test_a_routing_variant_is_sent_and_served(emu) -> None:
    async with client_for(emu) as client:
        r = await client.generate("a fox", model="gemini-3.1-flash-image:nitro")
    assert r.provider == "openrouter" and r.images
    assert sent_models(emu) == ["google/gemini-3.1-flash-image-preview:nitro"]
    assert r.provider_model == "google/gemini-3.1-flash-image-preview:nitro"


async def test_the_free_variant_is_sent_never_dropped_for_a_paid_call(emu) -> None:
    """OpenRouter lists no free variant of this model (the emulator neither): its refusal is
    the answer, not a silent call to the paid model or a fallback to Google."""
    async with client_for(emu) as client:
        with pytest.raises(errors.NanobananaError) as info:
            await client.generate("a fox", model="google/gemini-2.5-flash-image-preview:free")
    assert sent_models(emu) == ["google/gemini-2.5-flash-image:free"]
    assert all(r["service"] == "openrouter" for r in emu.requests() if r["method"] == "POST")
    assert "google/gemini-2.5-flash-image:free" in info.value.message


async def test_a_variant_with_google_chosen_is_refused_before_sending(emu) -> None:
    async with client_for(emu) as client:
        with pytest.raises(errors.ValidationError) as info:
            await client.generate("a fox", model="gemini-3.1-flash-image:nitro", provider="google")
    assert info.value.field == "provider"
    assert [r for r in emu.requests() if r["method"] == "POST"] == []
