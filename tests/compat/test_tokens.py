"""Personal API tokens: created (shown once), listed without their value, accepted as a bearer
on every API route (the seed API, history, and both compatible APIs), stored hashed, and
refused (401) in each route's own error shape once revoked."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import openai
import pytest

from .conftest import Live, tag

pytestmark = pytest.mark.timeout(60)
CHAT = {
    "model": "google/gemini-2.5-flash-image",
    "messages": [{"role": "user", "content": "a fox"}],
    "modalities": ["image", "text"],
}


def session_token(live: Live) -> str:
    with live.http() as c:
        r = c.post("/api/auth/login", json={"username": "ada", "password": "correct horse battery"})
        assert r.status_code == 200
        token: str = r.json()["access_token"]
        return token


def test_lifecycle(live: Live) -> None:
    name = f"script {tag()}"
    with live.http(session_token(live)) as c:
        created = c.post("/api/tokens", json={"name": name})
        assert created.status_code == 201
        body = created.json()
        assert {"id", "name", "token", "created_at"} <= set(body) and body["name"] == name
        token, token_id = body["token"], body["id"]
        listed = c.get("/api/tokens")
        assert listed.status_code == 200
        mine = [t for t in listed.json()["tokens"] if t["id"] == token_id]
        assert mine and mine[0]["name"] == name and "token" not in mine[0]
        assert token not in listed.text  # shown once, never again

    # Stored as a SHA-256 hash only.
    db = Path(live.services.settings.resolved_database_url.split("///", 1)[1])
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute(
            "SELECT token_hash FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    for part in (db, db.with_name(db.name + "-wal")):
        assert not part.exists() or token.encode() not in part.read_bytes()

    # Accepted like a session token on every kind of route.
    with live.http(token) as c:
        assert c.get("/api/auth/me").json()["username"] == "ada"
        assert c.get("/api/generations").status_code == 200
        seed = c.post("/api/nano-banana/generate", json={"prompt": f"a fox {tag()}"})
        assert seed.status_code == 200, seed.text
        assert c.post("/api/v1/chat/completions", json=CHAT).status_code == 200
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=token, max_retries=0) as sdk:
        assert sdk.images.generate(prompt=f"an owl {tag()}").data

    # Another user cannot see or revoke it.
    other = live.new_user()
    with live.http(other) as c:
        assert token_id not in c.get("/api/tokens").text
        assert c.delete(f"/api/tokens/{token_id}").status_code == 404

    with live.http(session_token(live)) as c:
        assert c.delete(f"/api/tokens/{token_id}").status_code == 204
        assert token_id not in {t["id"] for t in c.get("/api/tokens").json()["tokens"]}
        assert c.delete(f"/api/tokens/{token_id}").status_code == 404

    # Revoked: 401 everywhere, in each API's own shape.
    with live.http(token) as c:
        assert c.get("/api/auth/me").status_code == 401
        chat = c.post("/api/v1/chat/completions", json=CHAT)
        assert chat.status_code == 401 and chat.json()["error"]["code"] == 401
        images = c.post("/v1/images/generations", json={"prompt": "x"})
        assert images.status_code == 401
        assert images.json()["error"]["code"] == "invalid_api_key"
        seed = c.post("/api/nano-banana/generate", json={"prompt": "x"})
        assert seed.status_code == 401 and seed.json()["error"]["code"] == "unauthorized"
    with (
        openai.OpenAI(base_url=f"{live.url}/api/v1", api_key=token, max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.chat.completions.create(**CHAT)  # type: ignore[call-overload]


def test_a_token_needs_a_name(live: Live) -> None:
    with live.http(live.token) as c:
        assert c.post("/api/tokens", json={}).status_code == 422
        assert c.post("/api/tokens", json={"name": ""}).status_code == 422
        assert c.post("/api/tokens", json={"name": "x", "is_admin": True}).status_code == 422
    with live.http() as c:
        assert c.post("/api/tokens", json={"name": "x"}).status_code == 401
