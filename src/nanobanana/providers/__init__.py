"""The providers: one module each, behind the small protocol in ``base``.

Adding a provider touches its module, this registry and its tests, nothing central.
"""

from __future__ import annotations

from typing import Any

from ..config import GOOGLE, OPENROUTER, ProviderConfig
from .base import FinishEvent, Provider, ProviderCall, ProviderEvent, ProviderResponse
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
]

PROVIDER_CLASSES: dict[str, type[Any]] = {
    OPENROUTER: OpenRouterProvider,
    GOOGLE: GeminiProvider,
}


def create_provider(config: ProviderConfig, *, session: Any = None) -> Provider:
    """The provider for ``config.name``; ``session`` is an ``aiohttp.ClientSession`` to share."""
    try:
        cls = PROVIDER_CLASSES[config.name]
    except KeyError:
        from ..errors import ValidationError

        raise ValidationError(
            f"Unknown provider {config.name!r}. Use one of: {', '.join(PROVIDER_CLASSES)}.",
            field="provider",
            allowed=list(PROVIDER_CLASSES),
        ) from None
    provider: Provider = cls(config, session=session)
    return provider
