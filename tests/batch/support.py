"""Helpers shared by the batch and ComfyUI tests.

``generation_calls`` / ``calls_for``: the paid calls the emulator saw (to prove nothing is paid
twice).  ``live_server``: a real nanobanana server on a loopback port (uvicorn in a thread),
upstream = the emulator, with one user who stored a canary provider key and created a personal
API token; the tests talk to it over HTTP exactly as they would to a deployed server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from nanobanana.server.app import create_app

from ..support import ServerThread, service_settings


def generation_calls(emu: Any) -> list[dict[str, Any]]:
    """Requests that asked for an image (paid calls), oldest first."""
    return [
        r
        for r in emu.requests()
        if r["method"] == "POST"
        and (r["path"].endswith("/chat/completions") or "generateContent" in r["path"])
    ]


def calls_for(emu: Any, marker: str) -> int:
    """How many paid calls carried ``marker`` in their prompt."""
    return sum(1 for r in generation_calls(emu) if marker in json.dumps(r.get("body")))


SERVER_KEY_CANARY = "sk-or-v1-CANARY-stored-on-server-0123456789"
PASSWORD = "correct horse battery"


@dataclass
class LiveServer:
    url: str
    #: A personal API token of the user ``ada`` (the one batch and ComfyUI use).
    token: str
    app: Any

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


@contextmanager
def live_server(tmp_path: Path, emu: Any, **over: Any) -> Iterator[LiveServer]:
    settings = service_settings(
        tmp_path / "server",
        f"sqlite+aiosqlite:///{tmp_path / 'server.db'}",
        openrouter_url=emu.openrouter_url,
        gemini_url=emu.gemini_url,
        **{"max_concurrent_jobs_per_user": 4, **over},
    )
    app = create_app(settings)
    with ServerThread(app) as srv:
        url = srv.url
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.post("/api/auth/register", json={"username": "ada", "password": PASSWORD})
            assert r.status_code == 201, r.text
            r = c.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
            assert r.status_code == 200, r.text
            c.cookies.clear()
            session = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = c.put(
                "/api/settings/keys/openrouter",
                json={"api_key": SERVER_KEY_CANARY},
                headers=session,
            )
            assert r.status_code == 200, r.text
            r = c.post("/api/auth/tokens", json={"name": "batch"}, headers=session)
            assert r.status_code == 201, r.text
            token = r.json()["token"]
        yield LiveServer(url=url, token=token, app=app)
