"""The small protocol every provider implements.

A provider is one module. It turns a ``ProviderCall`` (one image, already validated) into one
upstream request and the answer into a ``ProviderResponse``, or raises an error from
``nanobanana.errors``.  Encoding is pure (``build_request`` / ``parse_response`` / ``parse_event``
functions in the module, testable from JSON fixtures); sending is a thin transport call.

Providers do not retry, do not fall back and do not validate against the catalog: the client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..catalog import ModelSpec
from ..config import ProviderConfig
from ..errors import MissingKeyError
from ..types import (
    Grounding,
    Image,
    ImageEvent,
    PriorTurn,
    ReferenceImage,
    TextDelta,
    Usage,
    UsageEvent,
)


@dataclass(frozen=True, kw_only=True)
class ProviderInfo:
    """What a provider says about itself, so that nothing outside its module spells it out:
    where its key and base URL come from, how the client, the CLI, the keys file and the
    service name it, and which provider answers for it when it runs out of quota."""

    #: The name used everywhere (``provider=``, the keys file, ``{"provider": ...}``).
    name: str
    #: For people: the settings page, key checks, messages.
    label: str
    #: Other names accepted for it, in any case (``gemini`` for ``google``).
    aliases: tuple[str, ...] = ()
    #: Environment variables read for its key, in order.
    key_env_vars: tuple[str, ...]
    #: The ``AsyncClient``/``Client`` argument that takes its key.
    key_argument: str
    #: Where to get a key, and what a key looks like, for the settings page.
    key_hint: str
    key_placeholder: str
    base_url: str
    #: The environment variable that replaces ``base_url``.
    base_url_env_var: str
    #: The client argument (and, with dashes, the CLI flag) that replaces ``base_url``.
    base_url_argument: str
    #: Providers tried, in order, when this one answers that its quota is used up.
    quota_fallbacks: tuple[str, ...] = ()
    #: Whether the service offers it as the choice for people who have no preference.
    recommended: bool = False
    #: Whether its model listing needs no key: a client without one still learns its models.
    lists_without_key: bool = False
    #: Whether it takes model-specific image options (``GenerationRequest.image_options``);
    #: a provider that does not is never sent a request that has them.
    image_options: bool = False
    #: The key a client sends to the built-in emulator.
    emulator_key: str

    def url(self, config: ProviderConfig) -> str:
        """The base URL ``config`` names, else this provider's own; no trailing slash."""
        return (config.base_url or self.base_url).rstrip("/")

    def missing_key(self) -> MissingKeyError:
        """The error for a call without a key: every way to give one."""
        return MissingKeyError(
            self.name,
            f"No {self.name} API key configured. Set {' or '.join(self.key_env_vars)}, pass "
            f"{self.key_argument}=... to the client, or run `nanobanana keys set {self.name}`.",
        )


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
    #: A thinking level (``THINKING_LEVELS``), already checked.
    thinking: str | None = None
    #: Ground the image in Google Search.
    google_search: bool = False
    #: Model-specific image options, already checked (``catalog.validate_image_options``).
    image_options: Mapping[str, Any] = field(default_factory=dict)
    #: Seconds for one read; the client enforces the overall deadline around the call.
    read_timeout: float = 120.0
    #: The earlier turns of a conversation this call continues, oldest first.
    history: tuple[PriorTurn, ...] = ()


@dataclass
class ProviderResponse:
    images: list[Image]
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    request_id: str | None = None
    #: The model id the provider says it ran.
    served_model: str | None = None
    #: What a search-grounded answer says it looked up.
    grounding: Grounding | None = None
    #: What this provider needs to continue a conversation from this answer
    #: (``PriorTurn.continuation``).
    continuation: dict[str, Any] | None = None


@dataclass(frozen=True)
class FinishEvent:
    """Last event of a provider stream."""

    finish_reason: str | None = None
    request_id: str | None = None
    served_model: str | None = None
    grounding: Grounding | None = None
    continuation: dict[str, Any] | None = None
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
