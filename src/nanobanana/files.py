"""Image files: provenance written into PNGs and read back, saving that never replaces a
file by accident, and opening with Pillow.

Below ``types`` and ``imaging``: ``Image.save`` and ``Result.save`` come here, and nothing here
imports them back (the types are named for type checkers only).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pybase64

from .errors import UsageError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .types import Image, Result

METADATA_KEY = "nanobanana"


def pil_module() -> Any:
    """``PIL.Image``, imported on first use (its import costs more than most checks)."""
    from PIL import Image as PILModule

    return PILModule


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
    img = pil_module().open(io.BytesIO(data))
    img.load()
    return img
