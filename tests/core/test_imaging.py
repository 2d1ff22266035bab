from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib

import pybase64
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from nanobanana import errors, files, imaging

from ..support import png_bytes


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_decode_returns_a_verified_image_of_the_real_size():
    img = imaging.decode_image(b64(png_bytes(64, 32)), provider="google")
    assert (img.width, img.height, img.mime_type) == (64, 32, "image/png")


def test_decode_accepts_urlsafe_unpadded_base64():
    raw = png_bytes(8, 8)
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=")
    assert imaging.decode_image(encoded, provider="google").data == raw


def test_decode_accepts_a_memoryview_slice_without_copying_to_str():
    body = b'{"url":"data:image/png;base64,' + b64(png_bytes(8, 8)) + b'"}'
    start = body.index(b",") + 1
    end = body.rindex(b'"')
    img = imaging.decode_image(memoryview(body)[start:end], provider="openrouter")
    assert img.width == 8


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"!!!!not base64!!!!",
        b64(png_bytes(8, 8))[:-7] + b"*&^%$#@",  # junk characters are refused, not dropped
        b64(b"<html>not an image</html>"),
        b64(png_bytes(64, 64)[:-40]),  # truncated PNG
        b64(b"GIF89a" + b"\0" * 40),  # a format we do not accept
    ],
)
def test_decode_refuses_anything_but_a_complete_image(payload):
    with pytest.raises(errors.InvalidResponseError):
        imaging.decode_image(payload, provider="openrouter")


def _bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\0" + b"\0" * width
    idat = zlib.compress(row * 64, 9)  # far fewer rows than declared
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    bomb = _bomb_png(20000, 20000)
    assert len(bomb) < 100_000
    with pytest.raises(errors.ReferenceImageError, match=r"pixels|too large"):
        imaging.reference_from_bytes(bomb)


def test_reference_formats_are_an_allowlist():
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buf, format="GIF")
    with pytest.raises(errors.ReferenceImageError, match="PNG, JPEG or WEBP"):
        imaging.reference_from_bytes(buf.getvalue())
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buf, format="JPEG")
    assert imaging.reference_from_bytes(buf.getvalue()).mime_type == "image/jpeg"


def test_reference_size_limit():
    with pytest.raises(errors.ReferenceImageError, match="limit"):
        imaging.reference_from_bytes(b"\0" * (imaging.MAX_REFERENCE_BYTES + 1))


def test_data_url_references():
    ref = imaging.reference_from_data_url("data:image/png;base64," + b64(png_bytes(5, 7)).decode())
    assert (ref.width, ref.height) == (5, 7)
    with pytest.raises(errors.ReferenceImageError):
        imaging.reference_from_data_url("data:image/png,notbase64")


def test_png_metadata_round_trip_keeps_pixels_and_is_readable_by_pillow():
    raw = png_bytes(16, 16)
    meta = {"prompt": "a fox ü", "model": "gemini-2.5-flash-image", "seed": 3}
    tagged = bytes(files.with_png_metadata(raw, meta))
    assert files.read_metadata(tagged) == meta
    img = PILImage.open(io.BytesIO(tagged))
    img.load()
    assert img.size == (16, 16)
    assert "a fox ü" in dict(imaging.iter_png_text(tagged))["parameters"]
    assert imaging.inspect_image(tagged)[1:] == (16, 16)


def test_png_metadata_pieces_share_the_image_and_hash_and_write_like_the_joined_bytes(tmp_path):
    raw = png_bytes(64, 64)
    pieces = files.with_png_metadata(raw, {"prompt": "x" * 500})
    joined = bytes(pieces)
    assert len(pieces) == len(joined) > len(raw)
    # The image after IHDR is not copied: the last piece is a view of the original bytes.
    assert isinstance(pieces.parts[-1], memoryview) and pieces.parts[-1].obj is raw
    assert pieces.sha256() == hashlib.sha256(joined).hexdigest()
    target = tmp_path / "tagged.png"
    files.atomic_write(target, pieces)
    assert target.read_bytes() == joined


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=40), max_size=6),
    groups=st.integers(min_value=1, max_value=20),
)
def test_pieces_base64_slices_join_to_the_base64_of_the_whole(parts, groups):
    pieces = files.Pieces(*parts)
    slices = list(pieces.b64_slices(3 * groups))
    assert b"".join(slices) == base64.b64encode(b"".join(parts))
    assert all(0 < len(s) <= 4 * groups for s in slices)


def test_pieces_slices_must_be_whole_base64_groups():
    with pytest.raises(ValueError, match="multiple of 3"):
        list(files.Pieces(b"abc").b64_slices(4))


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "x.png"
    files.atomic_write(target, b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["x.png"]


def test_thumbnail_is_small_webp():
    thumb = imaging.thumbnail(png_bytes(1024, 512), max_side=128)
    img = PILImage.open(io.BytesIO(thumb))
    assert img.format == "WEBP" and max(img.size) == 128


VALID = b64(png_bytes(4, 4))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_mutation_is_rejected_or_yields_a_valid_image(data):
    buf = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    try:
        img = imaging.decode_image(bytes(buf), provider="openrouter")
    except errors.InvalidResponseError:
        return
    opened = PILImage.open(io.BytesIO(img.data))
    opened.load()
    assert opened.size == (img.width, img.height)


def test_pybase64_fast_path_is_used():
    # the strict decoder refuses what the stdlib silently accepts
    assert pybase64.b64decode(VALID, validate=True)
    with pytest.raises(ValueError):
        imaging.b64decode(b"ab$d")


# ------------------------------------------------------------------- PNG checked without Pillow
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(*chunks: bytes, ihdr: tuple[int, ...] = (4, 3, 8, 2, 0, 0, 0)) -> bytes:
    return (
        imaging.PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", *ihdr)) + b"".join(chunks)
    )


IDAT = _chunk(b"IDAT", zlib.compress(b"\0" + b"\0" * 12))
IEND = _chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        ("1", {}),
        ("L", {}),
        ("LA", {}),
        ("P", {}),
        ("RGB", {}),
        ("RGBA", {}),
        ("I;16", {}),
        ("RGB", {"compress_level": 0}),  # many IDAT chunks
    ],
)
def test_pngs_pillow_writes_are_accepted_with_pillows_size(mode, extra):
    img = PILImage.frombytes("RGB", (301, 257), bytes(range(256)) * 907)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG", **extra)
    data = buf.getvalue()
    assert imaging.inspect_image(data) == ("image/png", 301, 257)
    tagged = bytes(files.with_png_metadata(data, {"prompt": "x"}))
    assert imaging.png_size(tagged) == (301, 257)


def test_a_change_to_any_byte_of_a_png_is_refused():
    # Signature, lengths, types, data and CRCs: every byte is under a check.
    good = bytes(files.with_png_metadata(png_bytes(5, 4), {"prompt": "a fox"}))
    assert imaging.png_size(good) == (5, 4)
    for pos in range(len(good)):
        for flip in (0x01, 0x80):
            bad = bytearray(good)
            bad[pos] ^= flip
            with pytest.raises(ValueError):
                imaging.png_size(bad)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (_png(IDAT, IEND) + b"junk", "after its IEND"),
        (_png(IEND), "no image data"),
        (_png(IDAT), "truncated"),
        (_png(IDAT, IEND)[:-3], "truncated"),
        (_png(_chunk(b"IHDR", b"\0" * 13), IDAT, IEND), "second IHDR"),
        (_png(_chunk(b"ID4T", b""), IDAT, IEND), "invalid type"),
        (_png(IDAT, IEND, ihdr=(0, 3, 8, 2, 0, 0, 0)), "impossible size"),
        (_png(IDAT, IEND, ihdr=(4, 3, 16, 3, 0, 0, 0)), "bit depth 16"),
        (_png(IDAT, IEND, ihdr=(4, 3, 8, 5, 0, 0, 0)), "colour type 5"),
        (_png(IDAT, IEND, ihdr=(4, 3, 8, 2, 1, 0, 0)), "unknown compression"),
        (_png(IDAT, IEND, ihdr=(20000, 20000, 8, 2, 0, 0, 0)), "pixels"),
        (imaging.PNG_SIGNATURE + IEND + IEND + IEND, "13-byte IHDR"),
    ],
)
def test_unsound_pngs_are_refused_saying_why(data, says):
    with pytest.raises(ValueError, match=says):
        imaging.inspect_image(data)


def test_without_verify_only_the_header_is_read():
    # ``nanobanana info`` shows the size of a damaged file too.
    assert imaging.inspect_image(_png(IDAT)[:40], verify=False) == ("image/png", 4, 3)
    with pytest.raises(ValueError):
        imaging.inspect_image(_png(IDAT)[:40])
