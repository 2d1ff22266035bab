"""JSON with multi-megabyte base64 strings, without running them through a JSON encoder.

A builder puts a short placeholder where an image goes, encodes the small envelope with orjson,
and the placeholder is replaced by the base64 of the image (pybase64, SIMD).  Base64 never
needs JSON escaping, so the result is the same JSON an encoder would have written.

``render`` gives a ``SplicedBody``: its exact length is known at once, and its bytes come in
pieces, the base64 made slice by slice as the pieces are sent (``SplicedResponse``).  A 4K
image's 20 MB of base64 then never exists whole: one 4 MiB slice at a time does.  Each large
slice is sent as it was made, never copied into a joined body (for a 1K image that copy was
1.7 MB per answer); the small pieces around it are joined.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ...files import Pieces

#: Raw bytes per base64 slice (a multiple of 3, so the slices' base64 joins up exactly).
SLICE_BYTES = 3 * 1024 * 1024
#: Pieces shorter than this are joined with their neighbours (the JSON around the images, the
#: base64 of a PNG's head with its provenance); longer ones are sent as they are.
SMALL_PIECE_BYTES = 64 * 1024


class _Raw:
    """Bytes that go into the document as their base64."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | Pieces) -> None:
        self.data = Pieces.of(data)

    def __len__(self) -> int:
        return 4 * ((len(self.data) + 2) // 3)

    def b64(self) -> Iterator[bytes]:
        return self.data.b64_slices(SLICE_BYTES)


_Part = bytes | _Raw


class SplicedBody:
    """A JSON document as parts: encoded JSON text, and raw payloads still to be base64ed."""

    def __init__(self, parts: list[_Part]) -> None:
        self.parts = parts
        self.length = sum(len(p) for p in parts)

    def pieces(self) -> Iterator[bytes]:
        """The document's bytes, in order: each base64 slice of a payload as it was made
        (no copy), runs of small pieces joined into one."""
        small: list[bytes] = []
        for piece in self._slices():
            if len(piece) < SMALL_PIECE_BYTES:
                small.append(piece)
                continue
            if small:
                yield b"".join(small)
                small.clear()
            yield piece
        if small or not self.length:
            yield b"".join(small)

    def _slices(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, _Raw):
                yield from part.b64()
            elif part:
                yield part

    def to_bytes(self) -> bytes:
        return b"".join(self.pieces())


class Splicer:
    """Collects payloads for one JSON document; ``render`` (or ``dumps``) writes it."""

    def __init__(self) -> None:
        # A random token: no text a model or a caller wrote can collide with a placeholder.
        self._token = secrets.token_hex(8)
        self._pieces: list[tuple[bytes, tuple[_Part, ...]]] = []

    def _add(self, *pieces: _Part) -> str:
        placeholder = f"@nb-splice-{self._token}-{len(self._pieces)}@"
        self._pieces.append((placeholder.encode("ascii"), pieces))
        return placeholder

    def b64(self, data: bytes | Pieces) -> str:
        """A placeholder for ``base64(data)``."""
        return self._add(_Raw(data))

    def data_url(self, mime_type: str, data: bytes | Pieces) -> str:
        """A placeholder for ``data:<mime>;base64,<base64(data)>``."""
        return self._add(f"data:{mime_type};base64,".encode("ascii"), _Raw(data))

    def render(self, doc: Any) -> SplicedBody:
        """``doc`` with every placeholder replaced by its payload, as parts."""
        text = orjson.dumps(doc)
        if not self._pieces:
            return SplicedBody([text])
        found = []
        for placeholder, pieces in self._pieces:
            at = text.find(placeholder)
            if at < 0:
                raise ValueError("a spliced payload is missing from the document")
            found.append((at, len(placeholder), pieces))
        found.sort(key=lambda item: item[0])
        out: list[_Part] = []
        pos = 0
        for at, size, pieces in found:
            out.append(text[pos:at])
            out.extend(pieces)
            pos = at + size
        out.append(text[pos:])
        return SplicedBody(out)

    def dumps(self, doc: Any) -> bytes:
        """The JSON text of ``doc`` with every placeholder replaced by its payload."""
        return self.render(doc).to_bytes()


class SplicedResponse(Response):
    """Sends a ``SplicedBody`` piece by piece, with its exact ``Content-Length``."""

    media_type = "application/json"

    def __init__(
        self,
        body: SplicedBody,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.spliced = body
        super().__init__(None, status_code, {**(headers or {}), "content-length": str(body.length)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        pending: bytes | None = None
        for piece in self.spliced.pieces():
            if pending is not None:
                await send({"type": "http.response.body", "body": pending, "more_body": True})
            pending = piece
        await send({"type": "http.response.body", "body": pending or b"", "more_body": False})
        if self.background is not None:
            await self.background()
