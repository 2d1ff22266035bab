"""A conversation's provider state, handed to a drop-in client and taken back from it.

OpenRouter's reasoning guide asks clients to send an assistant message's ``reasoning_details``
back unchanged with the next request ("Preserving reasoning blocks").  The chat answer uses
that to give the client what the provider needs to continue from the answer (Gemini's thought
signatures, OpenRouter's own reasoning details: ``PriorTurn.continuation``), as one
``reasoning.encrypted`` entry of format ``nanobanana-v1``; when the client sends it back, the
next turn continues exactly as a session's would.  A client that drops it loses nothing else:
the turn then goes upstream as text and images.

The entry is opaque to the client but not secret: who answered, the model id, and the
provider's own opaque signatures.  What comes back is only ever used for the sender's own
request, and only when the provider and model are the ones that made it; a malformed entry is
ignored, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pybase64

from ...providers import PROVIDERS

__all__ = ["FORMAT", "entry", "read"]

FORMAT = "nanobanana-v1"
#: The most a client may send back in one entry.
MAX_CHARS = 256 * 1024


def entry(provider: str, model: str, continuation: Mapping[str, Any]) -> dict[str, Any]:
    """The ``reasoning_details`` entry for an answer."""
    data = orjson.dumps({"provider": provider, "model": model, "continuation": continuation})
    return {
        "type": "reasoning.encrypted",
        "id": None,
        "format": FORMAT,
        "index": 0,
        "data": pybase64.urlsafe_b64encode(data).decode("ascii"),
    }


def read(details: Any) -> tuple[str, str, dict[str, Any]] | None:
    """(provider, model, continuation) from an assistant message's ``reasoning_details``, if
    it holds an entry of ours that reads as one."""
    if not isinstance(details, list):
        return None
    for item in details:
        if not isinstance(item, dict) or item.get("format") != FORMAT:
            continue
        data = item.get("data")
        if not isinstance(data, str) or len(data) > MAX_CHARS:
            return None
        try:
            doc = orjson.loads(pybase64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(doc, dict):
            return None
        provider, model, continuation = (
            doc.get("provider"),
            doc.get("model"),
            doc.get("continuation"),
        )
        if provider in PROVIDERS and isinstance(model, str) and isinstance(continuation, dict):
            return provider, model, continuation
        return None
    return None
