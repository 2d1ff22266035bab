"""Server profiles: a name for a server URL and a personal API token, in a 0600 JSON file."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from platformdirs import user_config_path

from ..errors import UsageError

__all__ = [
    "ProfilesFile",
    "ServerProfile",
    "normalize_url",
    "profiles_file_path",
    "resolve_server",
]

PROFILES_FILE_ENV = "NANOBANANA_PROFILES_FILE"
TOKEN_ENV = "NANOBANANA_TOKEN"  # noqa: S105 (the variable's name, not a token)
SERVER_ENV = "NANOBANANA_SERVER"
PROFILE_ENV = "NANOBANANA_PROFILE"


@dataclass(frozen=True)
class ServerProfile:
    name: str
    url: str
    token: str = field(repr=False)


def profiles_file_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(PROFILES_FILE_ENV):
        return Path(env[PROFILES_FILE_ENV]).expanduser()
    return user_config_path("nanobanana", appauthor=False) / "profiles.json"


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"Server URL {url!r} must look like https://host[:port].")
    if parts.username or parts.password:
        raise UsageError("Put the token in a profile or $NANOBANANA_TOKEN, not in the URL.")
    return url


class ProfilesFile:
    """The profiles file: read strictly (mode 0600 on POSIX), written atomically with 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, ServerProfile]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Like ssh with a private key: a token others can read is refused, not used.
            raise UsageError(
                f"{self.path} can be read by other users; run `chmod 600 {self.path}`."
            )
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"The profiles file {self.path} cannot be read ({type(exc).__name__}); fix it "
                "or delete it."
            ) from exc
        table = data.get("profiles", {}) if isinstance(data, dict) else {}
        out: dict[str, ServerProfile] = {}
        for name, entry in table.items() if isinstance(table, dict) else ():
            if isinstance(entry, dict) and entry.get("url") and entry.get("token"):
                out[str(name)] = ServerProfile(str(name), str(entry["url"]), str(entry["token"]))
        return out

    def names(self) -> list[str]:
        return sorted(self.load())

    def get(self, name: str) -> ServerProfile:
        profiles = self.load()
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none yet"
            raise UsageError(
                f"No server profile named {name!r} in {self.path} (known: {known}). Add one "
                f"with `nanobanana profiles set {name} URL`."
            )
        return profiles[name]

    def set(self, name: str, url: str, token: str) -> None:
        data = {n: {"url": p.url, "token": p.token} for n, p in self.load().items()}
        data[name] = {"url": normalize_url(url), "token": token}
        self._write({"profiles": data})

    def remove(self, name: str) -> bool:
        profiles = self.load()
        if name not in profiles:
            return False
        del profiles[name]
        self._write(
            {"profiles": {n: {"url": p.url, "token": p.token} for n, p in profiles.items()}}
        )
        return True

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def resolve_server(
    *,
    url: str | None = None,
    profile: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ServerProfile:
    """Which server, with which token: a profile by name, or a URL whose token comes from
    ``token``, ``$NANOBANANA_TOKEN`` or a profile with the same URL."""
    env = os.environ if env is None else env
    profiles = ProfilesFile(profiles_file_path(env))
    if profile is None and url is None:
        profile = env.get(PROFILE_ENV) or None
        url = None if profile else env.get(SERVER_ENV) or None
    if profile is not None:
        found = profiles.get(profile)
        if url is not None and normalize_url(url) != normalize_url(found.url):
            raise UsageError(
                f"Profile {profile!r} is for {found.url}, not {url}; pass one or the other."
            )
        return ServerProfile(found.name, normalize_url(found.url), token or found.token)
    if url is None:
        raise UsageError(
            f"No server given: pass a URL or a profile name, or set ${SERVER_ENV} or "
            f"${PROFILE_ENV}."
        )
    url = normalize_url(url)
    tok = token or env.get(TOKEN_ENV)
    if not tok:
        match = [p for p in profiles.load().values() if normalize_url(p.url) == url]
        if not match:
            raise UsageError(
                f"No token for {url}: set ${TOKEN_ENV} to a personal API token from the "
                f"server's settings page, or add a profile for it in {profiles.path}."
            )
        return ServerProfile(match[0].name, url, match[0].token)
    return ServerProfile(url, url, tok)
