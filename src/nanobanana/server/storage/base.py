"""The storage interface.  Keys are made by the store from the content's SHA-256, never from
anything a user sent, so no request can name a path (local) or an object key (S3)."""

from __future__ import annotations

from typing import Protocol

from ...files import Pieces


class ImageStore(Protocol):
    async def put(self, data: bytes | Pieces, *, extension: str, sha256: str | None = None) -> str:
        """Store ``data`` (idempotent: same bytes, same key) and return its key.  ``sha256``:
        the hex digest of ``data`` when the caller has just computed it (hashing a 4K image
        twice costs ~10-30 ms); never a value a client sent."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``FileNotFoundError`` if there are none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; absent keys are fine."""
        ...

    async def exists(self, key: str) -> bool: ...
