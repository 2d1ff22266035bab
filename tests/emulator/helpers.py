"""Small helpers for the emulator's tests: canary keys, request bodies, SSE and image decoding."""

from __future__ import annotations

import base64
import io
from typing import Any

import orjson
from PIL import Image

OR_KEY = "sk-or-v1-CANARY00000000000000000000000000000000"
GEMINI_KEY = "AIzaCANARY000000000000000000000000000"
OR_HEADERS = {"Authorization": f"Bearer {OR_KEY}"}
GEMINI_HEADERS = {"x-goog-api-key": GEMINI_KEY}
CHAT = "/api/v1/chat/completions"


def gen_path(model: str = "gemini-2.5-flash-image", method: str = "generateContent") -> str:
    return f"/v1beta/models/{model}:{method}"


def chat_body(
    prompt: str = "a red fox",
    model: str = "google/gemini-2.5-flash-image",
    modalities: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    body["modalities"] = ["image", "text"] if modalities is None else modalities
    body.update(extra)
    return body


def gemini_body(prompt: str = "a red fox", **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    if config:
        body["generationConfig"] = config
    return body


def data_url_image(url: str) -> tuple[str, bytes]:
    """(mime, bytes) of a ``data:<mime>;base64,...`` URL, decoded strictly."""
    head, _, data = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:40]
    return head[5:-7], base64.b64decode(data, validate=True)


def image_format(raw: bytes) -> str | None:
    with Image.open(io.BytesIO(raw)) as img:
        return img.format


def sse_events(raw: bytes) -> list[bytes]:
    """Every SSE event (``\\n\\n`` or ``\\r\\n\\r\\n`` separated), comments included, in order."""
    text = raw.replace(b"\r\n", b"\n")
    return [e for e in text.split(b"\n\n") if e]


def sse_data(raw: bytes) -> list[Any]:
    """The JSON of every ``data:`` event (``[DONE]`` kept as the string)."""
    found: list[Any] = []
    for event in sse_events(raw):
        if event.startswith(b"data: "):
            payload = event[len(b"data: ") :]
            found.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return found
