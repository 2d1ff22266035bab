"""Small factories for provider tests: calls, images, fixtures."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from nanobanana.catalog import Catalog
from nanobanana.imaging import reference_from_bytes
from nanobanana.providers.base import ProviderCall
from nanobanana.types import ReferenceImage

from ..support import png_bytes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OPENROUTER_KEY = "sk-or-v1-CANARY0123456789abcdef0123456789abcdef"
GEMINI_KEY = "AIzaCANARY0123456789abcdefghijklmnopqrs"
CATALOG = Catalog()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def noise_png(nbytes: int) -> bytes:
    """An incompressible PNG of about ``nbytes`` bytes (random pixels, no compression)."""
    side = max(int((nbytes / 3) ** 0.5), 1)
    img = PILImage.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def reference(width: int = 3, height: int = 2) -> ReferenceImage:
    return reference_from_bytes(png_bytes(width, height, (10, 120, 240)))


def call(
    model: str = "gemini-2.5-flash-image",
    provider: str = "openrouter",
    *,
    prompt: str = "a red fox in the snow",
    **kw: Any,
) -> ProviderCall:
    spec = CATALOG.get(model)
    return ProviderCall(model=spec, wire_model=spec.wire_id(provider), prompt=prompt, **kw)
