"""Synthetic images: real PNGs of an exact pixel size, visibly fake, with a realistic payload.

Each image is a colour gradient with the word SYNTHETIC, a caption and the start of the prompt
in a band at the top, a few shapes below it, and a block of colour static at the bottom.  The
static does not compress, so a 1K image weighs about 1.2 MB like a real one (a 4K one about
15 MB).  Everything but the text band is compressed once per size and cached (see ``png``), so
a request renders and compresses only the band: a few milliseconds at 1K.

In fixed-payload mode every size has one pre-rendered, pre-encoded base64 payload and requests
do no image work at all.
"""

from __future__ import annotations

import io
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pybase64
from PIL import Image, ImageDraw, ImageFont

from . import png

__all__ = ["ImageFactory", "Payload", "SizeTemplate"]

# Bytes of PNG per pixel aimed at: ~1.2 at 1 MP, falling slowly with size (exponent below) so
# that 4K lands near 15 MB as real 4K outputs do.
_BYTES_AT_1MP = 1_200_000
_SIZE_EXPONENT = 0.9
_MAX_NOISE_FRACTION = 0.6
# Never let one custom size exhaust memory.
MAX_SIDE = 16_384
MAX_PIXELS = 64 * 1024 * 1024
_CACHE_BYTES = 512 * 1024 * 1024
_JUNK = b"*!#%&"
_NOT_AN_IMAGE = b"This is not an image: the nanobanana emulator sent text bytes on purpose.\n"


@dataclass(frozen=True)
class Payload:
    """An image payload as sent on the wire: base64 bytes and what they claim to be."""

    b64: bytes
    mime: str
    width: int
    height: int


@dataclass(frozen=True)
class SizeTemplate:
    """Everything about one pixel size that does not depend on the request.

    Rows, top to bottom: ``head`` (the word SYNTHETIC, compressed once), ``band`` (caption and
    prompt, drawn and compressed per request), ``tail`` (shapes and static, compressed once).
    """

    width: int
    height: int
    head: tuple[tuple[bytes, png.Segment], ...]
    band: Image.Image
    tail: tuple[tuple[bytes, png.Segment], ...]
    line_size: int

    @property
    def nbytes(self) -> int:
        cached = sum(len(b) for b, _ in (*self.head, *self.tail))
        return self.width * self.band.height * 3 + cached


def _gradient(width: int, height: int, seed: int) -> Image.Image:
    """A diagonal two-axis gradient; the hue differs per size so sizes are easy to tell apart."""
    ramp = Image.linear_gradient("L")
    vertical = ramp.resize((width, height))
    horizontal = ramp.rotate(90).resize((width, height))
    blue = Image.new("L", (width, height), 60 + (seed * 37) % 140)
    return Image.merge("RGB", (horizontal, vertical, blue))


def _layout(width: int, height: int) -> tuple[int, int, int, int]:
    """Rows of the title and of the text band, and the two font sizes, scaled to the image."""
    title = max(10, int(min(width / 7, height / 7)))
    line = max(9, int(min(width / 40, height / 24)))
    margin = max(4, line // 2)
    head_rows = min(height, margin + int(title * 1.25))
    band_rows = min(height - head_rows, int(line * 1.35) * 3 + margin)
    return head_rows, band_rows, title, line


def _segment(rgb: bytes, width: int, *, level: int, final: bool) -> tuple[bytes, png.Segment]:
    seg = png.compress_rows(png.raw_rows(rgb, width), level=level, final=final)
    return b"".join(png.idat_chunks(seg.deflated)), seg


def build_template(width: int, height: int) -> SizeTemplate:
    """Render and compress everything that does not depend on the request, for one size."""
    seed = width * 100_003 + height
    head_rows, band_rows, title, line = _layout(width, height)
    text_rows = head_rows + band_rows
    target = _BYTES_AT_1MP * (width * height / 1_048_576) ** _SIZE_EXPONENT
    noise_rows = min(int(target / (width * 3)), int(height * _MAX_NOISE_FRACTION))
    noise_rows = max(0, min(noise_rows, height - text_rows))
    middle_rows = height - text_rows - noise_rows

    background = _gradient(width, height - noise_rows, seed)
    draw = ImageDraw.Draw(background)
    margin = max(4, line // 2)
    draw.text(
        (margin, margin),
        "SYNTHETIC",
        font=ImageFont.load_default(size=title),
        fill=(255, 255, 255),
        stroke_width=max(1, title // 25),
        stroke_fill=(0, 0, 0),
    )
    # A dark strip behind the per-request text keeps it readable without a costly stroke.
    draw.rectangle((0, head_rows, width, text_rows), fill=(20, 20, 40))
    # A few shapes so the middle is not a plain gradient.
    step = max(8, width // 6)
    for i, x in enumerate(range(step // 2, width, step)):
        y = text_rows + middle_rows // 2
        r = max(3, min(step, middle_rows) // 3)
        colour = (255 - (i * 40) % 255, (i * 70) % 255, 200)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(0, 0, 0))

    head = background.crop((0, 0, width, head_rows)).tobytes()
    band = background.crop((0, head_rows, width, text_rows))
    tail: list[tuple[bytes, png.Segment]] = []
    if middle_rows:
        middle = background.crop((0, text_rows, width, text_rows + middle_rows)).tobytes()
        tail.append(_segment(middle, width, level=6, final=noise_rows == 0))
    if noise_rows:
        static = random.Random(seed).randbytes(width * noise_rows * 3)
        # Level 0 stores the static verbatim: incompressible anyway, and it costs a memcpy.
        tail.append(_segment(static, width, level=0, final=True))
    head_seg = _segment(head, width, level=6, final=False)
    return SizeTemplate(width, height, (head_seg,), band, tuple(tail), line)


class ImageFactory:
    """Renders synthetic images, caching per-size templates and fixed payloads (thread-safe)."""

    def __init__(self, cache_bytes: int = _CACHE_BYTES) -> None:
        self._cache_bytes = cache_bytes
        self._templates: OrderedDict[tuple[int, int], SizeTemplate] = OrderedDict()
        self._fixed: dict[tuple[int, int], Payload] = {}
        self._fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
        self._lock = threading.Lock()

    # -- caches -------------------------------------------------------------------------------

    def template(self, width: int, height: int) -> SizeTemplate:
        check_size(width, height)
        key = (width, height)
        with self._lock:
            found = self._templates.get(key)
            if found is not None:
                self._templates.move_to_end(key)
                return found
        built = build_template(width, height)
        with self._lock:
            found = self._templates.setdefault(key, built)
            self._templates.move_to_end(key)
            total = sum(t.nbytes for t in self._templates.values())
            while total > self._cache_bytes and len(self._templates) > 1:
                _, evicted = self._templates.popitem(last=False)
                total -= evicted.nbytes
        return found

    def _font(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        with self._lock:
            font = self._fonts.get(size)
        if font is None:
            font = ImageFont.load_default(size=size)
            with self._lock:
                self._fonts[size] = font
        return font

    # -- rendering ----------------------------------------------------------------------------

    def render_png(self, width: int, height: int, caption: str, prompt: str) -> bytes:
        """A PNG of exactly ``width`` x ``height`` with the caption and prompt start drawn."""
        tpl = self.template(width, height)
        band = tpl.band.copy()
        draw = ImageDraw.Draw(band)
        margin = max(4, tpl.line_size // 2)
        font = self._font(tpl.line_size)
        y = margin // 2
        for text in [caption, *_wrap(_printable(prompt), font, width - 2 * margin, 2)]:
            draw.text((margin, y), text, font=font, fill=(255, 255, 255))
            y += int(tpl.line_size * 1.35)
        rows = png.compress_rows(png.raw_rows(band.tobytes(), width), level=1, final=not tpl.tail)
        return png.assemble_png(png.ihdr(width, height), [*tpl.head, rows, *tpl.tail])

    def payload(self, width: int, height: int, caption: str, prompt: str) -> Payload:
        data = self.render_png(width, height, caption, prompt)
        return Payload(pybase64.b64encode(data), "image/png", width, height)

    def cached_fixed(self, width: int, height: int) -> Payload | None:
        """The fixed payload of a size if already rendered (cheap enough to call on the loop)."""
        with self._lock:
            return self._fixed.get((width, height))

    def fixed_payload(self, width: int, height: int) -> Payload:
        """The pre-encoded payload of one size, rendered on first use and kept."""
        key = (width, height)
        with self._lock:
            found = self._fixed.get(key)
        if found is not None:
            return found
        made = self.payload(width, height, f"fixed payload - {width}x{height}", "")
        with self._lock:
            return self._fixed.setdefault(key, made)

    # -- faulty variants (scenarios) -----------------------------------------------------------

    def jpeg(self, width: int, height: int, caption: str, prompt: str) -> Payload:
        with Image.open(io.BytesIO(self.render_png(width, height, caption, prompt))) as img:
            buf = io.BytesIO()
            img.convert("RGB").save(buf, "JPEG", quality=90)
        return Payload(pybase64.b64encode(buf.getvalue()), "image/jpeg", width, height)

    @staticmethod
    def not_an_image(width: int, height: int) -> Payload:
        return Payload(pybase64.b64encode(_NOT_AN_IMAGE * 64), "image/png", width, height)

    @staticmethod
    def truncated(payload: Payload) -> Payload:
        """The first half of the image bytes, re-encoded as valid base64."""
        raw = pybase64.b64decode(payload.b64, validate=True)
        return Payload(
            pybase64.b64encode(raw[: len(raw) // 2]), payload.mime, payload.width, payload.height
        )

    @staticmethod
    def with_junk(payload: Payload) -> Payload:
        """Base64 with junk characters spliced in at several places (strict decoders refuse it)."""
        b64 = payload.b64
        cuts = [len(b64) * k // 5 // 4 * 4 for k in range(1, 5)]
        pieces, start = [], 0
        for i, cut in enumerate(cuts):
            pieces.append(b64[start:cut])
            pieces.append(_JUNK[i % len(_JUNK) :] + _JUNK[: i % len(_JUNK)])
            start = cut
        pieces.append(b64[start:])
        return Payload(b"".join(pieces), payload.mime, payload.width, payload.height)

    @staticmethod
    def oversize(payload: Payload, megabytes: float) -> Payload:
        """A still-valid PNG padded with a private ancillary chunk to ``megabytes`` of base64."""
        raw = pybase64.b64decode(payload.b64, validate=True)
        target_raw = int(megabytes * 1_000_000) * 3 // 4
        pad = max(0, target_raw - len(raw) - 12)
        if not raw.startswith(png.PNG_SIGNATURE) or pad == 0:
            return payload
        # Insert right after IHDR (8 signature + 25 IHDR bytes) so a decoder must read past it.
        cut = len(png.PNG_SIGNATURE) + 25
        padded = raw[:cut] + png.chunk(b"emPd", bytes(pad)) + raw[cut:]
        return Payload(pybase64.b64encode(padded), payload.mime, payload.width, payload.height)


def check_size(width: int, height: int) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise ValueError(
            f"image size {width}x{height} is outside the emulator's limits "
            f"(each side 1..{MAX_SIDE}, at most {MAX_PIXELS} pixels)"
        )


#: The band shows two lines of the prompt: what lies beyond this many characters is never drawn,
#: so it is never measured either (a 31,000-character prompt costs what a 400-character one does).
MAX_DRAWN_CHARS = 400
_ELLIPSIS = "..."


def _printable(text: str) -> str:
    text = text[: MAX_DRAWN_CHARS * 4]  # whitespace runs collapse below; the rest is not drawn
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _fit(text: str, font: Font, width: int, *, suffix: str = "", keep: int = 0) -> str:
    """The longest prefix of ``text`` (at least ``keep`` characters) that fits in ``width``
    pixels followed by ``suffix``: a bisection, so log(n) measurements, not n."""
    if font.getlength(text + suffix) <= width:
        return text + suffix
    fits, too_long = 0, len(text)
    while too_long - fits > 1:
        mid = (fits + too_long) // 2
        if font.getlength(text[:mid] + suffix) <= width:
            fits = mid
        else:
            too_long = mid
    return text[: max(fits, keep)] + suffix


def _wrap(text: str, font: Font, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to ``max_lines`` lines of at most ``width`` pixels; ellipsis if cut.

    Bounded work whatever the prompt: only the first ``MAX_DRAWN_CHARS`` characters are laid
    out, and a word too long for a line is cut by bisection."""
    shown = text[:MAX_DRAWN_CHARS]
    words = shown.split()
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = _fit(word, font, width, keep=1)  # the rest of an over-long word is dropped
        if len(lines) == max_lines:
            break
    if current and len(lines) < max_lines:
        lines.append(current)
    cut = len(text) > len(shown) or " ".join(lines) != " ".join(words)
    if lines and cut:
        lines[-1] = _fit(lines[-1], font, width, suffix=_ELLIPSIS)
    return lines
