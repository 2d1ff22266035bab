"""A live nanobanana service on a loopback port (uvicorn in a thread) for the compatibility
tests: SQLite and images in a temporary folder, upstream = the emulator, one user ``ada`` with
canary keys for both providers and a personal API token.  Real clients (the ``openai`` SDK,
``requests``, curl, nanobanana's own library) talk to it over HTTP.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanobanana.emulator import EmulatorConfig, EmulatorServer
from nanobanana.server.app import create_app

from ..conftest import LEAKY_VARS
from ..support import ServerThread, service_settings

OPENROUTER_CANARY = "sk-or-v1-CANARY-compat-0123456789abcdef0123456789"
GOOGLE_CANARY = "AIzaSyCANARY-compat-0123456789abcdefghijkl"
PASSWORD = "correct horse battery"


@dataclass
class Live:
    """A running service and helpers to make users on it."""

    url: str
    app: Any
    #: ada's personal API token (she stored keys for both providers).
    token: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.app.state.services

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def new_user(self, name: str | None = None, keys: dict[str, str] | None = None) -> str:
        """Register a user, store ``keys`` and return a personal API token."""
        name = name or f"u{uuid.uuid4().hex[:10]}"
        with self.http() as c:
            r = c.post("/api/auth/register", json={"username": name, "password": PASSWORD})
            assert r.status_code == 201, r.text
            r = c.post("/api/auth/login", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            session = r.json()["access_token"]
            c.cookies.clear()
            h = {"Authorization": f"Bearer {session}"}
            for provider, key in (keys or {}).items():
                r = c.put(f"/api/settings/keys/{provider}", json={"api_key": key}, headers=h)
                assert r.status_code == 200, r.text
            r = c.post("/api/tokens", json={"name": "compat tests"}, headers=h)
            assert r.status_code == 201, r.text
            token: str = r.json()["token"]
        self.tokens[name] = token
        return token


@contextmanager
def live_server(tmp: Path, openrouter_url: str, gemini_url: str, **over: Any) -> Iterator[Live]:
    values: dict[str, Any] = {
        "openrouter_api_key": None,
        "gemini_api_key": None,
        "max_concurrent_jobs_per_user": 4,
        # The tests are not about the per-user rate limit (test_security covers it).
        "generations_per_minute": 10_000,
        **over,
    }
    with pytest.MonkeyPatch.context() as mp:
        # Module-scoped callers set up before the per-test ``isolated_env``: clean here too.
        for var in (*LEAKY_VARS, *(v for v in os.environ if v.startswith("NANOBANANA_"))):
            mp.delenv(var, raising=False)
        settings = service_settings(
            tmp / "data",
            f"sqlite+aiosqlite:///{tmp / 'db.sqlite'}",
            openrouter_url=openrouter_url,
            gemini_url=gemini_url,
            **values,
        )
        app = create_app(settings)
    with ServerThread(app) as srv:
        live = Live(url=srv.url, app=app, token="")
        live.token = live.new_user(
            "ada", {"openrouter": OPENROUTER_CANARY, "google": GOOGLE_CANARY}
        )
        yield live


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorServer) -> Iterator[Live]:
    """The service with both providers on the shared emulator."""
    tmp = tmp_path_factory.mktemp("compat")
    with live_server(tmp, emulator.openrouter_url, emulator.gemini_url) as server:
        yield server


@pytest.fixture(scope="module")
def quota_google() -> Iterator[EmulatorServer]:
    """A Google upstream whose every answer is a (per-minute) quota error."""
    with EmulatorServer(EmulatorConfig(default_scenario="quota:90")) as emu:
        yield emu


@pytest.fixture(scope="module")
def live_quota(
    tmp_path_factory: pytest.TempPathFactory,
    emulator: EmulatorServer,
    quota_google: EmulatorServer,
) -> Iterator[Live]:
    """The service whose Google upstream is out of quota (OpenRouter works)."""
    tmp = tmp_path_factory.mktemp("compat-quota")
    with live_server(tmp, emulator.openrouter_url, quota_google.gemini_url) as server:
        yield server


# ----------------------------------------------------------------------------- helpers
def tag() -> str:
    """A unique word for a prompt, to find the upstream requests a test caused."""
    return f"t{uuid.uuid4().hex[:10]}"


def decode_data_url(url: str) -> tuple[str, bytes]:
    head, _, payload = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head
    return head[5:-7], base64.b64decode(payload, validate=True)


def upstream_prompts(emu: EmulatorServer, marker: str) -> list[dict[str, Any]]:
    """Generation requests the emulator saw whose body mentions ``marker``."""
    import json

    return [
        r
        for r in emu.requests()
        if r.get("method") == "POST" and marker in json.dumps(r.get("body"), ensure_ascii=False)
    ]
