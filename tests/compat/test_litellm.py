"""LiteLLM (as published) against the service: ``completion`` with image modalities through its
OpenRouter provider, and ``image_generation`` / ``image_edit`` through its OpenAI provider.

LiteLLM validates the Images answers with its own models (``usage.input_tokens_details`` is
required), so every field OpenAI's schema requires must be there.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import litellm
import pytest

from nanobanana.emulator import EmulatorServer

from ..support import image_size, png_bytes
from .conftest import Live, decode_data_url, tag, upstream_prompts

pytestmark = pytest.mark.timeout(60)
MODEL = "google/gemini-2.5-flash-image"


def field(details: Any, name: str) -> int:
    """A usage detail, whichever form LiteLLM gives it (a model for edits, a dict for
    generations)."""
    value = details[name] if isinstance(details, dict) else getattr(details, name)
    assert isinstance(value, int)
    return value


def test_completion_with_image_modalities(live: Live, emulator: EmulatorServer) -> None:
    marker = tag()
    r = litellm.completion(
        model=f"openrouter/{MODEL}",
        messages=[{"role": "user", "content": f"a red fox {marker}"}],
        modalities=["image", "text"],
        api_base=f"{live.url}/api/v1",
        api_key=live.token,
    )
    message = r.choices[0].message
    mime, raw = decode_data_url(message.images[0]["image_url"]["url"])
    assert mime == "image/png" and image_size(raw) == (1024, 1024)
    assert "red fox" in message.content
    assert r.usage.completion_tokens > 0
    assert len(upstream_prompts(emulator, marker)) == 1


def test_image_generation(live: Live) -> None:
    r = litellm.image_generation(
        model="openai/gemini-3.1-flash-image",
        prompt=f"a red fox {tag()}",
        size="1344x768",
        n=2,
        api_base=f"{live.url}/v1",
        api_key=live.token,
    )
    assert len(r.data) == 2
    for item in r.data:
        assert image_size(base64.b64decode(item.b64_json)) == (1344, 768)
    assert r.usage.output_tokens > 0 and field(r.usage.input_tokens_details, "text_tokens") > 0
    assert r.size == "1344x768" and r.output_format == "png"


def test_image_edit_keeps_the_input_shape(live: Live, tmp_path: Path) -> None:
    photo = tmp_path / "wide.png"
    photo.write_bytes(png_bytes(320, 180))  # 16:9
    with photo.open("rb") as image:
        r = litellm.image_edit(
            model="openai/gemini-2.5-flash-image",
            image=image,
            prompt=f"make the sky purple {tag()}",
            api_base=f"{live.url}/v1",
            api_key=live.token,
        )
    [item] = r.data
    assert image_size(base64.b64decode(item.b64_json)) == (1344, 768)  # 16:9 in, 16:9 out
    details = r.usage.input_tokens_details
    image, text = field(details, "image_tokens"), field(details, "text_tokens")
    assert image > 0 and text > 0 and r.usage.input_tokens == image + text


def test_an_error_reaches_the_caller_with_the_service_message(live: Live) -> None:
    with pytest.raises(litellm.BadRequestError) as caught:
        litellm.image_generation(
            model="openai/gemini-2.5-flash-imag",
            prompt="a red fox",
            api_base=f"{live.url}/v1",
            api_key=live.token,
        )
    assert "Did you mean 'gemini-2.5-flash-image'" in str(caught.value)
