"""Fidelity: OpenRouter's official Python SDK (``openrouter``, as published), pointed at the
emulator, validates what it answers (the SDK checks every field against OpenRouter's OpenAPI
description, so a missing required field fails here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openrouter import OpenRouter, errors

from nanobanana.emulator import EmulatorServer

from ..support import image_size
from .helpers import OR_KEY, data_url_image

MODEL = "google/gemini-2.5-flash-image"


@pytest.fixture
def client(emu: EmulatorServer) -> Iterator[OpenRouter]:
    with OpenRouter(api_key=OR_KEY, server_url=emu.openrouter_url) as c:
        yield c


def test_models_list_validates_and_pages(client: OpenRouter) -> None:
    whole = client.models.list(output_modalities="image")
    assert whole is not None
    ids = [m.id for m in whole.result.data]
    assert MODEL in ids and whole.result.total_count == len(ids)
    assert whole.result.links.next is None
    pages, page = [], client.models.list(output_modalities="image", limit=3)
    while page is not None:
        pages.append([m.id for m in page.result.data])
        page = page.next()
    assert [i for p in pages for i in p] == ids and len(pages[0]) == 3


def test_chat_send_returns_the_image(client: OpenRouter) -> None:
    r = client.chat.send(
        model=MODEL,
        messages=[{"role": "user", "content": "a red fox"}],
        modalities=["image", "text"],
        image_config={"aspect_ratio": "16:9"},
    )
    message = r.choices[0].message
    assert message.images
    mime, raw = data_url_image(message.images[0].image_url.url)
    assert mime == "image/png" and image_size(raw) == (1344, 768)
    assert r.usage is not None and r.usage.cost


def test_a_bad_key_is_the_sdk_unauthorized_error(emu: EmulatorServer) -> None:
    client = OpenRouter(api_key="sk-or-v1-invalid", server_url=emu.openrouter_url)
    with client, pytest.raises(errors.UnauthorizedResponseError) as caught:
        client.chat.send(model=MODEL, messages=[{"role": "user", "content": "a red fox"}])
    assert caught.value.data.error.code == 401
