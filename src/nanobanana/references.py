"""Turn what a caller passes as reference images into checked ``ReferenceImage`` values.

Accepted: a path (``str`` or ``Path``), raw ``bytes``, a PIL image, a ``data:`` URL, or an
``http(s)`` URL (fetched with a size cap, a deadline, at most three redirects, and an image
content type).  Each is checked before any paid call: format PNG/JPEG/WEBP, bytes, pixels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ReferenceImageError
from .imaging import (
    MAX_REFERENCE_BYTES,
    reference_from_bytes,
    reference_from_data_url,
    reference_from_path,
    reference_from_pil,
)
from .types import Image, ReferenceImage

#: Most reference images one request may carry, whatever the model says.
MAX_REFERENCES = 14
URL_FETCH_TIMEOUT = 30.0
MAX_REDIRECTS = 3

ReferenceInput = str | Path | bytes | ReferenceImage | Image | Any


async def resolve_references(items: Iterable[ReferenceInput]) -> tuple[ReferenceImage, ...]:
    items = list(items)
    if len(items) > MAX_REFERENCES:
        raise ReferenceImageError(
            f"At most {MAX_REFERENCES} reference images are accepted; got {len(items)}.",
            field="images",
        )
    return tuple(await asyncio.gather(*(resolve_reference(i) for i in items)))


async def resolve_reference(item: ReferenceInput) -> ReferenceImage:
    if isinstance(item, ReferenceImage):
        return item
    if isinstance(item, Image):
        return ReferenceImage(item.data, item.mime_type, item.width, item.height)
    if isinstance(item, bytes | bytearray | memoryview):
        return reference_from_bytes(bytes(item))
    if isinstance(item, Path):
        return await asyncio.to_thread(reference_from_path, item)
    if isinstance(item, str):
        if item.startswith("data:"):
            return reference_from_data_url(item)
        if item.startswith(("http://", "https://")):
            return await fetch_reference(item)
        return await asyncio.to_thread(lambda: reference_from_path(Path(item).expanduser()))
    if hasattr(item, "save") and hasattr(item, "size"):  # a PIL image
        return reference_from_pil(item)
    raise ReferenceImageError(
        f"Cannot use {type(item).__name__} as a reference image: pass a path, bytes, "
        "a PIL image, a data URL or an http(s) URL.",
        field="images",
    )


async def fetch_reference(url: str) -> ReferenceImage:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=URL_FETCH_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, max_redirects=MAX_REDIRECTS) as resp,
        ):
            if resp.status != 200:
                raise ReferenceImageError(
                    f"Fetching the reference image failed with HTTP {resp.status}.",
                    field="images",
                )
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith("image/"):
                raise ReferenceImageError(
                    f"The reference URL did not return an image (Content-Type {ctype!r}).",
                    field="images",
                )
            data = bytearray()
            async for chunk in resp.content.iter_chunked(1 << 16):
                data += chunk
                if len(data) > MAX_REFERENCE_BYTES:
                    raise ReferenceImageError(
                        f"The reference image at the URL is over "
                        f"{MAX_REFERENCE_BYTES / 1e6:.0f} MB.",
                        field="images",
                    )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ReferenceImageError(
            f"Could not fetch the reference image ({type(exc).__name__}).", field="images"
        ) from exc
    return reference_from_bytes(bytes(data), what="downloaded image")
