"""What the emulator lists: models the built-in catalog does not know, and retired ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nanobanana.catalog import Catalog
from nanobanana.emulator import EmulatorConfig, EmulatorServer

from .helpers import CHAT, GEMINI_HEADERS, OR_HEADERS, chat_body, gemini_body, gen_path

PREVIEW = "google/gemini-3.1-flash-image-preview"


def openrouter_listing(http: httpx.Client) -> dict[str, dict[str, Any]]:
    r = http.get("/api/v1/models", params={"output_modalities": "image"})
    assert r.status_code == 200
    return {m["id"]: m for m in r.json()["data"]}


def gemini_listing(http: httpx.Client) -> dict[str, dict[str, Any]]:
    r = http.get("/v1beta/models", params={"pageSize": "1000"}, headers=GEMINI_HEADERS)
    assert r.status_code == 200
    return {m["name"].removeprefix("models/"): m for m in r.json()["models"]}


def test_openrouter_lists_image_models_the_catalog_does_not_know(http: httpx.Client) -> None:
    listed = openrouter_listing(http)
    catalog = Catalog()
    unknown = {model_id for model_id in listed if catalog.find(model_id) is None}
    assert {"openai/gpt-5-image-mini", "black-forest-labs/flux.2-klein-4b"} <= unknown
    gpt = listed["openai/gpt-5-image-mini"]["architecture"]
    assert gpt["output_modalities"] == ["image", "text"]
    assert "file" in gpt["input_modalities"]
    klein = listed["black-forest-labs/flux.2-klein-4b"]["architecture"]
    assert klein["output_modalities"] == ["image"]


def test_gemini_lists_nano_banana_2_lite_with_its_documented_limits(http: httpx.Client) -> None:
    lite = gemini_listing(http)["gemini-3.1-flash-lite-image"]
    assert (lite["inputTokenLimit"], lite["outputTokenLimit"]) == (65_536, 4_096)
    assert "generateContent" in lite["supportedGenerationMethods"]
    r = http.post(
        gen_path("gemini-3.1-flash-lite-image"),
        json=gemini_body(imageConfig={"imageSize": "2K"}),
        headers=GEMINI_HEADERS,
    )
    assert r.status_code == 400  # 1K only
    ok = http.post(
        gen_path("gemini-3.1-flash-lite-image"), json=gemini_body(), headers=GEMINI_HEADERS
    )
    assert ok.status_code == 200


def test_a_retired_openrouter_id_is_unlisted_and_refused_until_reset(
    emu: EmulatorServer, http: httpx.Client
) -> None:
    emu.retire(PREVIEW)
    assert PREVIEW not in openrouter_listing(http)
    assert "google/gemini-3.1-flash-image" in openrouter_listing(http)  # the GA id stays
    r = http.post(CHAT, json=chat_body(model=PREVIEW), headers=OR_HEADERS)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == f"{PREVIEW} is not a valid model ID"
    variant = http.post(CHAT, json=chat_body(model=PREVIEW + ":nitro"), headers=OR_HEADERS)
    assert variant.status_code == 400
    assert http.get(f"/api/v1/model/{PREVIEW}").status_code == 404
    emu.reset()
    assert PREVIEW in openrouter_listing(http)
    assert http.post(CHAT, json=chat_body(model=PREVIEW), headers=OR_HEADERS).status_code == 200


def test_a_retired_gemini_id_answers_not_found(emu: EmulatorServer, http: httpx.Client) -> None:
    emu.retire("gemini-3.1-flash-image-preview")
    listed = gemini_listing(http)
    assert "gemini-3.1-flash-image-preview" not in listed and "gemini-3.1-flash-image" in listed
    r = http.post(
        gen_path("gemini-3.1-flash-image-preview"), json=gemini_body(), headers=GEMINI_HEADERS
    )
    assert r.status_code == 404
    assert r.json()["error"]["status"] == "NOT_FOUND"
    assert "models/gemini-3.1-flash-image-preview is not found" in r.json()["error"]["message"]
    got = http.get("/v1beta/models/gemini-3.1-flash-image-preview", headers=GEMINI_HEADERS)
    assert got.status_code == 404


@pytest.fixture
def retiring() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(retired=frozenset({PREVIEW}))) as server:
        yield server


def test_retired_ids_can_be_configured_and_survive_a_reset(retiring: EmulatorServer) -> None:
    retiring.reset()
    with httpx.Client(base_url=retiring.url, timeout=30) as http:
        assert PREVIEW not in openrouter_listing(http)
        r = http.post(CHAT, json=chat_body(model=PREVIEW), headers=OR_HEADERS)
    assert r.status_code == 400
