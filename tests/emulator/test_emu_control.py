"""The control routes, the recorded requests, configuration, and the server's lifecycle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from nanobanana.emulator import EmulatorConfig, EmulatorServer, create_app
from nanobanana.emulator.recorder import digest

from .helpers import (
    CHAT,
    GEMINI_HEADERS,
    GEMINI_KEY,
    OR_HEADERS,
    OR_KEY,
    chat_body,
    gemini_body,
    gen_path,
)


def in_process(config: EmulatorConfig) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(create_app(config)), base_url="http://emu"
    )


def test_health_requests_and_reset(http: httpx.Client, emu: EmulatorServer) -> None:
    assert http.get("/_emulator/health").json()["status"] == "ok"
    png_body = chat_body()
    http.post(CHAT, json=png_body, headers={**OR_HEADERS, "X-Emulator-Scenario": "latency:0"})
    http.post(gen_path() + "?alt=x", json=gemini_body(), headers=GEMINI_HEADERS)
    recorded = http.get("/_emulator/requests").json()["requests"]
    assert recorded == emu.requests()
    first, second = recorded
    assert first["service"] == "openrouter" and first["method"] == "POST" and first["path"] == CHAT
    assert "authorization" in first["headers"] and "x-emulator-scenario" in first["headers"]
    assert (first["auth_header"], first["api_key"], first["key_in_query"]) == (
        "authorization",
        OR_KEY,
        False,
    )
    assert first["scenario"] == ["latency:0"] and first["status"] == 200
    assert first["body"] == png_body
    assert second["service"] == "gemini" and second["query"] == "alt=x"
    assert (second["auth_header"], second["api_key"]) == ("x-goog-api-key", GEMINI_KEY)
    assert second["seq"] > first["seq"]
    assert http.get("/_emulator/requests?limit=1").json()["requests"] == [second]
    assert http.post("/_emulator/reset").json() == {"status": "reset"}
    assert emu.requests() == []


def test_recorded_bodies_never_hold_image_payloads(http: httpx.Client, emu: EmulatorServer) -> None:
    r = http.post(gen_path(), json=gemini_body(), headers=GEMINI_HEADERS)
    data = r.json()["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
    body = gemini_body()
    body["contents"][0]["parts"].append({"inlineData": {"mimeType": "image/png", "data": data}})
    http.post(gen_path(), json=body, headers=GEMINI_HEADERS)
    recorded = emu.requests()[-1]["body"]["contents"][0]["parts"][1]["inlineData"]["data"]
    assert recorded == f"<base64: {len(data)} chars, sha256:{digest(data)}>"
    assert len(httpx.get(emu.url + "/_emulator/requests").content) < 10_000


async def test_valid_keys_restrict_access() -> None:
    async with in_process(EmulatorConfig(valid_keys=frozenset({"sk-or-v1-GOOD", "AIzaGOOD"}))) as c:
        ok = await c.post(CHAT, json=chat_body(), headers={"Authorization": "Bearer sk-or-v1-GOOD"})
        bad = await c.post(CHAT, json=chat_body(), headers=OR_HEADERS)
        assert (ok.status_code, bad.status_code) == (200, 401)
        ok = await c.post(gen_path(), json=gemini_body(), headers={"x-goog-api-key": "AIzaGOOD"})
        bad = await c.post(gen_path(), json=gemini_body(), headers=GEMINI_HEADERS)
        assert (ok.status_code, bad.status_code) == (200, 400)


async def test_default_scenario_and_latency_from_config() -> None:
    async with in_process(EmulatorConfig(default_scenario="quota:3", latency=0.2)) as c:
        start = time.monotonic()
        r = await c.post(CHAT, json=chat_body(), headers=OR_HEADERS)
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        assert time.monotonic() - start >= 0.2
        # A request that names a scenario replaces the default.
        r = await c.post(CHAT, json=chat_body("[emulator:ok]"), headers=OR_HEADERS)
        assert r.status_code == 200


async def test_fixed_payload_serves_identical_images() -> None:
    async with in_process(EmulatorConfig(fixed_payload=True)) as c:
        one = await c.post(CHAT, json=chat_body("a fox"), headers=OR_HEADERS)
        two = await c.post(CHAT, json=chat_body("a whale"), headers=OR_HEADERS)
        urls = [
            r.json()["choices"][0]["message"]["images"][0]["image_url"]["url"] for r in (one, two)
        ]
        assert urls[0] == urls[1]
        gem = await c.post(gen_path(), json=gemini_body(), headers=GEMINI_HEADERS)
        assert (
            gem.json()["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
            == urls[0].partition(",")[2]
        )


async def test_record_and_generation_limits() -> None:
    app = create_app(EmulatorConfig(record_limit=2, generation_limit=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://emu") as c:
        ids = []
        for _ in range(3):
            ids.append(
                (
                    await c.post(CHAT, json=chat_body(modalities=["text"]), headers=OR_HEADERS)
                ).json()["id"]
            )
        stats = [
            (await c.get("/api/v1/generation", params={"id": i}, headers=OR_HEADERS)).status_code
            for i in ids
        ]
        assert stats == [404, 404, 200]
        assert len((await c.get("/_emulator/requests")).json()["requests"]) == 2


def test_server_addresses_and_quick_start() -> None:
    start = time.monotonic()
    with EmulatorServer() as server:
        assert time.monotonic() - start < 1.0
        assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
        assert server.openrouter_url == server.url + "/api/v1" and server.gemini_url == server.url
        assert httpx.get(server.url + "/_emulator/health").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/_emulator/health", timeout=1)


@pytest.fixture
async def async_server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(EmulatorConfig(default_scenario="text-only")) as server:
        yield server


async def test_async_context_manager(async_server: EmulatorServer) -> None:
    async with httpx.AsyncClient(base_url=async_server.url) as c:
        r = await c.post(CHAT, json=chat_body(), headers=OR_HEADERS)
    assert "images" not in r.json()["choices"][0]["message"]
    assert async_server.requests()[-1]["scenario"] == ["text-only"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_runs_in_the_foreground_and_logs_no_keys() -> None:
    port = _free_port()
    code = (
        "from nanobanana.emulator import serve, EmulatorConfig; "
        f"serve('127.0.0.1', {port}, EmulatorConfig(fixed_payload=True))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        r = httpx.post(f"http://127.0.0.1:{port}{gen_path()}?key={GEMINI_KEY}", json=gemini_body())
        assert r.status_code == 200
    finally:
        os.kill(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=15)
    assert GEMINI_KEY.encode() not in output
    assert b"Uvicorn running" in output or b"Started server" in output


def test_the_emulator_imports_nothing_from_the_rest_of_nanobanana() -> None:
    code = (
        "import sys, nanobanana.emulator.app, nanobanana.emulator.server; "
        "print(sorted(m for m in sys.modules if m.startswith('nanobanana.') "
        "and not m.startswith('nanobanana.emulator')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
