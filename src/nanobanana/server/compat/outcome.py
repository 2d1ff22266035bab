"""A finished job as the compatibility builders see it: plain data, no ORM, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...files import Pieces

#: Job statuses whose answer is a content outcome (the model ran but gave no image): OpenRouter
#: reports those as a normal completion with a finish reason, not as an error.
CONTENT_CODES = frozenset({"content_blocked", "no_image"})


@dataclass(frozen=True)
class ImagePayload:
    """One stored image: its bytes and where the service serves it."""

    data: bytes | Pieces = field(repr=False)
    mime_type: str
    width: int
    height: int
    index: int = 0
    #: The service's own path for it (``/api/images/{id}``), relative.
    path: str = ""


@dataclass(frozen=True)
class JobOutcome:
    """What a compatibility answer is built from."""

    #: The job id (``/api/generations/{id}``).
    id: str
    #: Unix seconds of the job's creation.
    created: int
    status: str
    #: ``openrouter`` or ``google``: who served it (or was tried first).
    provider: str | None
    #: The model id to echo, in the caller's dialect (e.g. ``google/gemini-2.5-flash-image``).
    model: str
    text: str | None = None
    usage: Mapping[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_details: Mapping[str, Any] = field(default_factory=dict)
    synthetic: bool = False
    images: tuple[ImagePayload, ...] = ()
    #: What a search-grounded job looked up (``Grounding.to_dict``).
    grounding: Mapping[str, Any] | None = None
    #: The model id sent upstream, and what the provider needs to continue from this answer
    #: (``Job.continuation``): handed to the client to send back with the conversation.
    provider_model: str | None = None
    continuation: Mapping[str, Any] | None = None

    @property
    def generation_id(self) -> str:
        """OpenRouter-style id; the part after ``gen-`` is the job id."""
        return f"gen-{self.id}"

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded" and bool(self.images)

    @property
    def content_outcome(self) -> bool:
        """The model ran and answered without an image (a block, or text only)."""
        return self.status in ("blocked", "failed") and self.error_code in CONTENT_CODES

    def usage_int(self, key: str) -> int | None:
        value = (self.usage or {}).get(key)
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    @property
    def cost(self) -> float | None:
        """USD, as answered: ``0`` for the demo's synthetic images (nothing was paid), ``None``
        when unknown."""
        value = (self.usage or {}).get("cost")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return 0.0 if self.synthetic else None
