"""How the OpenRouter provider reads a plain (not streamed) answer: with a Content-Length into
one buffer of that size, without one (chunked) piece by piece; the same result either way, and
the size cap holds on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from nanobanana.config import ProviderConfig
from nanobanana.emulator import EmulatorServer
from nanobanana.errors import InvalidResponseError
from nanobanana.providers import OpenRouterProvider
from nanobanana.providers.openrouter_wire import parse_response

from .helpers import OPENROUTER_KEY, call


@pytest.fixture
async def answer(emu: EmulatorServer) -> bytes:
    """A real answer body, as the emulator writes it (a 2 MB image)."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{emu.openrouter_url}/chat/completions",
            json={
                "model": "google/gemini-2.5-flash-image",
                "modalities": ["image", "text"],
                "messages": [{"role": "user", "content": "a read test [emulator:oversize:2]"}],
            },
            headers={"Authorization": f"Bearer {OPENROUTER_KEY}"},
        ) as resp,
    ):
        assert resp.status == 200
        return await resp.read()


@pytest.fixture
async def serve(answer: bytes) -> AsyncIterator[Callable[[bool], str]]:
    """A loopback server that answers with ``answer``, chunked or with a Content-Length."""
    modes: dict[str, bool] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        chunked = modes["chunked"]
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = len(answer)
        await resp.prepare(request)
        for start in range(0, len(answer), 100_000):  # many small writes
            await resp.write(answer[start : start + 100_000])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/api/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def url(chunked: bool) -> str:
        modes["chunked"] = chunked
        return f"http://127.0.0.1:{port}/api/v1"

    yield url
    await runner.cleanup()


def _provider(base_url: str, **kw: int) -> OpenRouterProvider:
    config = ProviderConfig(name="openrouter", api_key=OPENROUTER_KEY, base_url=base_url)
    return OpenRouterProvider(config, **kw)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_both_ways_read_the_same_image(
    serve: Callable[[bool], str], answer: bytes, chunked: bool
) -> None:
    p = _provider(serve(chunked))
    try:
        out = await p.generate(call())
    finally:
        await p.aclose()
    [img] = out.images
    # Exactly the image the emulator put in its answer.
    [expected] = parse_response(answer).images
    assert img.data == expected.data and len(img.data) > 1_400_000


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_the_cap_holds_both_ways(serve: Callable[[bool], str], chunked: bool) -> None:
    p = _provider(serve(chunked), max_response_bytes=1_000_000)
    try:
        with pytest.raises(InvalidResponseError, match="limit"):
            await p.generate(call())
    finally:
        await p.aclose()
