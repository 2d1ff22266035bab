"""Server profiles and the client of a nanobanana server, against a real server process."""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image as PILImage

from nanobanana import GenerationRequest, errors
from nanobanana.remote import (
    Job,
    ProfilesFile,
    ServerClient,
    ServerError,
    ServerProfile,
    resolve_server,
)

from .support import LiveServer, live_server

TOKEN = "nbt_CANARY-profile-token-0123456789"


@pytest.fixture
def server(tmp_path: Path, emu: Any) -> Iterator[LiveServer]:
    with live_server(tmp_path, emu) as srv:
        yield srv


# ------------------------------------------------------------------------------ profiles
def test_profiles_file_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "profiles.json"
    profiles = ProfilesFile(path)
    assert profiles.load() == {}
    profiles.set("studio", "https://images.example.com/", TOKEN)
    profiles.set("home", "http://127.0.0.1:8000", "other")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = profiles.get("studio")
    assert (loaded.url, loaded.token) == ("https://images.example.com", TOKEN)
    assert TOKEN not in repr(loaded)
    assert profiles.names() == ["home", "studio"]
    assert profiles.remove("home") and not profiles.remove("home")
    os.chmod(path, 0o640)
    with pytest.raises(errors.UsageError, match="chmod 600"):
        profiles.load()
    os.chmod(path, 0o600)
    with pytest.raises(errors.UsageError, match=r"No server profile named 'nope'.*known: studio"):
        profiles.get("nope")


def test_resolve_server_rules(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    ProfilesFile(path).set("studio", "https://images.example.com", TOKEN)
    env = {"NANOBANANA_PROFILES_FILE": str(path)}
    assert resolve_server(profile="studio", env=env).token == TOKEN
    # A URL finds the token of the profile for the same server...
    assert resolve_server(url="https://images.example.com/", env=env).token == TOKEN
    # ...$NANOBANANA_TOKEN wins over it, and the defaults come from the environment.
    env_token = {**env, "NANOBANANA_TOKEN": "from-env"}
    assert resolve_server(url="https://images.example.com", env=env_token).token == "from-env"
    assert resolve_server(env={**env, "NANOBANANA_PROFILE": "studio"}).name == "studio"
    assert resolve_server(env={**env_token, "NANOBANANA_SERVER": "https://x.test"}).url == (
        "https://x.test"
    )
    with pytest.raises(errors.UsageError, match=re.escape("No token for https://other.test")):
        resolve_server(url="https://other.test", env=env)
    with pytest.raises(errors.UsageError, match=re.escape("is for https://images.example.com")):
        resolve_server(url="https://other.test", profile="studio", env=env)
    with pytest.raises(errors.UsageError, match="not in the URL"):
        resolve_server(url=f"https://me:{TOKEN}@x.test", env=env_token)
    with pytest.raises(errors.UsageError, match="No server given"):
        resolve_server(env=env)


async def test_the_token_goes_only_to_the_servers_origin() -> None:
    """Two origins (two ports): the server's, and another one an image URL or a redirect
    may point at.  Only requests to the server's origin carry the token."""
    seen: list[tuple[int, str | None]] = []
    ports: list[int] = []
    png = io.BytesIO()
    PILImage.new("RGB", (4, 4), (1, 2, 3)).save(png, format="PNG")

    async def handler(request: web.Request) -> web.StreamResponse:
        port = request.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        seen.append((port, request.headers.get("Authorization")))
        if request.path == "/api/images/moved":
            raise web.HTTPFound(f"http://127.0.0.1:{ports[1]}/bucket/img.png")
        if request.path == "/bucket/img.png":
            return web.Response(body=png.getvalue(), content_type="image/png")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    for _ in range(2):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    ours, other = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        async with ServerClient(ours, TOKEN) as client:
            with pytest.raises(ServerError) as info:
                await client.download(f"{ours}/api/images/1")
            assert TOKEN not in str(info.value)
            with pytest.raises(ServerError):
                await client.download(f"{other}/api/images/2")
            data = await client.download("/api/images/moved")
    finally:
        await runner.cleanup()
    assert data == png.getvalue()
    assert seen == [
        (ports[0], f"Bearer {TOKEN}"),
        (ports[1], None),
        (ports[0], f"Bearer {TOKEN}"),
        (ports[1], None),  # the redirect's target gets no token
    ]


def test_job_parsing_refuses_what_is_not_a_job() -> None:
    with pytest.raises(ServerError, match="not a generation job"):
        Job.from_json({"detail": "nope"})
    job = Job.from_json(
        {
            "id": "j1",
            "status": "blocked",
            "images": [],
            "error": {"code": "content_blocked", "message": "m", "reason": "IMAGE_SAFETY"},
        }
    )
    assert job.finished and not job.succeeded


# --------------------------------------------------------------------- a real server
async def test_generate_on_a_server(server: LiveServer, emu: Any) -> None:
    async with ServerClient(server.url, server.token) as client:
        job, images = await client.generate("a fox on the server", n=2, aspect_ratio="16:9")
    assert job.status == "succeeded" and job.provider == "openrouter" and job.cost
    assert [(i.width, i.height) for i in images] == [(1344, 768)] * 2
    assert images[0].data.startswith(b"\x89PNG")
    # The server used the key its user stored, not anything from this process.
    keys = {r["api_key"] for r in emu.requests() if r["method"] == "POST"}
    assert keys == {"sk-or-v1-CANARY-stored-on-server-0123456789"}


async def test_server_errors_become_the_librarys(server: LiveServer) -> None:
    async with ServerClient(server.url, server.token) as client:
        with pytest.raises(errors.BlockedError) as blocked:
            await client.generate("a fox [emulator:safety]")
        assert blocked.value.reason == "IMAGE_SAFETY"
        with pytest.raises(errors.ValidationError, match="Aspect ratio '7:3'"):
            await client.create_generation(GenerationRequest(prompt="x", aspect_ratio="7:3"))
        first = await client.create_generation(
            GenerationRequest(prompt="once"), idempotency_key="k-1"
        )
        again = await client.create_generation(
            GenerationRequest(prompt="once"), idempotency_key="k-1"
        )
        assert again.id == first.id  # replayed, not run twice
    async with ServerClient(server.url, TOKEN) as bad:
        with pytest.raises(ServerError, match="refused the token") as refused:
            await bad.get_generation("x")
        assert TOKEN not in str(refused.value)
    async with ServerClient("http://127.0.0.1:9", TOKEN) as gone:
        gone._sleep = _no_sleep
        with pytest.raises(ServerError, match="Cannot reach"):
            await gone.get_generation("x")


async def test_a_generation_cancelled_from_the_client(server: LiveServer) -> None:
    """A running job cancelled through the client ends at once as cancelled, with what the
    server says of billing; asking again answers the same; an ended job cannot be."""
    async with ServerClient(server.url, server.token) as client:
        job = await client.create_generation(
            GenerationRequest(prompt="a slow fox [emulator:latency:20]")
        )
        for _ in range(100):
            if (await client.get_generation(job.id)).status == "running":
                break
            await asyncio.sleep(0.05)
        ended = await client.cancel_generation(job.id)
        assert ended.finished and not ended.succeeded
        assert ended.error is not None and ended.error["code"] == "job_cancelled"
        assert ended.error["may_be_billed"] is True  # it had been sent
        assert (await client.cancel_generation(job.id)).status == ended.status
        with pytest.raises(errors.NanobananaError, match="Cancelled while it ran"):
            await client.wait(job.id)
        done, _ = await client.generate("a quick fox")
        with pytest.raises(errors.NanobananaError, match="already ended"):
            await client.cancel_generation(done.id)


async def _no_sleep(_: float) -> None:
    return None


def test_server_profile_repr_hides_the_token() -> None:
    assert TOKEN not in repr(ServerProfile("p", "https://x.test", TOKEN))
    assert TOKEN not in repr(ServerClient("https://x.test", TOKEN))
