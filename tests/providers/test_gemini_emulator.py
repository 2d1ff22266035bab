"""GeminiProvider (google-genai SDK) against the emulator: every scenario, plain and streamed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

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
from nanobanana.providers import GeminiProvider, create_provider
from nanobanana.providers.base import FinishEvent, ProviderCall, ProviderResponse
from nanobanana.providers.gemini_wire import build_request
from nanobanana.types import ImageEvent, TextDelta, UsageEvent

from .helpers import GEMINI_KEY, call, reference

MODES = ["plain", "stream"]


@pytest.fixture
async def make(emu: EmulatorServer) -> AsyncIterator[Any]:
    made: list[GeminiProvider] = []

    def factory(scenario: str | None = None, **kw: Any) -> GeminiProvider:
        headers = {"X-Emulator-Scenario": scenario} if scenario else {}
        config = ProviderConfig(
            name="google",
            api_key=kw.pop("api_key", GEMINI_KEY),
            base_url=kw.pop("base_url", emu.gemini_url),
            headers=headers,
        )
        p = GeminiProvider(config, **kw)
        made.append(p)
        return p

    yield factory
    for p in made:
        await p.aclose()


def gcall(model: str = "gemini-2.5-flash-image", **kw: Any) -> ProviderCall:
    return call(model, "google", **kw)


async def run(p: GeminiProvider, c: ProviderCall, mode: str) -> Any:
    if mode == "plain":
        return await p.generate(c)
    return [ev async for ev in p.stream(c)]


def images_of(result: Any) -> list[Any]:
    if isinstance(result, ProviderResponse):
        return result.images
    return [ev.image for ev in result if isinstance(ev, ImageEvent)]


def canonical(body: Any) -> Any:
    """The SDK's JSON in canonical form: camelCase ``mimeType``, base64 decoded to bytes."""
    if isinstance(body, dict):
        out = {}
        for k, v in body.items():
            key = "mimeType" if k == "mime_type" else k
            out[key] = b64decode(v) if k == "data" else canonical(v)
        return out
    if isinstance(body, list):
        return [canonical(v) for v in body]
    return body


@pytest.mark.parametrize("mode", MODES)
async def test_ok_image_usage_and_the_request_the_sdk_sent(
    make: Any, emu: EmulatorServer, mode: str
) -> None:
    refs = (reference(3, 2), reference(2, 2))
    c = gcall("gemini-3-pro-image", aspect_ratio="4:3", image_size="2K", images=refs, seed=11)
    result = await run(make("ok"), c, mode)
    [img] = images_of(result)
    assert (img.width, img.height) == c.model.expected_pixels("4:3", "2K")
    if mode == "plain":
        assert result.usage.cost_is_estimate and result.usage.cost > 0
        assert result.usage.image_tokens and result.request_id
        assert result.served_model and result.finish_reason == "STOP"
    else:
        assert isinstance(result[-1], FinishEvent) and isinstance(result[-2], UsageEvent)
        assert result[-2].usage.cost_is_estimate
    [req] = emu.requests()
    action = "streamGenerateContent" if mode == "stream" else "generateContent"
    assert req["path"] == f"/v1beta/models/gemini-3-pro-image:{action}"
    # The key travels in the x-goog-api-key header only, never in the URL.
    assert req["auth_header"] == "x-goog-api-key" and req["api_key"] == GEMINI_KEY
    assert not req["key_in_query"] and GEMINI_KEY not in req["query"] + req["path"]
    assert req["query"] == ("alt=sse" if mode == "stream" else "")
    # What the SDK sent is our pure build_request, up to proto-JSON spelling.
    assert canonical(req["body"]) == canonical(build_request(c))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("jpeg", lambda i: i.mime_type == "image/jpeg"),
        ("size:320x240", lambda i: (i.width, i.height) == (320, 240)),
        ("oversize:4", lambda i: len(i.data) > 2_500_000),
    ],
)
async def test_payload_variants_that_still_are_images(
    make: Any, mode: str, scenario: str, check: Any
) -> None:
    [img] = images_of(await run(make(scenario), gcall(), mode))
    assert check(img)


ERRORS = [
    (
        "quota:2.5",
        QuotaError,
        {"status": 429, "retry_after": 2.5, "per_day": False, "retryable": True},
    ),
    ("quota-day", QuotaError, {"per_day": True, "retryable": False}),
    ("payment", PaymentRequiredError, {"status": 403}),
    (
        "server-error:503",
        UpstreamUnavailable,
        {"status": 503, "retryable": True, "may_be_billed": False},
    ),
    ("server-error:500", UpstreamUnavailable, {"status": 500}),
    ("safety", BlockedError, {"reason": "IMAGE_SAFETY"}),
    ("blocked-prompt", BlockedError, {"reason": "PROHIBITED_CONTENT"}),
    ("text-only", NoImageError, {"reason": "STOP"}),
    ("truncated", AmbiguousError, {"may_be_billed": True, "retryable": False}),
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
        await run(make(scenario), gcall(), mode)
    for name, value in attrs.items():
        assert getattr(ei.value, name) == value, name
    assert ei.value.provider == "google"  # type: ignore[attr-defined]
    assert GEMINI_KEY not in str(ei.value)
    cause = ei.value.__cause__
    assert cause is None or GEMINI_KEY not in repr(vars(cause))


async def test_midstream_error_comes_after_the_text_already_streamed(make: Any) -> None:
    seen: list[Any] = []
    with pytest.raises(UpstreamUnavailable) as ei:
        async for ev in make("midstream-error:503").stream(gcall()):
            seen.append(ev)
    assert [type(e) for e in seen] == [TextDelta]
    assert ei.value.status == 503 and ei.value.may_be_billed  # it failed mid-generation


async def test_error_in_200_is_not_an_answer(make: Any) -> None:
    with pytest.raises(InvalidResponseError):
        await make("error-in-200").generate(gcall())
    with pytest.raises(UpstreamUnavailable) as ei:
        [ev async for ev in make("error-in-200").stream(gcall())]
    assert ei.value.may_be_billed


async def test_the_sdk_does_not_retry(make: Any, emu: EmulatorServer) -> None:
    p = make("flaky:1:503:gemini-no-retry")
    with pytest.raises(UpstreamUnavailable):
        await p.generate(gcall())
    assert len(emu.requests()) == 1  # one attempt: retries are the client's business
    assert len((await p.generate(gcall())).images) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_refused_key_is_authentication_error(make: Any, mode: str) -> None:
    with pytest.raises(AuthenticationError) as ei:
        await run(make(api_key="AIza-invalid-CANARY"), gcall(), mode)
    assert ei.value.status == 400 and ei.value.upstream_code == "API_KEY_INVALID"
    assert "AIza-invalid-CANARY" not in str(ei.value)


async def test_missing_key_is_a_usage_error(make: Any, emu: EmulatorServer) -> None:
    with pytest.raises(MissingKeyError):
        await make(api_key=None).generate(gcall())
    assert emu.requests() == []


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused_is_connect_error_not_sent(
    make: Any, closed_port: int, mode: str
) -> None:
    p = make(base_url=f"http://127.0.0.1:{closed_port}")
    for attempt in range(2):  # the second is timed: the SDK client exists by then
        started = time.monotonic()
        with pytest.raises(ConnectError) as ei:
            await run(p, gcall(), mode)
        if attempt:
            assert time.monotonic() - started < 1.0  # no hidden SDK retry (it sleeps 1-10 s)
    err = ei.value
    assert err.sent is False and err.retryable and err.not_executed
    assert GEMINI_KEY not in str(err)


@pytest.mark.parametrize("mode", MODES)
async def test_timeout_after_sending_is_ambiguous(make: Any, mode: str) -> None:
    with pytest.raises(AmbiguousError) as ei:
        await run(make("latency:3"), gcall(read_timeout=0.3), mode)
    assert ei.value.may_be_billed


async def test_list_models_keeps_image_models(make: Any, emu: EmulatorServer) -> None:
    models = await make().list_models()
    ids = {m.id for m in models}
    assert "gemini-2.5-flash-image" in ids
    assert all("image" in i for i in ids)
    assert all(m.provider_ids == {"google": m.id} and m.discovered for m in models)
    reqs = emu.requests()
    assert reqs and all(r["path"] == "/v1beta/models" and not r["key_in_query"] for r in reqs)


async def test_create_provider_uses_the_registry(emu: EmulatorServer) -> None:
    config = ProviderConfig(name="google", api_key=GEMINI_KEY, base_url=emu.gemini_url)
    p = create_provider(config)
    try:
        assert isinstance(p, GeminiProvider)
        assert len((await p.generate(gcall())).images) == 1
    finally:
        await p.aclose()
