"""The providers: one module each, behind the small protocol in ``base``.

Each provider module declares what it is in ``INFO`` (a ``ProviderInfo``: its name, label,
aliases, key and base-URL variables, client arguments, quota fallbacks) and implements the
protocol in one class.  Everything else (the client, the keys file, the CLI, the service, the
settings page) reads those declarations from here.  Adding a provider touches its module, the
``PROVIDER_MODULES`` line below and its tests, nothing central.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import KeysFile, ProviderConfig, keys_file_path
from ..errors import MissingKeyError, ValidationError
from .base import (
    FinishEvent,
    Provider,
    ProviderCall,
    ProviderEvent,
    ProviderInfo,
    ProviderResponse,
)

if TYPE_CHECKING:
    from ..transport import Transport
    from .gemini import GeminiProvider
    from .openrouter import OpenRouterProvider

__all__ = [
    "INFOS",
    "PROVIDERS",
    "PROVIDER_MODULES",
    "FinishEvent",
    "GeminiProvider",
    "OpenRouterProvider",
    "Provider",
    "ProviderCall",
    "ProviderEvent",
    "ProviderInfo",
    "ProviderResponse",
    "canonical_provider",
    "create_provider",
    "missing_key",
    "provider_class",
    "resolve_provider_configs",
]

#: The provider modules of this package, in the order a model's providers are tried.
PROVIDER_MODULES = ("openrouter", "gemini")


def _load() -> dict[str, type[Any]]:
    """Each provider's class, by name: the class of its module whose ``info`` is the module's
    ``INFO``."""
    out = {}
    for module_name in PROVIDER_MODULES:
        module = importlib.import_module(f".{module_name}", __name__)
        info: ProviderInfo = module.INFO
        [cls] = [c for c in vars(module).values() if getattr(c, "info", None) is info]
        out[info.name] = cls
    return out


_CLASSES = _load()
#: Each provider's description, by name, in ``PROVIDER_MODULES`` order.
INFOS: Mapping[str, ProviderInfo] = {name: cls.info for name, cls in _CLASSES.items()}
#: The provider names, in the order a model's providers are tried.
PROVIDERS: tuple[str, ...] = tuple(INFOS)
_NAMES = {alias: name for name, i in INFOS.items() for alias in (name, *i.aliases)}


def provider_class(name: str) -> type[Any]:
    """The class that implements provider ``name``."""
    return _CLASSES[name]


def __getattr__(name: str) -> Any:
    for cls in _CLASSES.values():
        if name == cls.__name__:
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def canonical_provider(name: str) -> str:
    """A provider's name from any of its names (``gemini`` -> ``google``), in any case;
    anything else is refused with the names to use."""
    found = _NAMES.get(name.strip().lower())
    if found is None:
        raise _unknown(name)
    return found


def _unknown(name: str) -> ValidationError:
    return ValidationError(
        f"Unknown provider {name!r}. Use one of: {', '.join(PROVIDERS)}.",
        field="provider",
        allowed=list(PROVIDERS),
    )


def missing_key(name: str) -> MissingKeyError:
    """The error for a call to ``name`` without a key: every way to give one."""
    return INFOS[name].missing_key()


def resolve_provider_configs(
    *,
    api_keys: Mapping[str, str | None] | None = None,
    base_urls: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
    use_keys_file: bool = True,
    headers: Mapping[str, str] | None = None,
    referer: str | None = None,
    title: str | None = None,
) -> dict[str, ProviderConfig]:
    """Every provider's config: explicit values, then the environment, then the keys file."""
    env = os.environ if env is None else env
    api_keys = api_keys or {}
    base_urls = base_urls or {}
    stored: dict[str, str] | None = None
    out: dict[str, ProviderConfig] = {}
    for name, info in INFOS.items():
        key = api_keys.get(name)
        if not key:
            key = next((env[v] for v in info.key_env_vars if env.get(v)), None)
        if not key and use_keys_file:
            if stored is None:
                stored = KeysFile(keys_file_path(env)).load()
            key = stored.get(name)
        base = base_urls.get(name) or env.get(info.base_url_env_var) or None
        out[name] = ProviderConfig(
            name=name,
            api_key=key or None,
            base_url=base,
            headers=dict(headers or {}),
            referer=referer,
            title=title,
        )
    return out


def create_provider(
    config: ProviderConfig, *, session: Any = None, transport: Transport | None = None
) -> Provider:
    """The provider for ``config.name``; ``session`` is an ``aiohttp.ClientSession`` to share.

    ``transport`` (see ``nanobanana.transport``) is used by the providers that send their own
    HTTP requests; the Gemini provider sends through google-genai and ignores it."""
    if config.name not in INFOS:
        raise _unknown(config.name)
    cls = provider_class(config.name)
    if transport is not None and getattr(cls, "accepts_transport", False):
        provider: Provider = cls(config, session=session, transport=transport)
    else:
        provider = cls(config, session=session)
    return provider
