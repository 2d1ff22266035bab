"""Checks on what clients send: reference images and their base64."""

from __future__ import annotations

import binascii
import io
import math
from collections.abc import Iterable
from typing import Any

import orjson
import pybase64
from PIL import Image, UnidentifiedImageError

__all__ = ["INVALID_JSON", "decode_base64", "loads", "ratio_for_shape", "shape_of", "sniff_image"]

_URLSAFE = bytes.maketrans(b"-_", b"+/")
INVALID_JSON: Any = object()


def loads(raw: bytes) -> Any:
    """The parsed JSON body, or ``INVALID_JSON``; an empty body is ``None``."""
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return INVALID_JSON


def decode_base64(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (proto3 JSON accepts all four).

    Raises ``ValueError`` on any other character or an impossible length.
    """
    data = text.strip().encode("ascii", "strict").translate(_URLSAFE)
    data += b"=" * (-len(data) % 4)
    try:
        return pybase64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


def shape_of(raw: bytes) -> tuple[int, int] | None:
    """(width, height) of an image, from its header; None if it cannot be read."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return img.size
    except (OSError, ValueError, UnidentifiedImageError):
        return None


def ratio_for_shape(ratios: Iterable[str], shape: tuple[int, int] | None) -> str | None:
    """Gemini's choice when a request names no aspect ratio but holds reference images (the
    API reference, ``ImageConfig.aspectRatio``: "the model will choose a default aspect ratio
    based on any reference images provided"): the listed ratio nearest the image's shape."""
    if shape is None or shape[0] <= 0 or shape[1] <= 0:
        return None
    target = shape[0] / shape[1]

    def off(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(math.log((float(w) / float(h)) / target))

    return min(ratios, key=off, default=None)


def sniff_image(raw: bytes) -> str | None:
    """The MIME type of a PNG, JPEG, WebP or GIF from its first bytes, else None."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def check_data_url(url: str) -> str | None:
    """What is wrong with a ``data:`` image URL, or None if it holds a decodable image."""
    header, sep, data = url.partition(",")
    if not sep or not header.endswith(";base64"):
        return "image data URL must be base64 encoded (data:<type>;base64,...)"
    mime = header[len("data:") : -len(";base64")]
    if not mime.startswith("image/"):
        return f"unsupported image type {mime!r}"
    try:
        raw = decode_base64(data)
    except (ValueError, UnicodeEncodeError):
        return "image data is not valid base64"
    if sniff_image(raw) is None:
        return "image data is not a PNG, JPEG, WebP or GIF image"
    return None
