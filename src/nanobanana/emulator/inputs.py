"""Checks on what clients send: reference images and their base64."""

from __future__ import annotations

import binascii
from typing import Any

import orjson
import pybase64

__all__ = ["INVALID_JSON", "decode_base64", "loads", "sniff_image"]

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
