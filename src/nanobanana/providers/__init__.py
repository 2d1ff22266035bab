"""The providers: one module each, behind the small protocol in ``base``.

Adding a provider touches its module, this registry and its tests, nothing central.  A
provider's module is imported when it is first used: a process that only calls OpenRouter never
loads the Gemini encoding, and the reverse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..config import GOOGLE, OPENROUTER, ProviderConfig
from .base import FinishEvent, Provider, ProviderCall, ProviderEvent, ProviderResponse

if TYPE_CHECKING:
    from ..transport import Transport
    from .gemini import GeminiProvider
    from .openrouter import OpenRouterProvider

__all__ = [
    "PROVIDER_CLASSES",
    "FinishEvent",
    "GeminiProvider",
    "OpenRouterProvider",
    "Provider",
    "ProviderCall",
    "ProviderEvent",
    "ProviderResponse",
    "create_provider",
    "provider_class",
]

#: Each provider's module (in this package) and class.
PROVIDER_CLASSES: dict[str, tuple[str, str]] = {
    OPENROUTER: ("openrouter", "OpenRouterProvider"),
    GOOGLE: ("gemini", "GeminiProvider"),
}


def provider_class(name: str) -> type[Any]:
    """The class of provider ``name`` (its module imported now if it was not yet)."""
    module, cls = PROVIDER_CLASSES[name]
    found: type[Any] = getattr(importlib.import_module(f".{module}", __name__), cls)
    return found


def __getattr__(name: str) -> Any:
    for module, cls in PROVIDER_CLASSES.values():
        if name == cls:
            return getattr(importlib.import_module(f".{module}", __name__), cls)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_provider(
    config: ProviderConfig, *, session: Any = None, transport: Transport | None = None
) -> Provider:
    """The provider for ``config.name``; ``session`` is an ``aiohttp.ClientSession`` to share.

    ``transport`` (see ``nanobanana.transport``) is used by the providers that send their own
    HTTP requests; the Gemini provider sends through google-genai and ignores it."""
    if config.name not in PROVIDER_CLASSES:
        from ..errors import ValidationError

        raise ValidationError(
            f"Unknown provider {config.name!r}. Use one of: {', '.join(PROVIDER_CLASSES)}.",
            field="provider",
            allowed=list(PROVIDER_CLASSES),
        )
    cls = provider_class(config.name)
    if transport is not None and getattr(cls, "accepts_transport", False):
        provider: Provider = cls(config, session=session, transport=transport)
    else:
        provider = cls(config, session=session)
    return provider
