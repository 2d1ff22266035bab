"""Images in and out: decode and verify what providers send, check references, PNG provenance.

Hot path (a 1K image is ~1.5 MB of base64, a 4K one 15-30 MB): decoding uses pybase64 with
``validate=True`` (its SIMD path, and it refuses junk instead of silently dropping it) on a
``memoryview`` of the received bytes, so the base64 text is never copied into a ``str``.
Verification reads the header and checks chunk CRCs rather than decompressing every pixel, and
a truncated or non-image payload is an error, never a file.  A PNG (what the Gemini models send)
is walked chunk by chunk here, the checks of Pillow's ``verify``: Pillow's import and its format
plugins cost more than the check itself (about 20 ms on a one-shot command, 2 MB resident in
the service).  JPEG and WEBP are decoded in full by Pillow.
"""

from __future__ import annotations

import binascii
import io
import struct
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pybase64
from zlib_ng.zlib_ng import crc32  # zlib-ng: ~14x the stdlib zlib's CRC-32 (README)

from .errors import InvalidResponseError, ReferenceImageError
from .files import open_image, pil_module
from .types import Image, ReferenceImage

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
FORMAT_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
#: Pixel limit for anything we decode (references and results): above it, a decompression bomb.
MAX_PIXELS = 40_000_000
#: Bytes limit for one reference image (Gemini's inline limit is 7 MB per file).
MAX_REFERENCE_BYTES = 7 * 1024 * 1024


def b64decode(data: bytes | bytearray | memoryview | str) -> bytes:
    """Strict, fast base64: standard or URL-safe alphabet, padded or not."""
    if isinstance(data, str):
        data = data.encode("ascii", "strict")
    try:
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        pass
    raw = bytes(data).strip()
    raw += b"=" * (-len(raw) % 4)
    try:
        return pybase64.b64decode(raw, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid base64") from exc


def b64encode(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")


def inspect_image(data: bytes, *, verify: bool = True) -> tuple[str, int, int]:
    """Return (mime type, width, height) of an allowed image, or raise ``ValueError``."""
    if data[:8] == PNG_SIGNATURE:
        width, height = png_size(data, verify=verify)
        return "image/png", width, height
    pil = pil_module()
    with warnings.catch_warnings():
        warnings.simplefilter("error", pil.DecompressionBombWarning)
        try:
            img = pil.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
            width, height = img.size
            fmt = img.format
            if width * height > MAX_PIXELS:
                raise ValueError(f"image of {width}x{height} exceeds {MAX_PIXELS} pixels")
            if verify:
                img.load()  # JPEG or WEBP: decoded in full
        except (pil.DecompressionBombError, pil.DecompressionBombWarning) as exc:
            raise ValueError(f"image too large to decode safely: {exc}") from exc
        except pil.UnidentifiedImageError as exc:  # its text names an in-memory object
            raise ValueError(f"not a {'/'.join(ALLOWED_FORMATS)} image") from exc
        except (OSError, SyntaxError, struct.error, zlib.error, EOFError) as exc:
            raise ValueError(f"not a complete {'/'.join(ALLOWED_FORMATS)} image: {exc}") from exc
    return FORMAT_MIME[fmt], width, height


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type -> the bit depths it allows (PNG specification, 11.2.2).
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_MAX_DIMENSION = 2**31 - 1


def png_size(data: bytes | bytearray | memoryview, *, verify: bool = True) -> tuple[int, int]:
    """(width, height) of a PNG; raise ``ValueError`` if it is not a sound, complete one.

    Checked: the signature; IHDR first, 13 bytes, with sizes in range, an allowed colour type
    and bit depth, and the only compression, filter and interlace methods; the pixel limit.
    With ``verify``, also every chunk: its length within the data, a type of four letters, its
    CRC; at least one IDAT; IEND last, with nothing after it.  Every byte of a PNG is under one
    of these checks, so a change to any byte is refused.  Pixels are not decompressed."""
    view = memoryview(data)
    size = len(view)
    if size < 33 or view[:8] != PNG_SIGNATURE:
        raise ValueError("not a PNG image (no signature or no header)")
    length, kind = struct.unpack_from(">I4s", view, 8)
    if kind != b"IHDR" or length != 13:
        raise ValueError("PNG does not start with a 13-byte IHDR chunk")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", view, 16
    )
    if not (0 < width <= _PNG_MAX_DIMENSION and 0 < height <= _PNG_MAX_DIMENSION):
        raise ValueError(f"PNG declares an impossible size of {width}x{height}")
    if depth not in _PNG_DEPTHS.get(colour, ()):
        raise ValueError(f"PNG colour type {colour} with bit depth {depth} is not allowed")
    if compression or filtering or interlace > 1:
        raise ValueError("PNG uses an unknown compression, filter or interlace method")
    if width * height > MAX_PIXELS:
        raise ValueError(f"image of {width}x{height} exceeds {MAX_PIXELS} pixels")
    if not verify:
        return width, height
    pos = 8
    seen_data = False
    while True:
        if pos + 12 > size:
            raise ValueError("PNG is truncated (it ends before its IEND chunk)")
        length, kind = struct.unpack_from(">I4s", view, pos)
        end = pos + 12 + length
        if end > size:
            raise ValueError("PNG is truncated (a chunk runs past the end)")
        if not kind.isalpha():
            raise ValueError(f"PNG has a chunk with an invalid type {kind!r}")
        (crc,) = struct.unpack_from(">I", view, end - 4)
        if crc32(view[pos + 4 : end - 4]) != crc:
            raise ValueError(f"PNG chunk {kind.decode('ascii')} is damaged (CRC mismatch)")
        if kind == b"IHDR" and pos != 8:
            raise ValueError("PNG has a second IHDR chunk")
        if kind == b"IDAT":
            seen_data = True
        elif kind == b"IEND":
            if not seen_data:
                raise ValueError("PNG has no image data (IDAT)")
            if end != size:
                raise ValueError("PNG has data after its IEND chunk")
            return width, height
        pos = end


def decode_image(
    b64: bytes | bytearray | memoryview | str,
    *,
    provider: str,
    index: int = 0,
    declared_mime: str | None = None,
) -> Image:
    """Decode one base64 image from a provider and verify it; raise ``InvalidResponseError``."""
    try:
        data = b64decode(b64)
    except ValueError as exc:
        raise InvalidResponseError(
            f"{provider} returned image data that is not valid base64.", provider=provider
        ) from exc
    if not data:
        raise InvalidResponseError(f"{provider} returned an empty image.", provider=provider)
    try:
        mime, width, height = inspect_image(data)
    except ValueError as exc:
        raise InvalidResponseError(
            f"{provider} returned image data that is not a valid image ({exc}).",
            provider=provider,
        ) from exc
    return Image(data=data, mime_type=mime, width=width, height=height, index=index)


# --------------------------------------------------------------------------- reference images
def reference_from_bytes(data: bytes, *, what: str = "reference image") -> ReferenceImage:
    if len(data) > MAX_REFERENCE_BYTES:
        raise ReferenceImageError(
            f"The {what} is {len(data) / 1e6:.1f} MB; the limit is "
            f"{MAX_REFERENCE_BYTES / 1e6:.0f} MB. Resize or recompress it.",
            field="images",
        )
    try:
        mime, w, h = inspect_image(data)
    except ValueError as exc:
        raise ReferenceImageError(
            f"The {what} cannot be used: {exc}. Use a PNG, JPEG or WEBP image.", field="images"
        ) from exc
    return ReferenceImage(data=data, mime_type=mime, width=w, height=h)


def reference_from_data_url(url: str) -> ReferenceImage:
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or ";base64" not in head:
        raise ReferenceImageError(
            "A data URL must look like data:image/png;base64,<data>.", field="images"
        )
    try:
        data = b64decode(payload)
    except ValueError as exc:
        raise ReferenceImageError(
            "The data URL's base64 payload is invalid.", field="images"
        ) from exc
    return reference_from_bytes(data, what="data-URL image")


def reference_from_pil(img: PILImage) -> ReferenceImage:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return reference_from_bytes(buf.getvalue(), what="PIL image")


def reference_from_path(path: Path) -> ReferenceImage:
    try:
        size = path.stat().st_size
        if size > MAX_REFERENCE_BYTES:
            return reference_from_bytes(b"\0" * (MAX_REFERENCE_BYTES + 1), what=str(path))
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReferenceImageError(
            f"Reference image {path} does not exist.", field="images"
        ) from None
    except OSError as exc:
        raise ReferenceImageError(f"Cannot read {path}: {exc.strerror}.", field="images") from exc
    return reference_from_bytes(data, what=f"image {path.name}")


def to_data_url(ref: ReferenceImage | Image) -> str:
    return f"data:{ref.mime_type};base64,{b64encode(ref.data)}"


# ------------------------------------------------------------------------------- PNG metadata
def thumbnail(data: bytes, *, max_side: int = 384) -> bytes:
    """A small WEBP preview for lists."""
    img = open_image(data)
    img.thumbnail((max_side, max_side))
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA")
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=80)
    return buf.getvalue()


def preview(data: bytes, *, max_side: int = 256) -> bytes:
    """A small JPEG of an image (its longer side ``max_side`` pixels at most), for a client that
    shows a picture inline under a size limit: JPEG is the format every such client takes.
    Transparency is flattened onto white."""
    img = open_image(data)
    img.thumbnail((max_side, max_side))
    if img.mode != "RGB":
        rgba = img.convert("RGBA")
        img = pil_module().new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def iter_png_text(data: bytes) -> Iterable[tuple[str, str]]:
    """All (keyword, text) pairs of a PNG's text chunks, as Pillow reads them."""
    img = pil_module().open(io.BytesIO(data))
    return list(getattr(img, "text", {}).items())
