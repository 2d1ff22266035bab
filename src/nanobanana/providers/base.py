"""The small protocol every provider implements.

A provider is one module. It turns a ``ProviderCall`` (one image, already validated) into one
upstream request and the answer into a ``ProviderResponse``, or raises an error from
``nanobanana.errors``.  Encoding is pure (``build_request`` / ``parse_response`` / ``parse_event``
functions in the module, testable from JSON fixtures); sending is a thin transport call.

Providers do not retry, do not fall back and do not validate against the catalog: the client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from ..catalog import ModelSpec
from ..config import ProviderConfig
from ..types import Image, ImageEvent, ReferenceImage, TextDelta, Usage, UsageEvent


@dataclass(frozen=True)
class ProviderCall:
    """One upstream call that should produce one image."""

    model: ModelSpec
    #: The model id on this provider's wire (``spec.wire_id(provider)``).
    wire_model: str
    prompt: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    images: tuple[ReferenceImage, ...] = ()
    seed: int | None = None
    #: Seconds for one read; the client enforces the overall deadline around the call.
    read_timeout: float = 120.0


@dataclass
class ProviderResponse:
    images: list[Image]
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    request_id: str | None = None
    #: The model id the provider says it ran.
    served_model: str | None = None


@dataclass(frozen=True)
class FinishEvent:
    """Last event of a provider stream."""

    finish_reason: str | None = None
    request_id: str | None = None
    served_model: str | None = None
    type: str = "finish"


ProviderEvent = TextDelta | ImageEvent | UsageEvent | FinishEvent


@dataclass(frozen=True)
class KeyStatus:
    """What a provider says about an API key it accepted (``Provider.key_status``); ``None``
    where the provider does not say."""

    #: USD: the key's own spending limit (``None``: no limit), what is left of it, and what the
    #: key has spent; ``limit_reset``: when the limit starts over (``daily``, ``monthly``...).
    limit: float | None = None
    limit_remaining: float | None = None
    usage: float | None = None
    limit_reset: str | None = None
    #: A free-tier key (no credits bought): stricter rate limits, free models only.
    free_tier: bool | None = None
    #: Image models the key can see, where listing them is how the key is checked.
    models: int | None = None


class Provider(Protocol):
    name: str
    config: ProviderConfig

    async def generate(self, call: ProviderCall) -> ProviderResponse:
        """Make one call; return decoded, verified images, or raise a ``NanobananaError``."""
        ...

    def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]:
        """The same call, streamed: text deltas, images, usage, then one ``FinishEvent``."""
        ...

    async def list_models(self) -> list[ModelSpec]:
        """Live discovery of image-output models."""
        ...

    async def key_status(self) -> KeyStatus:
        """Check the key with a free call that authenticates it (``AuthenticationError`` when
        it is refused) and say what the provider reports about it."""
        ...

    async def aclose(self) -> None: ...
