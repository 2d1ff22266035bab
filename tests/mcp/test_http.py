"""The service's ``/mcp`` over streamable HTTP, driven by the official MCP Python client
against a live service (uvicorn on loopback, the emulator upstream): the tools and their
schemas, generate and edit as jobs of the token's user with download links and previews,
progress, sessions, refused tokens, one user's generations out of another's reach, and no key
in any result or log."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from PIL import Image as PILImage

from mcp import Client
from nanobanana.emulator import EmulatorServer
from nanobanana.mcp.results import PREVIEW_SIDE

from ..compat.conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Live, live_server
from .test_stdio import TOOLS, _enum, _text


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorServer) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("mcp-http")
    with live_server(tmp, emulator.openrouter_url, emulator.gemini_url) as server:
        yield server


@contextlib.asynccontextmanager
async def connect(live: Live, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{live.url}/mcp", http_client=http)) as client,
    ):
        yield client


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


def _download(live: Live, url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=30)


async def test_tools_over_http(live: Live) -> None:
    async with connect(live, live.token) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert "16:9" in _enum(tools["generate_image"].input_schema, "aspect_ratio")
    images = tools["edit_image"].input_schema["properties"]["images"]
    assert "generation_id" in images["description"] and "file paths" not in images["description"]


async def test_generate_and_edit_are_jobs_with_links_and_previews(live: Live) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with connect(live, live.token) as client:
        made = await client.call_tool(
            "generate_image",
            {"prompt": "a lighthouse, http", "aspect_ratio": "16:9", "provider": "google"},
            progress_callback=on_progress,
        )
        assert not made.is_error, _text(made)
        gid = made.structured_content["generation_id"]
        edited = await client.call_tool(
            "edit_image", {"prompt": "at night", "images": [gid], "provider": "google"}
        )
    assert not edited.is_error, _text(edited)

    _, link, shown = made.content
    assert (
        link.type == "resource_link"
        and link.uri == f"{live.url}/api/images/{link.uri.rsplit('/', 1)[-1]}"
    )
    # The link downloads the image with the same token, and only with a token.
    full = _download(live, link.uri, live.token)
    assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    assert len(full.content) == link.size
    assert _download(live, link.uri, None).status_code == 401
    with PILImage.open(io.BytesIO(full.content)) as img:
        width, height = img.size
    with PILImage.open(io.BytesIO(base64.b64decode(shown.data))) as small:
        assert small.format == "JPEG" and small.size[0] == PREVIEW_SIDE
        assert abs(small.size[1] - height * PREVIEW_SIDE / width) <= 1

    # Both are jobs of ada's, in her history, the edit made from the first image.
    with live.http(live.token) as http:
        first = http.get(f"/api/generations/{gid}").json()
        second = http.get(f"/api/generations/{edited.structured_content['generation_id']}")
    assert first["status"] == "succeeded" and first["prompt"] == "a lighthouse, http"
    assert second.json()["status"] == "succeeded"
    assert any(p[1] and "image 1 arrived" in p[1] for p in progress)
    values = [p[0] for p in progress]
    assert values == sorted(values)


async def test_sessions_over_http(live: Live) -> None:
    async with connect(live, live.token) as client:
        t1 = await client.call_tool("continue_session", {"prompt": "a paper boat, http"})
        sid = t1.structured_content["session_id"]
        t2 = await client.call_tool("continue_session", {"prompt": "red", "session_id": sid})
        t3 = await client.call_tool(
            "branch_session",
            {
                "prompt": "green",
                "session_id": sid,
                "turn_id": t1.structured_content["generation_id"],
            },
        )
    for turn in (t1, t2, t3):
        assert not turn.is_error, _text(turn)
    assert t2.structured_content["parent_id"] == t1.structured_content["generation_id"]
    assert t3.structured_content["parent_id"] == t1.structured_content["generation_id"]
    with live.http(live.token) as http:
        tree = http.get(f"/api/sessions/{sid}").json()
    assert [t["parent_turn_id"] for t in tree["turns"]] == [
        None,
        t1.structured_content["generation_id"],
        t1.structured_content["generation_id"],
    ]


async def test_a_missing_or_revoked_token_is_refused(live: Live) -> None:
    with pytest.raises(BaseExceptionGroup) as missing:
        async with connect(live, None) as client:
            await client.list_tools()
    [leaf] = _leaves(missing.value)  # the SDK reports a refused request its own way
    assert isinstance(leaf, MCPError) and "error response" in str(leaf)
    bare = httpx.post(f"{live.url}/mcp", json={}, timeout=10)
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"

    token = live.new_user()
    async with connect(live, token) as client:
        assert not (await client.call_tool("list_models", {})).is_error
    with live.http(token) as http:
        [row] = [t for t in http.get("/api/tokens").json()["tokens"] if t["name"] == "compat tests"]
        assert http.delete(f"/api/tokens/{row['id']}").status_code == 204
    revoked = httpx.post(
        f"{live.url}/mcp", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]


async def test_one_users_generations_are_out_of_anothers_reach(live: Live) -> None:
    async with connect(live, live.token) as client:
        made = await client.call_tool("generate_image", {"prompt": "ada's own"})
    gid = made.structured_content["generation_id"]
    other = live.new_user(keys={"openrouter": OPENROUTER_CANARY})
    async with connect(live, other) as client:
        read = await client.call_tool("get_generation", {"generation_id": gid})
        edit = await client.call_tool("edit_image", {"prompt": "mine now", "images": [gid]})
        own = await client.call_tool("generate_image", {"prompt": "bob's own"})
    assert read.is_error and "no generation" in _text(read)
    assert edit.is_error and "no generation or upload" in _text(edit)
    assert not own.is_error
    link = next(b for b in made.content if b.type == "resource_link")
    assert _download(live, link.uri, other).status_code == 404


async def test_errors_and_no_key_in_results_or_logs(
    live: Live, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    keyless = live.new_user()
    results = []
    with caplog.at_level(logging.DEBUG):
        async with connect(live, keyless) as client:
            no_key = await client.call_tool("generate_image", {"prompt": "a fox"})
            path = await client.call_tool(
                "edit_image", {"prompt": "a fox", "images": [str(tmp_path / "x.png")]}
            )
        async with connect(live, live.token) as client:
            results += [
                await client.call_tool("generate_image", {"prompt": "a fox [emulator:safety]"}),
                await client.call_tool(
                    "generate_image",
                    {"prompt": "a fox [emulator@gemini:quota]", "provider": "google"},
                ),
                await client.call_tool("list_models", {}),
            ]
    assert no_key.is_error and "settings page" in _text(no_key)
    assert path.is_error and "stdio" in _text(path)
    blocked, fell_back, _ = results
    assert blocked.is_error and "Rephrase" in _text(blocked)
    assert not fell_back.is_error and fell_back.structured_content["provider"] == "openrouter"
    seen = [r.model_dump_json() for r in (no_key, path, *results)] + [caplog.text]
    for where in seen:
        assert OPENROUTER_CANARY not in where and GOOGLE_CANARY not in where
        assert live.token not in where and keyless not in where


async def test_a_call_cancelled_after_its_job_was_sent_keeps_the_result(live: Live) -> None:
    """The provider bills a sent call either way: its job runs to its end and stays in the
    user's history (get_generation finds it) when the client stops waiting."""
    token = live.new_user(keys={"openrouter": OPENROUTER_CANARY})
    async with connect(live, token) as client:
        with anyio.move_on_after(1.5) as scope:
            await client.call_tool("generate_image", {"prompt": "slow [emulator:latency:3]"})
        assert scope.cancelled_caught
    with live.http(token) as http:
        for _ in range(100):
            [job] = http.get("/api/generations").json()["items"]
            if job["status"] != "running":
                break
            await anyio.sleep(0.1)
    assert job["status"] == "succeeded" and len(job["images"]) == 1
    async with connect(live, token) as client:
        again = await client.call_tool("get_generation", {"generation_id": job["id"]})
    assert not again.is_error and again.structured_content["generation_id"] == job["id"]


async def test_references_over_http_are_what_the_service_takes(
    live: Live, emulator: EmulatorServer
) -> None:
    """An upload id and a data URL reach the model; a URL is refused before anything is paid
    for (the service fetches nothing for a client), saying what to send instead."""
    png = _download_first_image(live)
    with live.http(live.token) as http:
        r = http.post("/api/uploads", files={"file": ("ref.png", png, "image/png")})
        assert r.status_code == 201, r.text
        upload_id = r.json()["id"]
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    before = len(emulator.requests())
    async with connect(live, live.token) as client:
        by_upload = await client.call_tool(
            "edit_image", {"prompt": "upload", "images": [upload_id], "provider": "google"}
        )
        by_data = await client.call_tool(
            "edit_image", {"prompt": "data", "images": [data_url], "provider": "google"}
        )
        sent = len(emulator.requests())
        by_url = await client.call_tool(
            "edit_image", {"prompt": "url", "images": ["https://example.com/a.png"]}
        )
        foreign = await client.call_tool("edit_image", {"prompt": "x", "images": ["0" * 32]})
    assert not by_upload.is_error, _text(by_upload)
    assert not by_data.is_error, _text(by_data)
    assert sent - before == 2
    digest = hashlib.sha256(png).hexdigest()[:12]
    bodies = [json.dumps(r["body"]) for r in emulator.requests()[before:sent]]
    assert all(f"sha256:{digest}" in body for body in bodies)
    assert by_url.is_error and "fetches no URL" in _text(by_url)
    assert foreign.is_error and "no generation or upload" in _text(foreign)
    assert len(emulator.requests()) == sent  # neither refused call reached the provider


def _download_first_image(live: Live) -> bytes:
    with live.http(live.token) as http:
        r = http.post("/api/nano-banana/generate", json={"prompt": "a reference"})
        assert r.status_code == 200, r.text
        return base64.b64decode(r.json()["images"][0])
