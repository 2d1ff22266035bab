"""The thinking level (``GenerationRequest.thinking``): checked against what is known of the
model, sent as Gemini's ``thinkingConfig.thinkingLevel`` and OpenRouter's ``reasoning.effort``,
and kept with the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanobanana import AsyncClient, GenerationRequest, errors
from nanobanana.catalog import BUILTIN_MODELS, Catalog
from nanobanana.discovery import ListingCache, spec_from_record, spec_record
from nanobanana.providers import gemini_wire, openrouter_wire
from nanobanana.providers.base import ProviderCall

from ..support import emulator_client

GOOGLE_KEY = "AIzaCANARY-thinking-0001"
OPENROUTER_KEY = "sk-or-v1-CANARY-thinking-0001"


def google_client(emu: Any) -> AsyncClient:
    client: AsyncClient = emulator_client(emu, google_api_key=GOOGLE_KEY)
    return client


def openrouter_client(emu: Any, **kw: Any) -> AsyncClient:
    return AsyncClient(
        openrouter_api_key=OPENROUTER_KEY,
        openrouter_base_url=emu.openrouter_url,
        env={},
        use_keys_file=False,
        **kw,
    )


def posted(emu: Any) -> list[dict[str, Any]]:
    return [r["body"] for r in emu.requests() if r["method"] == "POST"]


def call(level: str | None) -> ProviderCall:
    spec = Catalog().get("gemini-3.1-flash-lite-image")
    return ProviderCall(model=spec, wire_model=spec.id, prompt="a fox", thinking=level)


def test_each_wire_spells_the_level_as_its_docs_do() -> None:
    assert openrouter_wire.build_request(call("high"))["reasoning"] == {"effort": "high"}
    config = gemini_wire.build_request(call("high"))["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingLevel": "HIGH"}
    _, sdk_config = gemini_wire.sdk_request(call("minimal"))
    assert sdk_config.thinking_config is not None
    assert sdk_config.thinking_config.thinking_level == "MINIMAL"
    # Not asked for, not sent: the model's own default applies.
    assert "reasoning" not in openrouter_wire.build_request(call(None))
    assert "thinkingConfig" not in gemini_wire.build_request(call(None))["generationConfig"]
    assert gemini_wire.sdk_request(call(None))[1].thinking_config is None


async def test_lite_thinks_at_a_level_its_page_lists(emu: Any) -> None:
    async with google_client(emu) as client:
        result = await client.generate("a fox", model="nano-banana-2-lite", thinking="High")
    [body] = posted(emu)
    # google-genai writes the field in snake case inside the camel-case object (proto JSON
    # takes both); the value is the enum's name.
    assert body["generationConfig"]["thinkingConfig"] == {"thinking_level": "HIGH"}
    assert result.thinking == "high"
    assert result.provenance()["thinking"] == "high"
    assert result.images[0].metadata["thinking"] == "high"


async def test_a_level_the_model_page_leaves_out_is_refused_before_any_call(emu: Any) -> None:
    async with google_client(emu) as client:
        with pytest.raises(errors.ValidationError) as info:
            await client.generate("a fox", model="gemini-3.1-flash-lite-image", thinking="low")
    assert info.value.field == "thinking"
    assert "minimal, high" in info.value.message
    assert emu.requests() == []


async def test_a_word_that_is_no_level_is_refused_for_every_model(emu: Any) -> None:
    async with openrouter_client(emu, discover=False) as client:
        with pytest.raises(errors.ValidationError) as info:
            await client.run(GenerationRequest(prompt="a fox", thinking="maximum"))
    assert info.value.field == "thinking"
    assert "minimal, low, medium, high" in info.value.message
    assert emu.requests() == []


async def test_a_model_whose_levels_are_unknown_is_sent_the_level_to_judge(emu: Any) -> None:
    assert Catalog().get("gemini-3.1-flash-image").thinking_levels is None
    async with openrouter_client(emu, discover=False) as client:
        result = await client.generate("a fox", thinking="medium")
    [body] = posted(emu)
    assert body["reasoning"] == {"effort": "medium"}
    assert result.model == "gemini-3.1-flash-image" and result.thinking == "medium"


def test_the_emulated_gemini_refuses_a_level_the_model_lacks(emu: Any) -> None:
    """What Google answers when the check before the call is bypassed (a raw request)."""
    url = f"{emu.gemini_url}/v1beta/models/gemini-3.1-flash-lite-image:generateContent"
    body = {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}},
    }
    reply = httpx.post(url, json=body, headers={"x-goog-api-key": GOOGLE_KEY})
    assert reply.status_code == 400
    assert reply.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "minimal, high" in reply.json()["error"]["message"]
    body["generationConfig"] = {"thinkingConfig": {"thinkingLevel": "high"}}
    assert httpx.post(url, json=body, headers={"x-goog-api-key": GOOGLE_KEY}).status_code == 200


def test_the_emulated_openrouter_refuses_an_effort_it_does_not_know(emu: Any) -> None:
    body = {
        "model": "google/gemini-3.1-flash-image",
        "messages": [{"role": "user", "content": "a fox"}],
        "modalities": ["image", "text"],
        "reasoning": {"effort": "extreme"},
    }
    headers = {"Authorization": f"Bearer {OPENROUTER_KEY}"}
    reply = httpx.post(f"{emu.openrouter_url}/chat/completions", json=body, headers=headers)
    assert reply.status_code == 400 and "reasoning.effort" in reply.text


def test_a_listing_says_which_levels_a_model_takes() -> None:
    def listed(**extra: Any) -> Any:
        entry = {
            "id": "acme/painter",
            "architecture": {"output_modalities": ["image", "text"]},
            **extra,
        }
        [spec] = openrouter_wire.parse_models(json.dumps({"data": [entry]}).encode())
        return spec.thinking_levels

    # OpenRouter's guide: efforts are listed highest first; null means every one.
    efforts = {"supported_efforts": ["xhigh", "high", "low", "none"], "mandatory": False}
    assert listed(reasoning=efforts) == ("low", "high")
    assert listed(reasoning={"supported_efforts": None}) is None
    assert listed(reasoning={"mandatory": True}) == ()  # no effort selection
    assert listed() == ()  # not a reasoning model


async def test_discovered_models_take_the_levels_their_listing_gives(
    emu: Any, tmp_path: Path
) -> None:
    mini, klein = "openai/gpt-5-image-mini", "black-forest-labs/flux.2-klein-4b"
    catalog = Catalog(m for m in BUILTIN_MODELS if m.id not in (mini, klein))
    cache = ListingCache(tmp_path)
    async with openrouter_client(emu, catalog=catalog, listing_cache=cache) as client:
        result = await client.generate("a fox", model=mini, thinking="low")
        assert result.thinking == "low"
        with pytest.raises(errors.ValidationError) as info:
            await client.generate("a fox", model=klein, thinking="low")
        levels = client.catalog.get(mini).thinking_levels
    assert info.value.field == "thinking" and "takes no thinking level" in info.value.message
    assert levels == ("minimal", "low", "medium", "high")
    [body] = [b for b in posted(emu) if b["model"] == mini]
    assert body["reasoning"] == {"effort": "low"}
    # A kept listing remembers the levels; an older file without them says "not known".
    [kept] = [m for m in cache.every_model() if m.id == mini]
    assert kept.thinking_levels == levels
    record = spec_record(kept)
    assert spec_from_record(record) == kept
    del record["thinking_levels"]
    assert spec_from_record(record).thinking_levels is None
