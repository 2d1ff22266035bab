"""Fidelity: the real ``google-genai`` SDK, pointed at the emulator, parses what Gemini sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

from nanobanana.emulator import EmulatorServer

from ..support import image_size
from .helpers import GEMINI_KEY


def _client(
    emu: EmulatorServer, key: str = GEMINI_KEY, scenario: str | None = None
) -> genai.Client:
    headers = {"X-Emulator-Scenario": scenario} if scenario else None
    options = types.HttpOptions(base_url=emu.gemini_url, api_version="v1beta", headers=headers)
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture(scope="module")
def client(emulator: EmulatorServer) -> Iterator[genai.Client]:
    # Building a client costs ~0.5 s (TLS setup), so tests share one and pick scenarios by marker.
    c = _client(emulator)
    yield c
    c.close()


def _images(response: types.GenerateContentResponse) -> list[bytes]:
    return [
        p.inline_data.data for p in response.parts or [] if p.inline_data and p.inline_data.data
    ]


@pytest.mark.parametrize(
    ("model", "ratio", "size", "expected"),
    [
        ("gemini-2.5-flash-image", "3:4", "1K", (864, 1184)),
        ("gemini-3-pro-image-preview", "16:9", "2K", (2688, 1536)),
    ],
)
def test_generate_content_returns_png_of_the_table_size(
    client: genai.Client,
    emu: EmulatorServer,
    model: str,
    ratio: str,
    size: str,
    expected: tuple[int, int],
) -> None:
    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio=ratio, image_size=size),
    )
    response = client.models.generate_content(model=model, contents="a red fox", config=config)
    found = _images(response)
    assert len(found) == 1 and found[0].startswith(b"\x89PNG")
    assert image_size(found[0]) == expected
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage and usage.candidates_tokens_details
    assert usage.candidates_tokens_details[0].modality == types.MediaModality.IMAGE
    seen = emu.requests()[-1]
    assert seen["path"] == f"/v1beta/models/{model}:generateContent"
    assert seen["auth_header"] == "x-goog-api-key" and seen["api_key"] == GEMINI_KEY
    assert seen["key_in_query"] is False


def test_reference_image_round_trip(client: genai.Client, emu: EmulatorServer) -> None:
    first = _images(client.models.generate_content(model="gemini-2.5-flash-image", contents="x"))
    response = client.models.generate_content(
        model="gemini-3.1-flash-image-preview",
        contents=[types.Part.from_bytes(data=first[0], mime_type="image/png"), "make it blue"],
        config=types.GenerateContentConfig(
            image_config=types.ImageConfig(aspect_ratio="8:1", image_size="0.5K")
        ),
    )
    assert image_size(_images(response)[0]) == (1536, 192)
    body = emu.requests()[-1]["body"]
    inline = body["contents"][0]["parts"][0]["inlineData"]
    assert inline["data"].startswith("<base64:")  # recorded without the payload


def test_streaming_text_then_image(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(model="gemini-2.5-flash-image", contents="a fox")
    )
    assert len(chunks) == 2
    assert chunks[0].text and "fox" in chunks[0].text
    assert image_size(_images(chunks[1])[0]) == (1024, 1024)
    assert (
        chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    )
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.candidates_token_count


def test_models_list_and_get(client: genai.Client) -> None:
    names = [m.name for m in client.models.list(config={"page_size": 3})]
    assert "models/gemini-3-pro-image" in names and len(names) == len(set(names)) >= 7
    model = client.models.get(model="gemini-3.1-flash-image")
    assert model.name == "models/gemini-3.1-flash-image"


def test_quota_raises_client_error_with_retry_info(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(
            model="gemini-2.5-flash-image", contents="a fox [emulator:quota:2.5]"
        )
    err = info.value
    assert err.code == 429 and err.status == "RESOURCE_EXHAUSTED"
    details = err.details["error"]["details"]
    retry = [d for d in details if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]
    assert "Please retry in 2.5s." in (err.message or "")


def test_bad_key_is_api_key_invalid(emu: EmulatorServer) -> None:
    client = _client(emu, key="AIza-invalid-CANARY")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="gemini-2.5-flash-image", contents="a fox")
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    client.close()


def test_image_safety_finish_reason(client: genai.Client) -> None:
    response = client.models.generate_content(
        model="gemini-2.5-flash-image", contents="something [emulator:safety]"
    )
    assert (
        response.candidates
        and response.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY
    )
    assert not _images(response)


def test_midstream_error_raises(emu: EmulatorServer) -> None:
    client = _client(emu, scenario="midstream-error:503")  # header from HttpOptions.headers
    seen = []
    with pytest.raises(errors.ServerError) as info:
        for chunk in client.models.generate_content_stream(
            model="gemini-2.5-flash-image", contents="x"
        ):
            seen.append(chunk.text)
    assert seen == ["Generating your image"] and info.value.code == 503
    client.close()


async def test_async_client(client: genai.Client) -> None:
    response = await client.aio.models.generate_content(
        model="gemini-3-pro-image",
        contents="a red fox",
        config=types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio="21:9")),
    )
    assert image_size(_images(response)[0]) == (1536, 672)
