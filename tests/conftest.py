"""Fixtures shared by the whole suite.

``emulator``: one offline emulator of the OpenRouter and Gemini APIs for the session, on a free
loopback port (``nanobanana.emulator.EmulatorServer``).  ``emu``: the same server with its
recorded requests, generation stats and ``flaky`` counters cleared before the test.
``closed_port``: a loopback port nothing listens on.

No test reaches a network outside this machine: a host name other than ``localhost`` is not
resolved (``no_outside_names``), so that code which would call a real provider fails at once,
the same way on every machine, instead of depending on what the network allows.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nanobanana.emulator import EmulatorServer

# LiteLLM (tests/compat) fetches its price list from GitHub when imported, unless told to use
# the copy it ships: set before any test module imports it.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def emu(emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The session's emulator, reset before the test and after it (so that a model a test
    retired is served again for the tests that use ``emulator`` as it is)."""
    emulator.reset()
    yield emulator
    emulator.reset()


#: Environment that would let a developer's own keys, servers or settings reach a test.
LEAKY_VARS = (
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENROUTER_BASE_URL",
    "GEMINI_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test runs without the developer's keys, settings and config files: provider key and
    base-URL variables and every ``NANOBANANA_*`` setting are removed, and the keys and profiles
    files and the cache folder (kept model listings) point into the test's own temporary folder."""
    for var in LEAKY_VARS:
        monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):
        if var.startswith("NANOBANANA_"):
            monkeypatch.delenv(var, raising=False)
    config = tmp_path / "config"
    monkeypatch.setenv("NANOBANANA_KEYS_FILE", str(config / "keys.json"))
    monkeypatch.setenv("NANOBANANA_PROFILES_FILE", str(config / "profiles.json"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return config


#: Host names a test may resolve: this machine's.
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def no_outside_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving a host name other than this machine's fails, as on a machine without DNS."""
    real = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name and name.lower() not in LOCAL_NAMES and not _is_address(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no outside name ({name})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
