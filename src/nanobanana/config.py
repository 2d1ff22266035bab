"""What a provider is called with (``ProviderConfig``) and the keys file; resolved once at the
edge (``nanobanana.providers.resolve_provider_configs``) and passed inward.

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

from .errors import UsageError

KEYS_FILE_ENV = "NANOBANANA_KEYS_FILE"


def keys_file_path(env: Mapping[str, str] | None = None) -> Path:
    """The keys file: ``$NANOBANANA_KEYS_FILE`` or ``<user config dir>/nanobanana/keys.json``."""
    env = os.environ if env is None else env
    if env.get(KEYS_FILE_ENV):
        return Path(env[KEYS_FILE_ENV])
    return user_config_path("nanobanana", appauthor=False) / "keys.json"


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
            raise UsageError(
                f"The keys file {self.path} cannot be read ({type(exc).__name__}); "
                "fix or delete it, then run `nanobanana keys set`."
            ) from exc
        return {k: v for k, v in data.items() if isinstance(v, str) and v}

    def set(self, provider: str, key: str) -> None:
        """Store ``key`` under ``provider`` (its canonical name)."""
        data = self.load()
        data[provider] = key
        self._write(data)

    def remove(self, provider: str) -> bool:
        data = self.load()
        found = data.pop(provider, None) is not None
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
    #: ``None``: the provider's own (``ProviderInfo.base_url``).
    base_url: str | None = None
    #: Extra headers sent on every call (e.g. emulator scenarios in tests).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: OpenRouter attribution headers.
    referer: str | None = None
    title: str | None = None
