"""Where keys and base URLs come from, resolved once at the edge and passed inward.

Order for a key: explicit argument -> environment -> the keys file (``nanobanana keys set``).
Nothing here runs at import time; callers ask for a ``ProviderConfig`` when they build a client.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_config_path

OPENROUTER = "openrouter"
GOOGLE = "google"
PROVIDERS: tuple[str, ...] = (OPENROUTER, GOOGLE)

DEFAULT_BASE_URLS: dict[str, str] = {
    OPENROUTER: "https://openrouter.ai/api/v1",
    GOOGLE: "https://generativelanguage.googleapis.com",
}
KEY_ENV_VARS: dict[str, tuple[str, ...]] = {
    OPENROUTER: ("OPENROUTER_API_KEY",),
    GOOGLE: ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
BASE_URL_ENV_VARS: dict[str, str] = {
    OPENROUTER: "OPENROUTER_BASE_URL",
    GOOGLE: "GEMINI_BASE_URL",
}
KEYS_FILE_ENV = "NANOBANANA_KEYS_FILE"


def keys_file_path(env: Mapping[str, str] | None = None) -> Path:
    """The keys file: ``$NANOBANANA_KEYS_FILE`` or ``<user config dir>/nanobanana/keys.json``."""
    env = os.environ if env is None else env
    if env.get(KEYS_FILE_ENV):
        return Path(env[KEYS_FILE_ENV])
    return user_config_path("nanobanana", appauthor=False) / "keys.json"


def canonical_provider(name: str) -> str:
    """Accept ``google``/``gemini`` and ``openrouter`` in any case; refuse anything else."""
    from .errors import ValidationError

    n = name.strip().lower()
    if n == "gemini":
        n = GOOGLE
    if n not in PROVIDERS:
        raise ValidationError(
            f"Unknown provider {name!r}. Use one of: {', '.join(PROVIDERS)}.",
            field="provider",
            allowed=PROVIDERS,
        )
    return n


class KeysFile:
    """A small JSON file of provider keys, written with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            from .errors import UsageError

            raise UsageError(
                f"The keys file {self.path} cannot be read ({type(exc).__name__}); "
                "fix or delete it, then run `nanobanana keys set`."
            ) from exc
        return {k: v for k, v in data.items() if isinstance(v, str) and v}

    def set(self, provider: str, key: str) -> None:
        data = self.load()
        data[canonical_provider(provider)] = key
        self._write(data)

    def remove(self, provider: str) -> bool:
        data = self.load()
        found = data.pop(canonical_provider(provider), None) is not None
        if found:
            self._write(data)
        return found

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def mask_key(key: str) -> str:
    """Show only the last four characters of a secret."""
    if len(key) <= 8:
        return "****"
    return f"{key[:3]}…{key[-4:]}"


@dataclass(frozen=True)
class ProviderConfig:
    """What one provider needs to be called: base URL, key, attribution, timeouts."""

    name: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    #: Extra headers sent on every call (e.g. emulator scenarios in tests).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: OpenRouter attribution headers.
    referer: str | None = None
    title: str | None = None

    @property
    def url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URLS[self.name]).rstrip("/")


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
    """Resolve every provider's config: explicit values, then env, then the keys file."""
    env = os.environ if env is None else env
    api_keys = api_keys or {}
    base_urls = base_urls or {}
    stored: dict[str, str] | None = None
    out: dict[str, ProviderConfig] = {}
    for p in PROVIDERS:
        key = api_keys.get(p)
        if not key:
            key = next((env[v] for v in KEY_ENV_VARS[p] if env.get(v)), None)
        if not key and use_keys_file:
            if stored is None:
                stored = KeysFile(keys_file_path(env)).load()
            key = stored.get(p)
        base = base_urls.get(p) or env.get(BASE_URL_ENV_VARS[p]) or None
        out[p] = ProviderConfig(
            name=p,
            api_key=key or None,
            base_url=base,
            headers=dict(headers or {}),
            referer=referer,
            title=title,
        )
    return out
