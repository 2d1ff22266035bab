"""An edit with no aspect ratio: Gemini's models choose one from the reference image (the API
reference, ``ImageConfig.aspectRatio``: "If not specified, the model will choose a default
aspect ratio based on any reference images provided"), on Google's API and on OpenRouter;
other models draw their default square."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from ..support import image_size, png_bytes
from .helpers import CHAT, GEMINI_HEADERS, OR_HEADERS, data_url_image, gen_path


def inline(width: int, height: int) -> dict[str, Any]:
    data = base64.b64encode(png_bytes(width, height)).decode()
    return {"inlineData": {"mimeType": "image/png", "data": data}}


def data_url(width: int, height: int) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(width, height)).decode()


def gemini_image(http: httpx.Client, parts: list[dict[str, Any]], **image_config: Any) -> bytes:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}]}
    if image_config:
        body["generationConfig"] = {"imageConfig": image_config}
    r = http.post(gen_path(), json=body, headers=GEMINI_HEADERS)
    assert r.status_code == 200, r.text
    found = [
        p["inlineData"]["data"]
        for p in r.json()["candidates"][0]["content"]["parts"]
        if "inlineData" in p
    ]
    return base64.b64decode(found[0])


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((320, 180), (1344, 768)), ((90, 160), (768, 1344)), ((300, 200), (1248, 832))],
)
def test_gemini_keeps_the_reference_shape(
    http: httpx.Client, shape: tuple[int, int], expected: tuple[int, int]
) -> None:
    raw = gemini_image(http, [{"text": "make the sky purple"}, inline(*shape)])
    assert image_size(raw) == expected


def test_gemini_an_explicit_ratio_wins_and_no_reference_is_square(http: httpx.Client) -> None:
    wide = [{"text": "make the sky purple"}, inline(320, 180)]
    assert image_size(gemini_image(http, wide, aspectRatio="1:1")) == (1024, 1024)
    assert image_size(gemini_image(http, [{"text": "a red fox"}])) == (1024, 1024)


def openrouter_image(http: httpx.Client, model: str, url: str) -> tuple[int, int]:
    content = [{"type": "text", "text": "make the sky purple"}]
    content.append({"type": "image_url", "image_url": {"url": url}})  # type: ignore[dict-item]
    body = {
        "model": model,
        "modalities": ["image", "text"] if model.startswith("google/") else ["image"],
        "messages": [{"role": "user", "content": content}],
    }
    r = http.post(CHAT, json=body, headers=OR_HEADERS)
    assert r.status_code == 200, r.text
    _, raw = data_url_image(r.json()["choices"][0]["message"]["images"][0]["image_url"]["url"])
    return image_size(raw)


def test_openrouter_gemini_keeps_the_shape_other_models_draw_squares(http: httpx.Client) -> None:
    wide = data_url(320, 180)
    assert openrouter_image(http, "google/gemini-2.5-flash-image", wide) == (1344, 768)
    assert openrouter_image(http, "black-forest-labs/flux.2-pro", wide) == (1024, 1024)
