"""``nanobanana info``: reads back the provenance nanobanana writes into PNGs."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image as PILImage

from nanobanana.files import with_png_metadata


def _png_with(meta: dict[str, object] | None) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (12, 6), "teal").save(buf, format="PNG")
    return bytes(with_png_metadata(buf.getvalue(), meta)) if meta else buf.getvalue()


META = {
    "prompt": "a teal card",
    "model": "gemini-2.5-flash-image",
    "provider": "openrouter",
    "aspect_ratio": "2:1",
    "seed": 7,
    "fallback": ["google:error", "openrouter:ok"],
    "nanobanana_version": "0.1.0",
}


def test_info_prints_the_provenance(cli, isolated: Path) -> None:
    (isolated / "card.png").write_bytes(_png_with(META))
    r = cli("info", "card.png")
    assert r.code == 0
    assert r.out.splitlines()[0] == "card.png: 12x6 PNG"
    assert "a teal card" in r.out and "gemini-2.5-flash-image" in r.out
    assert "google:error, openrouter:ok" in r.out


def test_info_json(cli, isolated: Path) -> None:
    (isolated / "card.png").write_bytes(_png_with(META))
    r = cli("info", "card.png", "--json")
    data = json.loads(r.out)
    assert data["provenance"] == META
    assert (data["width"], data["height"], data["mime_type"]) == (12, 6, "image/png")


def test_info_without_provenance_or_file(cli, isolated: Path) -> None:
    (isolated / "plain.png").write_bytes(_png_with(None))
    r = cli("info", "plain.png")
    assert r.code == 1 and "No nanobanana provenance" in r.out
    r = cli("info", "missing.png")
    assert r.code == 2 and r.err == "error: missing.png does not exist.\n"
    (isolated / "notes.txt").write_text("hello")
    r = cli("info", "notes.txt")
    assert r.code == 2 and "not a PNG, JPEG or WEBP" in r.err
