"""Low-level PNG assembly from independently compressed row segments.

A synthetic image is drawn per request only in a small band of rows (the text).  The other rows
are compressed once per size and reused: PNG stores one zlib stream split over any number of IDAT
chunks, and raw deflate segments can be concatenated when every segment but the last ends on a
byte boundary (``Z_SYNC_FLUSH``).  The zlib trailer (Adler-32 of all uncompressed bytes) is
combined from the per-segment checksums, so a request costs one small compression and a join.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "PNG_SIGNATURE",
    "Segment",
    "adler32_combine",
    "assemble_png",
    "chunk",
    "compress_rows",
    "idat_chunks",
    "ihdr",
    "raw_rows",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ADLER_BASE = 65521
# zlib header for a 32 KiB window and the default compression level: 0x78 0x9C.
_ZLIB_HEADER = b"\x78\x9c"
# PNG decoders accept IDAT chunks of any size; 1 MiB keeps the per-chunk CRC cost small and
# lets a streaming decoder start early.
_IDAT_PIECE = 1 << 20


@dataclass(frozen=True)
class Segment:
    """Raw-deflate bytes for some rows, with the Adler-32 and length of what they encode."""

    deflated: bytes
    adler: int
    length: int
    final: bool


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def ihdr(width: int, height: int) -> bytes:
    """IHDR for 8-bit RGB, no interlace."""
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def raw_rows(rgb: bytes, width: int) -> bytes:
    """Prefix every RGB row with filter type 0 (None), as the PNG scanline format requires."""
    stride = width * 3
    if not rgb:
        return b""
    rows = [rgb[i : i + stride] for i in range(0, len(rgb), stride)]
    return b"\x00" + b"\x00".join(rows)


def compress_rows(raw: bytes, *, level: int, final: bool) -> Segment:
    """Compress filtered scanlines into a raw deflate segment (no zlib header)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    flush_mode = zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
    deflated = comp.compress(raw) + comp.flush(flush_mode)
    return Segment(deflated, zlib.adler32(raw), len(raw), final)


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of A+B from adler(A), adler(B) and len(B) (zlib's ``adler32_combine``)."""
    rem = len2 % _ADLER_BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 += (adler2 & 0xFFFF) + _ADLER_BASE - 1
    sum2 += ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + _ADLER_BASE - rem
    sum1 %= _ADLER_BASE
    sum2 %= _ADLER_BASE
    return sum1 | (sum2 << 16)


def idat_chunks(data: bytes) -> list[bytes]:
    """Split compressed data over IDAT chunks of at most ``_IDAT_PIECE`` bytes."""
    view = memoryview(data)
    return [
        chunk(b"IDAT", bytes(view[i : i + _IDAT_PIECE])) for i in range(0, len(data), _IDAT_PIECE)
    ]


def assemble_png(
    header: bytes,
    segments: Iterable[Segment | tuple[bytes, Segment]],
    *,
    extra_chunks: bytes = b"",
) -> bytes:
    """Join signature, IHDR, optional ancillary chunks, IDATs and IEND.

    ``segments`` are in row order; the last must be final.  An item may come with its IDAT
    chunks already built (``(prebuilt_idat_bytes, segment)``) so cached rows cost only a join.
    """
    parts = [PNG_SIGNATURE, header, extra_chunks]
    adler = 1
    seen_final = False
    first = True
    for item in segments:
        if isinstance(item, tuple):
            prebuilt, seg = item
        else:
            prebuilt, seg = b"", item
        if seen_final:
            raise ValueError("a final segment must come last")
        if first:
            parts.append(chunk(b"IDAT", _ZLIB_HEADER))
            first = False
        parts.append(prebuilt or b"".join(idat_chunks(seg.deflated)))
        adler = adler32_combine(adler, seg.adler, seg.length)
        seen_final = seg.final
    if not seen_final:
        raise ValueError("the last segment must be final")
    parts.append(chunk(b"IDAT", struct.pack(">I", adler)))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)
