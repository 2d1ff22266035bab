"""OpenRouterProvider against the emulator on loopback: every scenario, plain and streamed,
through each transport (aiohttp, and the standard library's for one-shot processes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from nanobanana.config import ProviderConfig
from nanobanana.emulator import EmulatorServer
from nanobanana.errors import (
    AmbiguousError,
    AuthenticationError,
    BlockedError,
    ConnectError,
    InvalidResponseError,
    MissingKeyError,
    NanobananaError,
    NoImageError,
    PaymentRequiredError,
    QuotaError,
    UpstreamUnavailable,
)
from nanobanana.imaging import b64decode
from nanobanana.providers import OpenRouterProvider, create_provider
from nanobanana.providers.base import FinishEvent, ProviderCall, ProviderResponse
from nanobanana.transport import StdlibTransport, TransportError
from nanobanana.types import ImageEvent, TextDelta, UsageEvent

from .helpers import OPENROUTER_KEY, call, reference

Provider = OpenRouterProvider


@pytest.fixture(params=["aiohttp", "stdlib"])
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make(emu: EmulatorServer, transport_name: str) -> AsyncIterator[Any]:
    made: list[OpenRouterProvider] = []

    def factory(scenario: str | None = None, **kw: Any) -> OpenRouterProvider:
        headers = {"X-Emulator-Scenario": scenario} if scenario else {}
        config = ProviderConfig(
            name="openrouter",
            api_key=kw.pop("api_key", OPENROUTER_KEY),
            base_url=kw.pop("base_url", emu.openrouter_url),
            headers=headers,
            referer="https://nanobanana.test",
            title="nanobanana tests",
        )
        if transport_name == "stdlib" and "session" not in kw:
            kw["transport"] = StdlibTransport()
        p = OpenRouterProvider(config, **kw)
        made.append(p)
        return p

    yield factory
    for p in made:
        await p.aclose()


async def run(p: OpenRouterProvider, c: ProviderCall, mode: str) -> Any:
    """The plain answer, or the stream's events (raising what the stream raises)."""
    if mode == "plain":
        return await p.generate(c)
    return [ev async for ev in p.stream(c)]


def images_of(result: Any) -> list[Any]:
    if isinstance(result, ProviderResponse):
        return result.images
    return [ev.image for ev in result if isinstance(ev, ImageEvent)]


MODES = ["plain", "stream"]


@pytest.mark.parametrize("mode", MODES)
async def test_ok_image_size_usage_and_wire_request(
    make: Any, emu: EmulatorServer, mode: str
) -> None:
    refs = (reference(3, 2),)
    c = call("gemini-3-pro-image", aspect_ratio="16:9", image_size="2K", images=refs)
    result = await run(make("ok"), c, mode)
    [img] = images_of(result)
    assert (img.width, img.height) == c.model.expected_pixels("16:9", "2K")
    assert img.mime_type == "image/png" and img.data.startswith(b"\x89PNG")
    if mode == "plain":
        assert result.usage.cost is not None and result.usage.cost > 0
        assert not result.usage.cost_is_estimate
        assert result.request_id.startswith("gen-") and result.finish_reason == "STOP"
        assert result.served_model == "google/gemini-3-pro-image-preview"
    else:
        kinds = [type(ev).__name__ for ev in result]
        assert kinds[-1] == "FinishEvent" and "UsageEvent" in kinds
        assert kinds.index("ImageEvent") < kinds.index("FinishEvent")
        assert result[-1].request_id.startswith("gen-")
    [req] = emu.requests()
    assert req["path"] == "/api/v1/chat/completions" and req["query"] == ""
    assert req["auth_header"] == "authorization" and req["api_key"] == OPENROUTER_KEY
    assert {"http-referer", "x-openrouter-title", "x-title"} <= set(req["headers"])
    body = req["body"]
    assert body["stream"] is (mode == "stream")
    assert body["modalities"] == ["image", "text"]
    assert body["image_config"] == {"aspect_ratio": "16:9", "image_size": "2K"}
    content = body["messages"][0]["content"]
    assert content[0]["type"] == "text" and content[1]["type"] == "image_url"
    url = content[1]["image_url"]["url"]
    assert b64decode(url.partition(",")[2]) == refs[0].data


@pytest.mark.parametrize("mode", MODES)
async def test_image_only_model_sends_image_modality(
    make: Any, emu: EmulatorServer, mode: str
) -> None:
    result = await run(make(), call("black-forest-labs/flux.2-pro", seed=42), mode)
    assert len(images_of(result)) == 1
    [req] = emu.requests()
    assert req["body"]["modalities"] == ["image"] and req["body"]["seed"] == 42


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("string-images", lambda i: i.mime_type == "image/png"),
        ("jpeg", lambda i: i.mime_type == "image/jpeg"),
        ("size:300x200", lambda i: (i.width, i.height) == (300, 200)),
    ],
)
async def test_payload_variants_that_still_are_images(
    make: Any, mode: str, scenario: str, check: Any
) -> None:
    [img] = images_of(await run(make(scenario), call(), mode))
    assert check(img)


ERRORS = [
    (
        "quota:3",
        QuotaError,
        {"status": 429, "retry_after": 3.0, "per_day": False, "retryable": True},
    ),
    ("quota-day", QuotaError, {"per_day": True, "retryable": False}),
    ("legacy-error:5", QuotaError, {"retry_after": 5.0, "per_day": False}),
    ("payment", PaymentRequiredError, {"status": 402, "retryable": False}),
    (
        "server-error:503",
        UpstreamUnavailable,
        {"status": 503, "retry_after": 1.0, "may_be_billed": False},
    ),
    ("server-error:500", UpstreamUnavailable, {"status": 500, "retryable": True}),
    ("error-in-200", UpstreamUnavailable, {"may_be_billed": True}),
    ("safety", BlockedError, {"reason": "IMAGE_SAFETY"}),
    ("blocked-prompt", BlockedError, {}),
    ("text-only", NoImageError, {}),
    ("truncated", AmbiguousError, {"may_be_billed": True, "sent": True, "retryable": False}),
    ("reset", AmbiguousError, {"may_be_billed": True}),
    ("hangup", AmbiguousError, {"may_be_billed": True}),
    ("bad-base64", InvalidResponseError, {"may_be_billed": True}),
    ("not-an-image", InvalidResponseError, {}),
    ("truncated-image", InvalidResponseError, {}),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("scenario", "cls", "attrs"), ERRORS, ids=[e[0] for e in ERRORS])
async def test_scenarios_map_to_the_error_tree(
    make: Any, mode: str, scenario: str, cls: type[NanobananaError], attrs: dict[str, Any]
) -> None:
    with pytest.raises(cls) as ei:
        await run(make(scenario), call(), mode)
    for name, value in attrs.items():
        assert getattr(ei.value, name) == value, name
    assert getattr(ei.value, "provider", "openrouter") == "openrouter"
    assert OPENROUTER_KEY not in str(ei.value)


async def test_midstream_error_comes_after_the_text_already_streamed(make: Any) -> None:
    seen: list[Any] = []
    with pytest.raises(UpstreamUnavailable) as ei:
        async for ev in make("midstream-error:502").stream(call()):
            seen.append(ev)
    assert [type(e) for e in seen] == [TextDelta]
    assert ei.value.status == 502 and ei.value.may_be_billed and ei.value.request_id


async def test_flaky_fails_then_succeeds(make: Any) -> None:
    p = make("flaky:1:503:openrouter-flaky")
    with pytest.raises(UpstreamUnavailable):
        await p.generate(call())
    assert len((await p.generate(call())).images) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_refused_key_is_authentication_error(make: Any, mode: str) -> None:
    with pytest.raises(AuthenticationError) as ei:
        await run(make(api_key="sk-or-v1-invalid-CANARY"), call(), mode)
    assert ei.value.status == 401 and "sk-or-v1-invalid-CANARY" not in str(ei.value)


@pytest.mark.parametrize("mode", MODES)
async def test_missing_key_is_a_usage_error_and_sends_nothing(
    make: Any, emu: EmulatorServer, mode: str
) -> None:
    with pytest.raises(MissingKeyError):
        await run(make(api_key=None), call(), mode)
    assert emu.requests() == []


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused_is_connect_error_not_sent(
    make: Any, closed_port: int, mode: str
) -> None:
    p = make(base_url=f"http://127.0.0.1:{closed_port}/api/v1")
    with pytest.raises(ConnectError) as ei:
        await run(p, call(), mode)
    err = ei.value
    assert err.sent is False and err.retryable and not err.may_be_billed and err.not_executed
    assert str(closed_port) in err.message and OPENROUTER_KEY not in err.message
    assert isinstance(err.__cause__, aiohttp.ClientConnectorError | TransportError)
    assert isinstance(err.__cause__, p.transport.errors)


@pytest.mark.parametrize("mode", MODES)
async def test_read_timeout_applies_to_silence(make: Any, mode: str) -> None:
    c = call(read_timeout=0.3)
    with pytest.raises(AmbiguousError) as ei:
        await run(make("latency:3"), c, mode)
    assert "0.3 s" in ei.value.message and ei.value.may_be_billed


async def test_slow_drip_stream_in_small_pieces_is_reassembled(make: Any) -> None:
    events = [ev async for ev in make("slow-drip:0.001:4099").stream(call())]
    assert [type(e).__name__ for e in events][-2:] == ["UsageEvent", "FinishEvent"]
    assert len([e for e in events if isinstance(e, ImageEvent)]) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_multi_megabyte_answer_decodes(make: Any, mode: str) -> None:
    [img] = images_of(await run(make("oversize:6"), call(), mode))
    assert len(img.data) > 4_000_000 and img.data.startswith(b"\x89PNG")


@pytest.mark.parametrize("mode", MODES)
async def test_answer_over_the_size_cap_is_refused(make: Any, mode: str) -> None:
    p = make("oversize:3", max_response_bytes=1_000_000, max_line_bytes=1_000_000)
    with pytest.raises(InvalidResponseError) as ei:
        await run(p, call(), mode)
    assert "limit" in ei.value.message or "longer than" in ei.value.message
    # the provider is still usable afterwards (the oversized connection was dropped)
    p2 = make()
    assert len(images_of(await run(p2, call(), mode))) == 1


@pytest.mark.parametrize("transport_name", ["aiohttp"])  # an injected session: aiohttp only
async def test_cancelled_call_releases_its_connection(make: Any) -> None:
    session = aiohttp.ClientSession()
    try:
        p = make("latency:5", session=session)
        task = asyncio.create_task(p.generate(call()))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        connector = session.connector
        assert connector is not None
        # nothing is held: the half-finished connection was closed, not returned to the pool
        assert sum(len(v) for v in connector._conns.values()) == 0
        assert not connector._acquired
        ok = make(session=session)
        assert len((await asyncio.wait_for(ok.generate(call()), 10)).images) == 1
        await p.aclose()
        assert not session.closed  # an injected session belongs to its owner
    finally:
        await session.close()


async def test_list_models_discovers_image_models(make: Any, emu: EmulatorServer) -> None:
    models = await make().list_models()
    ids = {m.id for m in models}
    assert "google/gemini-2.5-flash-image" in ids
    assert all(m.discovered and set(m.provider_ids) == {"openrouter"} for m in models)
    assert any(not m.outputs_text for m in models)  # image-only models are told apart
    [req] = emu.requests()
    assert req["path"] == "/api/v1/models" and req["query"] == "output_modalities=image"


async def test_create_provider_uses_the_registry(emu: EmulatorServer) -> None:
    config = ProviderConfig(name="openrouter", api_key=OPENROUTER_KEY, base_url=emu.openrouter_url)
    p = create_provider(config)
    try:
        assert isinstance(p, OpenRouterProvider)
        assert isinstance((await p.generate(call())).images[0].width, int)
    finally:
        await p.aclose()


async def test_stream_events_are_in_protocol_order(make: Any) -> None:
    events = [ev async for ev in make().stream(call())]
    assert isinstance(events[0], TextDelta)
    assert isinstance(events[-1], FinishEvent)
    assert sum(isinstance(e, UsageEvent) for e in events) == 1
