"""JSON with multi-megabyte base64 strings, without running them through a JSON encoder.

A builder puts a short placeholder where an image goes, encodes the small envelope with orjson,
and the placeholder is replaced by the base64 bytes (pybase64, SIMD) in one ``bytes.join``.
Base64 never needs JSON escaping, so the result is the same JSON an encoder would have written,
for the cost of one copy of the payload.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import pybase64


class Splicer:
    """Collects payloads for one JSON document; ``dumps`` writes it."""

    def __init__(self) -> None:
        # A random token: no text a model or a caller wrote can collide with a placeholder.
        self._token = secrets.token_hex(8)
        self._pieces: list[tuple[bytes, tuple[bytes, ...]]] = []

    def _add(self, *pieces: bytes) -> str:
        placeholder = f"@nb-splice-{self._token}-{len(self._pieces)}@"
        self._pieces.append((placeholder.encode("ascii"), pieces))
        return placeholder

    def b64(self, data: bytes) -> str:
        """A placeholder for ``base64(data)``."""
        return self._add(pybase64.b64encode(data))

    def data_url(self, mime_type: str, data: bytes) -> str:
        """A placeholder for ``data:<mime>;base64,<base64(data)>``."""
        return self._add(f"data:{mime_type};base64,".encode("ascii"), pybase64.b64encode(data))

    def dumps(self, doc: Any) -> bytes:
        """The JSON text of ``doc`` with every placeholder replaced by its payload."""
        text = orjson.dumps(doc)
        if not self._pieces:
            return text
        found = []
        for placeholder, pieces in self._pieces:
            at = text.find(placeholder)
            if at < 0:
                raise ValueError("a spliced payload is missing from the document")
            found.append((at, len(placeholder), pieces))
        found.sort(key=lambda item: item[0])
        out: list[bytes] = []
        pos = 0
        for at, size, pieces in found:
            out.append(text[pos:at])
            out.extend(pieces)
            pos = at + size
        out.append(text[pos:])
        return b"".join(out)
