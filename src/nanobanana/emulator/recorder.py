"""What the emulator remembers: recent requests (for tests) and generation stats (for OpenRouter).

Both are bounded and thread-safe: ``EmulatorServer`` reads them from the test's thread while the
server's event loop writes them.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from .inputs import decode_base64

__all__ = ["GenerationStore", "RequestLog", "digest", "sanitize"]

# Strings longer than this that look like base64 are summarised, never stored.
_LONG = 256
_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_")


def _looks_base64(value: str) -> bool:
    sample = value[:_LONG].encode("ascii", "replace")
    return all(c in _B64_CHARS for c in sample)


def sanitize(value: Any) -> Any:
    """A copy of a JSON body with image payloads replaced by a short description.

    ``data:<mime>;base64,<...>`` becomes ``data:<mime>;base64,<N chars, sha256:H>``; any other
    long base64-looking string (Gemini ``inlineData.data``) becomes ``<base64: N chars,
    sha256:H>``. ``H`` (:func:`digest`) names the image's bytes, so a test can tell which
    image was sent, whichever base64 alphabet carried it.
    """
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    if isinstance(value, str) and len(value) > _LONG:
        head, sep, tail = value.partition(";base64,")
        if sep and head.startswith("data:"):
            return f"{head};base64,<{len(tail)} chars, sha256:{digest(tail)}>"
        if _looks_base64(value):
            return f"<base64: {len(value)} chars, sha256:{digest(value)}>"
    return value


def digest(b64: str) -> str:
    """The first 12 hex digits of the SHA-256 of the bytes a base64 text carries (of the text
    itself when it is not base64)."""
    try:
        raw = decode_base64(b64)
    except ValueError:
        raw = b64.encode("utf-8", "replace")
    return hashlib.sha256(raw).hexdigest()[:12]


class RequestLog:
    """The most recent requests, oldest first."""

    def __init__(self, limit: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=max(1, limit))
        self._lock = threading.Lock()
        self._seq = 0

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            entry["time"] = time.time()
            self._entries.append(entry)
        return entry

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._entries))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class GenerationStore:
    """Stats of generations served, by id, for ``GET /api/v1/generation``."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._limit = max(1, limit)
        self._lock = threading.Lock()

    def put(self, gen_id: str, stats: dict[str, Any]) -> None:
        with self._lock:
            self._items[gen_id] = stats
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def get(self, gen_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(gen_id)
            return copy.deepcopy(found) if found is not None else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
