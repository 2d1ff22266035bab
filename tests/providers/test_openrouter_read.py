"""How the OpenRouter provider reads a plain (not streamed) answer, through each transport: with
a Content-Length into one buffer of that size, without one (chunked) piece by piece, gzip-encoded
though it asked for identity; the same result every way, the size cap holds on all, and an
answer shorter than its Content-Length is an ambiguous failure, not a short image."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from nanobanana.config import ProviderConfig
from nanobanana.emulator import EmulatorServer
from nanobanana.errors import AmbiguousError, InvalidResponseError
from nanobanana.providers import OpenRouterProvider
from nanobanana.providers.openrouter_wire import parse_response
from nanobanana.transport import StdlibTransport

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
async def serve(answer: bytes) -> AsyncIterator[Callable[[str], str]]:
    """A loopback server that answers with ``answer`` in the shape ``url(shape)`` names:
    ``content-length``, ``chunked``, ``gzip`` (with a Content-Length), ``gzip-chunked``, or
    ``short`` (a Content-Length 1000 bytes longer than what is sent before the close)."""
    shapes: dict[str, str] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()  # read it all, so that closing early is a clean FIN, not a reset
        shape = shapes["shape"]
        body = gzip.compress(answer, compresslevel=1) if shape.startswith("gzip") else answer
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if shape.startswith("gzip"):
            resp.headers["Content-Encoding"] = "gzip"
        if shape.endswith("chunked"):
            resp.enable_chunked_encoding()
        else:
            resp.content_length = len(body) + (1000 if shape == "short" else 0)
        await resp.prepare(request)
        for start in range(0, len(body), 100_000):  # many small writes
            await resp.write(body[start : start + 100_000])
        if shape == "short":
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/api/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def url(shape: str) -> str:
        shapes["shape"] = shape
        return f"http://127.0.0.1:{port}/api/v1"

    yield url
    await runner.cleanup()


TRANSPORTS = ["aiohttp", "stdlib"]
SHAPES = ["content-length", "chunked", "gzip", "gzip-chunked"]


def _provider(base_url: str, transport: str, **kw: int) -> OpenRouterProvider:
    config = ProviderConfig(name="openrouter", api_key=OPENROUTER_KEY, base_url=base_url)
    if transport == "stdlib":
        return OpenRouterProvider(config, transport=StdlibTransport(), **kw)
    return OpenRouterProvider(config, **kw)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("shape", SHAPES)
async def test_every_way_reads_the_same_image(
    serve: Callable[[str], str], answer: bytes, shape: str, transport: str
) -> None:
    p = _provider(serve(shape), transport)
    try:
        out = await p.generate(call())
    finally:
        await p.aclose()
    [img] = out.images
    # Exactly the image the emulator put in its answer.
    [expected] = parse_response(answer).images
    assert img.data == expected.data and len(img.data) > 1_400_000


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("shape", SHAPES)
async def test_the_cap_holds_every_way(
    serve: Callable[[str], str], shape: str, transport: str
) -> None:
    # For a compressed answer the cap counts what it inflates to (2 MB), not what was sent.
    p = _provider(serve(shape), transport, max_response_bytes=1_000_000)
    try:
        with pytest.raises(InvalidResponseError, match="limit"):
            await p.generate(call())
    finally:
        await p.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_answer_shorter_than_announced_is_ambiguous(
    serve: Callable[[str], str], transport: str
) -> None:
    p = _provider(serve("short"), transport)
    try:
        with pytest.raises(AmbiguousError, match="cut short") as ei:
            await p.generate(call())
    finally:
        await p.aclose()
    assert ei.value.may_be_billed and OPENROUTER_KEY not in str(ei.value)
