"""Synthetic images: exact sizes, valid PNG structure, realistic weight, speed, faulty variants."""

from __future__ import annotations

import io
import random
import statistics
import struct
import time
import zlib

import pybase64
import pytest
from PIL import Image

from nanobanana.emulator import images, png
from nanobanana.emulator.models import (
    BASE_RATIOS,
    EXTENDED_RATIOS,
    GEMINI_MODELS,
    OPENROUTER_MODELS,
    pixel_size,
)

from ..support import image_size

TABLE_1K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (384, 3072),
    "8:1": (3072, 384),
}


@pytest.fixture(scope="module")
def factory() -> images.ImageFactory:
    return images.ImageFactory()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking each CRC on the way."""
    assert data.startswith(png.PNG_SIGNATURE)
    pos, found = len(png.PNG_SIGNATURE), []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(body, zlib.crc32(kind)), kind
        found.append((kind, body))
        pos += 12 + length
    return found


def test_pixel_table_matches_reference() -> None:
    for ratio, (w, h) in TABLE_1K.items():
        assert pixel_size(ratio, "1K") == (w, h)
        assert pixel_size(ratio, "2K") == (2 * w, 2 * h)
        assert pixel_size(ratio, "4K") == (4 * w, 4 * h)
        assert pixel_size(ratio, "0.5K") == (w // 2, h // 2)


def test_model_tables_carry_the_documented_capabilities() -> None:
    assert GEMINI_MODELS["gemini-2.5-flash-image"].sizes == ("1K",)
    assert GEMINI_MODELS["gemini-2.5-flash-image-preview"].sizes == ("1K",)
    for name in ("gemini-3-pro-image", "gemini-3-pro-image-preview"):
        assert GEMINI_MODELS[name].sizes == ("1K", "2K", "4K")
        assert GEMINI_MODELS[name].ratios == BASE_RATIOS
    for name in ("gemini-3.1-flash-image", "gemini-3.1-flash-image-preview"):
        assert GEMINI_MODELS[name].sizes == ("0.5K", "1K", "2K", "4K")
        assert GEMINI_MODELS[name].ratios == EXTENDED_RATIOS
    image_only = [m for m in OPENROUTER_MODELS.values() if m.outputs == ("image",)]
    assert {m.id for m in image_only} >= {
        "black-forest-labs/flux.2-pro",
        "bytedance-seed/seedream-4.5",
        "sourceful/riverflow-v2-fast",
        "recraft/recraft-v4-pro",
        "microsoft/mai-image-2.5",
    }
    assert any(m.outputs == ("text",) for m in OPENROUTER_MODELS.values())


def test_png_structure_is_valid_and_decodes_with_zlib(factory: images.ImageFactory) -> None:
    data = factory.render_png(1024, 1024, "caption", "a red fox in the snow")
    chunks = _chunks(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, colour) == (1024, 1024, 8, 2)
    # zlib.decompress checks the combined Adler-32 trailer.
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + width * 3)
    assert all(raw[row * (1 + width * 3)] == 0 for row in range(height))


def test_adler32_combine_agrees_with_zlib() -> None:
    rng = random.Random(7)
    for _ in range(50):
        a = rng.randbytes(rng.randrange(0, 5000))
        b = rng.randbytes(rng.randrange(0, 200_000))
        combined = png.adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b))
        assert combined == zlib.adler32(a + b)


@pytest.mark.parametrize(
    ("width", "height"), [(1, 1), (3, 2), (2, 300), (300, 2), (512, 512), (384, 3072), (3072, 384)]
)
def test_any_size_renders_exactly(factory: images.ImageFactory, width: int, height: int) -> None:
    data = factory.render_png(width, height, "cap", "prompt")
    assert image_size(data) == (width, height)


def test_one_k_weighs_like_a_real_image_and_looks_synthetic(factory: images.ImageFactory) -> None:
    data = factory.render_png(1024, 1024, "caption", "a red fox")
    assert 1_000_000 <= len(data) <= 1_500_000
    assert 1_300_000 <= len(pybase64.b64encode(data)) <= 2_100_000
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        # Bottom rows are static (many colours); the text band differs from the plain gradient.
        bottom = rgb.crop((0, 1000, 1024, 1024))
        assert len(set(bottom.getdata())) > 5000


def test_text_band_depends_on_the_prompt(factory: images.ImageFactory) -> None:
    one = factory.render_png(512, 512, "caption", "a red fox")
    two = factory.render_png(512, 512, "caption", "a blue whale")
    assert one != two
    assert image_size(one) == image_size(two) == (512, 512)


class _MeasuringFont:
    """A font of 10-pixel glyphs that counts the characters it was asked to measure."""

    def __init__(self) -> None:
        self.measured = 0

    def getlength(self, text: str) -> float:
        self.measured += len(text)
        return 10.0 * len(text)


@pytest.mark.parametrize(
    "prompt",
    [
        "x" * 31_000,  # one word: cut to the line by bisection, not a character at a time
        "word " * 6_200,
        "a " + "y" * 31_000 + " b",
        "\u0301" * 31_000,  # zero-width marks: a cap by character count, not by pixels
    ],
)
def test_word_wrap_work_is_bounded_whatever_the_prompt(prompt: str) -> None:
    font = _MeasuringFont()
    lines = images._wrap(images._printable(prompt), font, 800, 2)  # type: ignore[arg-type]
    assert 1 <= len(lines) <= 2
    assert all(font.getlength(line) <= 800 for line in lines)
    assert lines[-1].endswith("...")
    assert font.measured < 60_000  # a character-at-a-time trim measured ~480 million


def test_word_wrap_lays_out_short_prompts_whole() -> None:
    font = _MeasuringFont()
    assert images._wrap("a red fox", font, 800, 2) == ["a red fox"]  # type: ignore[arg-type]
    assert images._wrap("aaaa bbbb cccc", font, 90, 2) == ["aaaa bbbb", "cccc"]  # type: ignore[arg-type]
    assert images._wrap("aaaa bbbb cccc dddd", font, 90, 1) == ["aaaa b..."]  # type: ignore[arg-type]


def test_a_huge_prompt_renders_like_a_short_one(factory: images.ImageFactory) -> None:
    png_bytes = factory.render_png(1024, 1024, "caption", "z" * 31_000)
    assert image_size(png_bytes) == (1024, 1024)


def test_rendering_is_fast(factory: images.ImageFactory) -> None:
    factory.template(1024, 1024)
    times = []
    for i in range(5):
        start = time.perf_counter()
        factory.payload(1024, 1024, "caption", f"prompt number {i}")
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.060


def test_fixed_payload_is_rendered_once(factory: images.ImageFactory) -> None:
    first = factory.fixed_payload(832, 1248)
    assert factory.cached_fixed(832, 1248) is first
    assert factory.fixed_payload(832, 1248) is first
    assert image_size(pybase64.b64decode(first.b64, validate=True)) == (832, 1248)


def test_faulty_variants(factory: images.ImageFactory) -> None:
    good = factory.payload(256, 256, "cap", "prompt")
    junk = factory.with_junk(good)
    assert any(c in junk.b64 for c in b"*!#%&")
    with pytest.raises(ValueError):
        pybase64.b64decode(junk.b64, validate=True)

    cut = factory.truncated(good)
    raw = pybase64.b64decode(cut.b64, validate=True)
    assert raw.startswith(png.PNG_SIGNATURE)
    with pytest.raises(OSError), Image.open(io.BytesIO(raw)) as img:
        img.load()

    text = pybase64.b64decode(factory.not_an_image(256, 256).b64, validate=True)
    with pytest.raises(OSError):
        Image.open(io.BytesIO(text))

    big = factory.oversize(good, 3)
    assert abs(len(big.b64) - 3_000_000) < 100
    assert image_size(pybase64.b64decode(big.b64, validate=True)) == (256, 256)

    jpeg = factory.jpeg(300, 200, "cap", "prompt")
    raw = pybase64.b64decode(jpeg.b64, validate=True)
    assert jpeg.mime == "image/jpeg" and raw.startswith(b"\xff\xd8\xff")
    assert image_size(raw) == (300, 200)


def test_sizes_outside_limits_are_refused(factory: images.ImageFactory) -> None:
    with pytest.raises(ValueError, match="limits"):
        factory.template(images.MAX_SIDE + 1, 10)
    with pytest.raises(ValueError, match="limits"):
        factory.template(0, 10)
