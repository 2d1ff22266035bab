"""Fidelity: the real ``openai`` SDK, pointed at the emulator, parses what OpenRouter sends."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from nanobanana.emulator import EmulatorServer

from ..support import image_size
from .helpers import OR_KEY, data_url_image

MODEL = "google/gemini-2.5-flash-image"


@pytest.fixture
def client(emu: EmulatorServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emu.openrouter_url, api_key=OR_KEY, max_retries=0) as c:
        yield c


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_image_cost_and_provider(client: openai.OpenAI, emu: EmulatorServer) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=_user("a red fox"),  # type: ignore[arg-type]
        extra_body={"modalities": ["image", "text"], "image_config": {"aspect_ratio": "16:9"}},
    )
    message = r.choices[0].message
    mime, raw = data_url_image(message.images[0]["image_url"]["url"])  # type: ignore[attr-defined]
    assert mime == "image/png" and image_size(raw) == (1344, 768)
    assert message.content and "red fox" in message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.model_extra == {"provider": "Google AI Studio"}
    assert r.usage is not None and r.usage.completion_tokens_details is not None
    extra = r.usage.model_extra or {}
    # 1290 image tokens at $30/M plus a few text tokens.
    assert extra["cost"] == pytest.approx(0.0387, abs=0.0002)
    assert extra["is_byok"] is False
    assert r.usage.completion_tokens_details.model_extra == {"image_tokens": 1290}
    assert r.id.startswith("gen-")
    seen = emu.requests()[-1]
    assert seen["auth_header"] == "authorization" and seen["api_key"] == OR_KEY
    assert seen["body"]["image_config"] == {"aspect_ratio": "16:9"}


def test_streaming_carries_the_image_in_delta_extra(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="google/gemini-3.1-flash-image-preview",
        messages=_user("a lighthouse"),  # type: ignore[arg-type]
        stream=True,
        extra_body={
            "modalities": ["image", "text"],
            "image_config": {"aspect_ratio": "1:4", "image_size": "0.5K"},
        },
    )
    texts, images, finishes, usage = [], [], [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            texts.append(choice.delta.content or "")
            images += (choice.delta.model_extra or {}).get("images") or []
            finishes.append(choice.finish_reason)
    assert "lighthouse" in "".join(texts)
    assert len(images) == 1 and images[0]["index"] == 0
    _, raw = data_url_image(images[0]["image_url"]["url"])
    assert image_size(raw) == (256, 1024)
    assert finishes[-1] == "stop"
    assert usage is not None and (usage.model_extra or {})["cost"] > 0


def test_midstream_error_raises_api_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=_user("a fox [emulator:midstream-error]"),  # type: ignore[arg-type]
        stream=True,
        extra_body={"modalities": ["image", "text"]},
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["Generating your image"]
    assert isinstance(info.value.body, dict) and info.value.body["code"] == 502


def test_quota_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=_user("a fox"),  # type: ignore[arg-type]
            extra_body={"modalities": ["image", "text"]},
            extra_headers={"X-Emulator-Scenario": "quota:0.2"},
        )
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "0.2"


def test_sdk_retries_honour_the_short_retry_after(emu: EmulatorServer) -> None:
    with openai.OpenAI(base_url=emu.openrouter_url, api_key=OR_KEY, max_retries=2) as c:
        r = c.chat.completions.create(
            model=MODEL,
            messages=_user("a fox"),  # type: ignore[arg-type]
            extra_body={"modalities": ["image", "text"]},
            extra_headers={"X-Emulator-Scenario": "flaky:2:429:openai-retry"},
        )
    assert r.choices[0].message.images  # type: ignore[attr-defined]
    assert [e["status"] for e in emu.requests()] == [429, 429, 200]


def test_bad_key_is_an_authentication_error(emu: EmulatorServer) -> None:
    c = openai.OpenAI(base_url=emu.openrouter_url, api_key="sk-or-v1-invalid", max_retries=0)
    with c, pytest.raises(openai.AuthenticationError) as info:
        c.chat.completions.create(model=MODEL, messages=_user("x"))  # type: ignore[arg-type]
    assert info.value.status_code == 401


def test_without_modalities_the_answer_is_text_only(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=_user("a fox"))  # type: ignore[arg-type]
    assert r.choices[0].message.content
    assert (r.choices[0].message.model_extra or {}).get("images") is None


def test_models_list(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list(extra_query={"output_modalities": "image"})}
    assert {MODEL, "black-forest-labs/flux.2-pro"} <= ids
    assert "openai/gpt-4o-mini" not in ids
