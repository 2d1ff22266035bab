"""Uploads (I1-I4): size limits before buffering, decompression bombs, format allowlist, and
storage keys that never come from user input."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import AsyncIterator, Callable

import pytest
from PIL import Image as PILImage

from nanobanana.server.settings import Settings

from ..support import png_bytes
from .conftest import Api, running

pytestmark = pytest.mark.timeout(60)
UP = "/api/uploads"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A small PNG whose header declares a huge image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + width * 3) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")
    )


def noise_png() -> bytes:
    buf = io.BytesIO()
    PILImage.frombytes("RGB", (64, 64), bytes(range(256)) * 48).save(buf, format="PNG")
    return buf.getvalue()


def encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (16, 16), (1, 2, 3)).save(buf, format=fmt)
    return buf.getvalue()


async def test_upload_multipart_and_raw(db_api: Api) -> None:
    h = await db_api.user("alice")
    data = png_bytes(40, 30)
    r = await db_api.client.post(UP, files={"file": ("x.png", data, "image/png")}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["width"], body["height"], body["mime_type"]) == (40, 30, "image/png")
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    jpeg = encoded("JPEG")
    r = await db_api.client.post(UP, content=jpeg, headers={**h, "Content-Type": "image/jpeg"})
    assert r.status_code == 201 and r.json()["mime_type"] == "image/jpeg"
    assert (
        await db_api.client.post(UP, files={"file": ("x.png", data, "image/png")})
    ).status_code == 401


async def test_declared_oversize_is_refused_before_reading(api: Api) -> None:
    h = await api.user("alice")
    consumed = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal consumed
        for _ in range(50):
            consumed += 1
            yield b"\0" * (1 << 20)

    r = await api.client.post(
        UP,
        content=body(),
        headers={**h, "Content-Type": "image/png", "Content-Length": str(50 << 20)},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert consumed <= 1


async def test_streamed_oversize_stops_at_the_limit(settings_for: Callable[..., Settings]) -> None:
    async with running(settings_for(max_upload_bytes=2 << 20)) as api:
        h = await api.user("alice")
        part_head = (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        )
        for ctype, head in (("image/png", b""), ("multipart/form-data; boundary=xyz", part_head)):
            consumed = 0

            async def body(head: bytes = head) -> AsyncIterator[bytes]:
                nonlocal consumed
                yield head
                for _ in range(50):
                    consumed += 1
                    yield b"\0" * (1 << 20)

            r = await api.client.post(UP, content=body(), headers={**h, "Content-Type": ctype})
            assert r.status_code == 413, (ctype, r.text)
            assert consumed <= 4  # stopped just past 2 MB, not after 50 MB


async def test_whole_request_limit_applies_to_json(settings_for: Callable[..., Settings]) -> None:
    async with running(settings_for(max_request_bytes=64 * 1024)) as api:
        h = await api.user("alice")
        r = await api.client.post(
            "/api/nano-banana/generate", json={"prompt": "x" * 70_000}, headers=h
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_decompression_bomb(api: Api) -> None:
    h = await api.user("alice")
    data = bomb_png()
    assert len(data) < 100_000
    r = await api.client.post(UP, files={"file": ("bomb.png", data, "image/png")}, headers=h)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "image_too_large"
    # Just under the limit in bytes but over it in pixels (between Pillow's warning and error).
    r = await api.client.post(
        UP, files={"file": ("b.png", bomb_png(9000, 9000), "image/png")}, headers=h
    )
    assert r.status_code == 413
    assert not any(api.settings.images_dir.rglob("*.*"))


@pytest.mark.parametrize(
    "payload",
    [
        encoded("GIF"),
        encoded("TIFF"),
        encoded("BMP"),
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"<html><script>alert(1)</script></html>",
        noise_png()[: len(noise_png()) // 2],  # truncated
        b"",
    ],
    ids=["gif", "tiff", "bmp", "svg", "html", "truncated", "empty"],
)
async def test_format_allowlist(api: Api, payload: bytes) -> None:
    h = await api.user("alice")
    r = await api.client.post(UP, files={"file": ("image.png", payload, "image/png")}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_image"
    assert not any(api.settings.images_dir.rglob("*.*"))


async def test_other_content_types(api: Api) -> None:
    h = await api.user("alice")
    r = await api.client.post(UP, content=b"x", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = await api.client.post(UP, files={"other": ("a.png", png_bytes(), "image/png")}, headers=h)
    assert r.status_code == 422


async def test_a_form_field_besides_file_is_refused_by_name(api: Api) -> None:
    """The schema says the form has `file` and nothing else: an extra field is a mistake to
    point out (a misspelt option, say), not something to ignore; nothing is stored."""
    h = await api.user("alice")
    r = await api.client.post(
        UP,
        files={"file": ("a.png", png_bytes(), "image/png")},
        data={"purpose": "reference", "aspect": "16:9"},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"] == (
        "The form takes only a `file` field; remove `aspect`, `purpose`."
    )
    assert not any(api.settings.images_dir.rglob("*.*"))


@pytest.mark.parametrize(
    "name", ["../../x.png", "..\\..\\x.png", "/etc/passwd", "a\x00b.png", "%2e%2e/%2e%2e/x.png"]
)
async def test_filenames_never_reach_the_storage(api: Api, name: str) -> None:
    h = await api.user("alice")
    data = png_bytes(20, 20, (9, 9, 9))
    r = await api.client.post(UP, files={"file": (name, data, "image/png")}, headers=h)
    assert r.status_code == 201, r.text
    root = api.settings.images_dir.resolve()
    files = [p for p in api.settings.data_dir.rglob("*") if p.is_file() and p.suffix == ".png"]
    digest = hashlib.sha256(data).hexdigest()
    assert [p.resolve() for p in files] == [root / digest[:2] / f"{digest}.png"]
    assert not (api.settings.data_dir.parent / "x.png").exists()
