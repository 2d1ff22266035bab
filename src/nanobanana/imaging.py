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
import hashlib
import io
import json
import os
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pybase64

from .errors import InvalidResponseError, ReferenceImageError, UsageError
from .types import Image, ReferenceImage

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .types import Result

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
FORMAT_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
#: Pixel limit for anything we decode (references and results): above it, a decompression bomb.
MAX_PIXELS = 40_000_000
#: Bytes limit for one reference image (Gemini's inline limit is 7 MB per file).
MAX_REFERENCE_BYTES = 7 * 1024 * 1024
METADATA_KEY = "nanobanana"


def _pil() -> Any:
    from PIL import Image as PILModule

    return PILModule


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
    pil = _pil()
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
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
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
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _itxt(keyword: str, text: str) -> bytes:
    # keyword \0 compression-flag compression-method language \0 translated-keyword \0 text
    payload = keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
    return _png_chunk(b"iTXt", payload)


def infotext(meta: dict[str, Any]) -> str:
    """A1111-style ``parameters`` text, for tools that read that convention."""
    lines = [str(meta.get("prompt") or "")]
    if meta.get("negative_prompt"):
        lines.append(f"Negative prompt: {meta['negative_prompt']}")
    fields = [
        ("Model", meta.get("model")),
        ("Provider", meta.get("provider")),
        ("Aspect ratio", meta.get("aspect_ratio")),
        ("Size", meta.get("image_size")),
        ("Seed", meta.get("seed")),
    ]
    lines.append(", ".join(f"{k}: {v}" for k, v in fields if v is not None))
    return "\n".join(lines)


class Pieces:
    """Bytes kept as consecutive pieces, joined only when asked (``bytes(pieces)``).

    A PNG with its provenance is the image with a few hundred bytes inserted after its header.
    Held as pieces it costs no copy of the image: joined, a 4K PNG (15 MB) was held twice per
    image in flight.  Hashing, writing and base64 work piece by piece.
    """

    __slots__ = ("parts", "size")

    def __init__(self, *parts: bytes | memoryview) -> None:
        self.parts = parts
        self.size = sum(len(p) for p in parts)

    @classmethod
    def of(cls, data: bytes | Pieces) -> Pieces:
        return data if isinstance(data, Pieces) else cls(data)

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for part in self.parts:
            digest.update(part)
        return digest.hexdigest()

    def write_to(self, fh: BinaryIO) -> None:
        for part in self.parts:
            fh.write(part)

    def b64_slices(self, slice_bytes: int) -> Iterator[bytes]:
        """The base64 of the whole, in slices of at most ``slice_bytes`` raw bytes (a multiple
        of 3) whose concatenation is exactly the base64 of ``bytes(self)``."""
        if slice_bytes % 3:
            raise ValueError("slice_bytes must be a multiple of 3")
        carry = b""
        for part in self.parts:
            view = memoryview(part)
            if carry:  # complete the previous piece's last 1-2 bytes to a group of 3
                need = -len(carry) % 3
                carry += view[:need].tobytes()
                view = view[need:]
                if len(carry) % 3:
                    continue  # this piece was shorter than that
                yield pybase64.b64encode(carry)
                carry = b""
            whole = len(view) - len(view) % 3
            for start in range(0, whole, slice_bytes):
                yield pybase64.b64encode(view[start : min(start + slice_bytes, whole)])
            carry = view[whole:].tobytes()
        if carry:
            yield pybase64.b64encode(carry)


def with_png_metadata(data: bytes, meta: dict[str, Any]) -> Pieces:
    """Insert provenance as iTXt chunks right after IHDR, without re-encoding the pixels and
    without copying them: the result is (signature, IHDR and the new chunks; the rest)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Pieces(data)
    ihdr_end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
    head = data[:ihdr_end]
    head += _itxt(METADATA_KEY, json.dumps(meta, sort_keys=True, ensure_ascii=False))
    head += _itxt("parameters", infotext(meta))
    return Pieces(head, memoryview(data)[ihdr_end:])


def file_data(image: Image) -> Pieces:
    """The bytes of ``image``'s file: a PNG with its provenance (``image.metadata``) inserted,
    any other image as it is."""
    if image.metadata and image.mime_type == "image/png":
        return with_png_metadata(image.data, image.metadata)
    return Pieces(image.data)


def read_provenance(source: str | os.PathLike[str] | bytes) -> dict[str, Any]:
    """The provenance nanobanana wrote into a PNG (a file's path or its bytes): prompt, model,
    provider, parameters, cost, attempts...; ``{}`` when it has none."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return read_metadata(data)


def read_metadata(data: bytes) -> dict[str, Any]:
    """Provenance written by nanobanana into a PNG, or ``{}``."""
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        if kind == b"iTXt":
            key, _, rest = payload.partition(b"\0")
            if key.decode("latin-1") == METADATA_KEY:
                # skip compression flag, method, language\0, translated keyword\0
                rest = rest[2:]
                _, _, rest = rest.partition(b"\0")
                _, _, text = rest.partition(b"\0")
                try:
                    return dict(json.loads(text.decode("utf-8")))
                except ValueError:
                    return {}
        if kind == b"IEND":
            break
        pos += 12 + length
    return {}


def atomic_write(path: Path, data: bytes | Pieces, *, mode: int = 0o600) -> None:
    """Write to a temp file in the same folder, fsync, rename: no partial file is ever visible.
    ``mode``: the file's permissions (private by default; ``user_file_mode()`` for a file the
    user asked for)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        if mode != 0o600:  # mkstemp's
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            Pieces.of(data).write_to(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def user_file_mode() -> int:
    """The permissions ``open()`` gives a new file: 0o666 less the umask.  Read from
    ``/proc`` where there is one (setting the umask to read it would change it, for a moment,
    for every thread of the process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


#: How many ``<stem>-<k>`` names are tried before giving up.
MAX_ALTERNATES = 1000


def write_new_file(path: Path, data: bytes | Pieces, *, overwrite: bool = False) -> Path:
    """Write ``data`` atomically to ``path`` or, if a file is there, to ``<stem>-2<suffix>``,
    ``<stem>-3<suffix>``...; return where it went.  Nothing is replaced unless ``overwrite``.

    The bytes go to a temp file in the same folder first, so no partial image is ever visible;
    the name is claimed with ``os.link``, which fails instead of replacing, so a file that
    appears meanwhile is kept.  The file gets the permissions ``open()`` would give it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".nanobanana-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, user_file_mode())
        with os.fdopen(fd, "wb") as fh:
            Pieces.of(data).write_to(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
            return path
        for candidate in _candidates(path):
            if _claim(tmp, candidate):
                return candidate
        raise UsageError(f"No free file name next to {path}; choose another name.")
    finally:
        tmp.unlink(missing_ok=True)


def _claim(tmp: Path, target: Path) -> bool:
    """Link ``tmp`` to ``target`` unless ``target`` exists (atomic on POSIX filesystems)."""
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError:
        # Filesystems without hard links: check, then rename (a small race, but no silent
        # overwrite of a file that was there before we looked).
        if target.exists():
            return False
        os.replace(tmp, target)
        return True


def _candidates(path: Path) -> Iterator[Path]:
    yield path
    for k in range(2, MAX_ALTERNATES):
        yield path.with_name(f"{path.stem}-{k}{path.suffix}")


def save_image(
    image: Image, path: Path, *, with_metadata: bool = True, overwrite: bool = False
) -> Path:
    """Save ``image`` at ``path`` (or the next free name, unless ``overwrite``): see
    ``write_new_file``.  Returns where it went."""
    data = file_data(image) if with_metadata else image.data
    return write_new_file(path, data, overwrite=overwrite)


def save_all(result: Result, target: Path, *, overwrite: bool = False) -> list[Path]:
    images = result.images
    if len(images) == 1 and target.suffix and not target.is_dir():
        return [save_image(images[0], target, overwrite=overwrite)]
    stem = target.stem if target.suffix else "image"
    folder = target.parent if target.suffix else target
    return [
        save_image(img, folder / f"{stem}-{img.index + 1}{img.extension}", overwrite=overwrite)
        for img in images
    ]


def open_image(data: bytes) -> PILImage:
    img = _pil().open(io.BytesIO(data))
    img.load()
    return img


def thumbnail(data: bytes, *, max_side: int = 384) -> bytes:
    """A small WEBP preview for lists."""
    img = open_image(data)
    img.thumbnail((max_side, max_side))
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA")
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=80)
    return buf.getvalue()


def iter_png_text(data: bytes) -> Iterable[tuple[str, str]]:
    """All (keyword, text) pairs of a PNG's text chunks, as Pillow reads them."""
    img = _pil().open(io.BytesIO(data))
    return list(getattr(img, "text", {}).items())
