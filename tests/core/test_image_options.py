"""Model-specific image options (``GenerationRequest.image_options``): OpenRouter's
``image_config`` keys beyond ratio and size (Recraft's ``style``, Sourceful's ``font_inputs``...),
checked for shape, sent as given, kept with the result, and never sent where they would be
dropped unseen."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nanobanana import AsyncClient, GenerationRequest, errors
from nanobanana.batch.rows import parse_rows
from nanobanana.catalog import Catalog, validate_image_options
from nanobanana.providers import INFOS, openrouter_wire
from nanobanana.providers.base import ProviderCall

from ..support import emulator_client

OPENROUTER_KEY = "sk-or-v1-CANARY-options-0001"
GOOGLE_KEY = "AIzaCANARY-options-0001"
RECRAFT = {"style": "Photorealism", "strength": 0.7, "rgb_colors": [[255, 0, 0], [0, 128, 0]]}


def posted(emu: Any) -> list[dict[str, Any]]:
    return [r["body"] for r in emu.requests() if r["method"] == "POST"]


def both_client(emu: Any) -> AsyncClient:
    client: AsyncClient = emulator_client(
        emu, openrouter_api_key=OPENROUTER_KEY, google_api_key=GOOGLE_KEY
    )
    return client


def test_the_wire_puts_them_beside_ratio_and_size() -> None:
    spec = Catalog().get("gemini-3.1-flash-image")
    call = ProviderCall(
        model=spec,
        wire_model="google/gemini-3.1-flash-image",
        prompt="a fox",
        aspect_ratio="16:9",
        image_size="2K",
        image_options={"style": "Photorealism"},
    )
    body = openrouter_wire.build_request(call)
    config = {"style": "Photorealism", "aspect_ratio": "16:9", "image_size": "2K"}
    assert body["image_config"] == config
    # Without options nothing changes.
    assert "image_config" not in openrouter_wire.build_request(
        ProviderCall(model=spec, wire_model=spec.id, prompt="a fox")
    )


async def test_options_are_sent_as_given_and_kept_with_the_result(emu: Any) -> None:
    async with both_client(emu) as client:
        result = await client.generate(
            "a fox", provider="openrouter", aspect_ratio="3:2", image_options=RECRAFT
        )
    [body] = posted(emu)
    assert body["image_config"] == {**RECRAFT, "aspect_ratio": "3:2"}
    assert result.image_options == RECRAFT
    assert result.provenance()["image_options"] == RECRAFT
    assert result.images[0].metadata["image_options"] == RECRAFT
    # A request without options keeps the provenance it always had.
    async with both_client(emu) as client:
        plain = await client.generate("a fox", provider="openrouter")
    assert "image_options" not in plain.provenance()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"aspect_ratio": "16:9"}, "set aspect_ratio, not an image option"),
        ({"image_size": "2K"}, "set image_size"),
        ({"Style": "x"}, "not a snake_case name"),
        ({"": "x"}, "not a snake_case name"),
        ({"transparent": True}, "is bool; a value is a string, a number or an array"),
        ({"colors": {"r": 1}}, "is dict"),
        ({"strength": None}, "is NoneType"),
        ({"strength": float("nan")}, "JSON cannot carry (NaN, infinity"),
        ({"rgb_colors": [{1, 2}]}, "JSON cannot carry"),
        ({f"k{i}": 1 for i in range(17)}, "At most 16 image options"),
        ({"text": "x" * 20_000}, "the limit is 16384"),
        (["style"], "must be a JSON object of option names and values, such as"),
    ],
)
async def test_a_malformed_option_is_refused_before_any_call(
    emu: Any, options: Any, says: str
) -> None:
    async with both_client(emu) as client:
        with pytest.raises(errors.ValidationError) as info:
            await client.generate("a fox", provider="openrouter", image_options=options)
    assert info.value.field == "image_options"
    assert says in info.value.message
    assert posted(emu) == []


def test_tuples_are_arrays() -> None:
    assert validate_image_options({"background_rgb_color": (0, 0, 255)}) == {
        "background_rgb_color": [0, 0, 255]
    }


async def test_a_provider_that_cannot_carry_them_is_never_sent_them(emu: Any) -> None:
    takers = [name for name, info in INFOS.items() if info.image_options]
    assert takers == ["openrouter"]
    async with both_client(emu) as client:
        with pytest.raises(errors.ValidationError) as info:
            await client.generate("a fox", provider="google", image_options={"style": "x"})
    assert "only openrouter passes on; google has none" in info.value.message
    assert posted(emu) == []


async def test_a_fallback_that_would_drop_them_is_not_made(emu: Any) -> None:
    """With OpenRouter falling back to Google, a request with options stops at OpenRouter's
    failure instead of being answered without them; one without options falls back."""
    client: AsyncClient = AsyncClient(
        openrouter_api_key=OPENROUTER_KEY,
        google_api_key=GOOGLE_KEY,
        openrouter_base_url=emu.openrouter_url,
        gemini_base_url=emu.gemini_url,
        env={},
        use_keys_file=False,
        fallbacks={"openrouter": ("google",)},
    )
    async with client:
        with pytest.raises(errors.QuotaError):
            await client.generate(
                "[emulator@openrouter:quota-day] a fox",
                provider="openrouter",
                image_options={"style": "x"},
            )
        assert [r["service"] for r in emu.requests() if r["method"] == "POST"] == ["openrouter"]
        emu.reset()
        result = await client.generate(
            "[emulator@openrouter:quota-day] a fox", provider="openrouter"
        )
    assert result.provider == "google"


def test_the_emulator_holds_values_to_the_published_schema(emu: Any) -> None:
    body = {
        "model": "google/gemini-3.1-flash-image",
        "messages": [{"role": "user", "content": "a fox"}],
        "modalities": ["image", "text"],
        "image_config": {"transparent": True},
    }
    r = httpx.post(
        f"{emu.openrouter_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {OPENROUTER_KEY}"},
    )
    assert r.status_code == 400
    assert "image_config.transparent must be a string, number or array" in r.text
    fonts = [{"font_url": "https://example.com/f.ttf", "text": "Hi"}]
    body["image_config"] = {"font_inputs": fonts}
    r = httpx.post(
        f"{emu.openrouter_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {OPENROUTER_KEY}"},
    )
    assert r.status_code == 200, r.text


def test_a_batch_row_takes_them_as_a_json_object() -> None:
    text = (
        'prompt,image_options\n"a fox","{""style"": ""Photorealism""}"\n"a cat",\n'
        '"a dog","{not json"\n"an owl","[1]"\n'
    )
    with pytest.raises(errors.UsageError) as info:
        parse_rows(text)
    assert "line 4: image_options must be a JSON object" in info.value.message
    assert (
        "line 5: image_options must be a JSON object of option names and values, such as "
        '{"style": "Photorealism"}, not list.'
    ) in info.value.message
    defaults = GenerationRequest(prompt="", image_options={"style": "Vector"})
    fox, cat = parse_rows(text.split('"a dog"')[0], defaults=defaults)
    assert fox.request.image_options == {"style": "Photorealism"}
    assert cat.request.image_options == {"style": "Vector"}  # an empty cell keeps the default
    [owl] = parse_rows('{"prompt": "an owl", "image_options": {"strength": 0.5}}', fmt="jsonl")
    assert owl.request.image_options == {"strength": 0.5}


def test_a_row_without_options_keeps_its_fingerprint() -> None:
    """Options were added after manifests existed: a row without them is the same row."""
    [row] = parse_rows('prompt\n"a fox"\n')
    [same] = parse_rows('prompt,image_options\n"a fox",\n')
    [other] = parse_rows('prompt,image_options\n"a fox","{""style"": ""x""}"\n')
    assert row.fingerprint == same.fingerprint != other.fingerprint
