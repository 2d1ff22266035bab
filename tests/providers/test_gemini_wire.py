"""Gemini's wire format from fixtures: requests, SDK answers, errors, stream chunks, models."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import httpx
import httpx2
import pytest
from aiohttp.client_reqrep import ConnectionKey
from google.genai import errors as genai_errors
from google.genai import types

from nanobanana.errors import (
    AmbiguousError,
    AuthenticationError,
    BlockedError,
    ConnectError,
    InvalidResponseError,
    NoImageError,
    PaymentRequiredError,
    QuotaError,
    UpstreamBadRequest,
    UpstreamUnavailable,
)
from nanobanana.imaging import b64decode
from nanobanana.providers.gemini_wire import (
    GeminiStreamState,
    build_request,
    end_of_stream,
    error_from_api,
    estimate_cost,
    parse_chunk,
    parse_models,
    parse_response,
    sdk_request,
)
from nanobanana.types import ImageEvent, TextDelta, UsageEvent

from .helpers import CATALOG, GEMINI_KEY, call, fixture_bytes, fixture_json, reference

FLASH = CATALOG.get("gemini-2.5-flash-image")


def answer(name: str) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate_json(fixture_bytes(f"gemini/{name}"))


def api_error(name: str, code: int | None = None) -> genai_errors.APIError:
    body = fixture_json(f"gemini/{name}")
    status = code or body["error"]["code"]
    cls = genai_errors.ClientError if status < 500 else genai_errors.ServerError
    return cls(status, body)


# ------------------------------------------------------------------------------ requests
def test_rest_request_text_first_inline_data_modalities_and_image_config() -> None:
    refs = (reference(3, 2),)
    body = build_request(
        call(provider="google", images=refs, aspect_ratio="16:9", image_size="2K", seed=7)
    )
    [content] = body["contents"]
    assert content["role"] == "user"
    assert content["parts"][0] == {"text": "a red fox in the snow"}
    inline = content["parts"][1]["inlineData"]
    assert inline["mimeType"] == "image/png" and b64decode(inline["data"]) == refs[0].data
    assert body["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "candidateCount": 1,
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
        "seed": 7,
    }


def test_rest_request_without_options_has_no_image_config_nor_seed() -> None:
    config = build_request(call(provider="google"))["generationConfig"]
    assert config == {"responseModalities": ["TEXT", "IMAGE"], "candidateCount": 1}


def test_image_only_model_asks_for_image_only() -> None:
    spec = FLASH.__class__(**{**FLASH.__dict__, "outputs_text": False})
    from nanobanana.providers.base import ProviderCall

    c = ProviderCall(model=spec, wire_model="x", prompt="p")
    assert build_request(c)["generationConfig"]["responseModalities"] == ["IMAGE"]
    assert sdk_request(c)[1].response_modalities == ["IMAGE"]


def test_sdk_request_matches_the_rest_request() -> None:
    refs = (reference(3, 2), reference(2, 2))
    c = call(provider="google", images=refs, aspect_ratio="3:2", image_size="1K", seed=3)
    contents, config = sdk_request(c, timeout_ms=1500)
    [content] = contents
    assert content.role == "user"
    assert content.parts[0].text == c.prompt  # text first
    assert [p.inline_data.data for p in content.parts[1:]] == [r.data for r in refs]
    assert [p.inline_data.mime_type for p in content.parts[1:]] == ["image/png", "image/png"]
    assert config.response_modalities == ["TEXT", "IMAGE"]
    assert config.candidate_count == 1 and config.seed == 3
    assert (config.image_config.aspect_ratio, config.image_config.image_size) == ("3:2", "1K")
    assert config.http_options.timeout == 1500
    assert sdk_request(call(provider="google"))[1].image_config is None


# ----------------------------------------------------------------------------- responses
def test_answer_skips_thoughts_and_keeps_text_image_usage_and_estimated_cost() -> None:
    resp = parse_response(answer("response_ok.json"), model=FLASH)
    [img] = resp.images  # the draft (thought) image is not returned
    assert (img.mime_type, img.width, img.height, img.index) == ("image/png", 4, 3, 0)
    assert resp.text == "Here is your image."
    assert resp.finish_reason == "STOP"
    assert resp.request_id == "resp-ok-1" and resp.served_model == "gemini-2.5-flash-image"
    u = resp.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.image_tokens) == (
        7,
        1300,
        1307,
        1290,
    )
    # 1290 image tokens at $30/M + 7 prompt tokens at $0.30/M + (10 text + 40 thought) at $2.50/M
    assert u.cost == pytest.approx((1290 * 30 + 7 * 0.30 + 50 * 2.50) / 1e6)
    assert u.cost_is_estimate


def test_real_type_comes_from_the_bytes() -> None:
    [img] = parse_response(answer("response_jpeg.json"), model=FLASH).images
    assert (img.mime_type, img.width, img.height) == ("image/jpeg", 6, 4)


def test_image_safety_is_blocked_with_the_finish_message() -> None:
    with pytest.raises(BlockedError) as ei:
        parse_response(answer("response_image_safety.json"), model=FLASH)
    assert ei.value.reason == "IMAGE_SAFETY" and ei.value.finish_reason == "IMAGE_SAFETY"
    assert "safety policy" in (ei.value.text or "")


@pytest.mark.parametrize(
    "reason",
    [
        "SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    ],
)
def test_every_blocking_finish_reason(reason: str) -> None:
    doc = fixture_json("gemini/response_image_safety.json")
    doc["candidates"][0]["finishReason"] = reason
    resp = types.GenerateContentResponse.model_validate_json(json.dumps(doc))
    with pytest.raises(BlockedError) as ei:
        parse_response(resp, model=FLASH)
    assert ei.value.reason == reason


def test_prompt_block_reason_is_blocked() -> None:
    with pytest.raises(BlockedError) as ei:
        parse_response(answer("response_prompt_blocked.json"), model=FLASH)
    assert ei.value.reason == "PROHIBITED_CONTENT"


@pytest.mark.parametrize(
    ("name", "reason", "text"),
    [
        ("response_no_image.json", "NO_IMAGE", None),
        ("response_text_only.json", "STOP", "A fox is a small omnivorous mammal."),
    ],
)
def test_no_image_outcomes(name: str, reason: str, text: str | None) -> None:
    with pytest.raises(NoImageError) as ei:
        parse_response(answer(name), model=FLASH)
    assert not isinstance(ei.value, BlockedError)
    assert ei.value.reason == reason and ei.value.text == text


def test_image_other_is_no_image() -> None:
    doc = fixture_json("gemini/response_no_image.json")
    doc["candidates"][0]["finishReason"] = "IMAGE_OTHER"
    with pytest.raises(NoImageError) as ei:
        parse_response(
            types.GenerateContentResponse.model_validate_json(json.dumps(doc)), model=FLASH
        )
    assert ei.value.reason == "IMAGE_OTHER" and not isinstance(ei.value, BlockedError)


@pytest.mark.parametrize("data", [b"not an image at all", b""], ids=["junk", "empty"])
def test_inline_data_that_is_not_an_image_is_invalid(data: bytes) -> None:
    resp = answer("response_jpeg.json")
    resp.candidates[0].content.parts[0].inline_data.data = data
    with pytest.raises(InvalidResponseError) as ei:
        parse_response(resp, model=FLASH)
    assert ei.value.request_id == "resp-jpeg-1" and ei.value.may_be_billed


def test_answer_without_candidates_is_invalid() -> None:
    with pytest.raises(InvalidResponseError):
        parse_response(types.GenerateContentResponse(), model=FLASH)


def test_cost_estimate_without_modality_details_uses_the_catalog_tokens() -> None:
    pro = CATALOG.get("gemini-3-pro-image")
    cost = estimate_cost(
        pro, prompt_tokens=10, output_tokens=None, image_tokens=None, image_size="4K", images=1
    )
    assert cost == pytest.approx((2000 * 120 + 10 * 2.0) / 1e6)
    discovered = FLASH.__class__(id="x", name="x", description="", provider_ids={"google": "x"})
    assert estimate_cost(discovered, prompt_tokens=1, output_tokens=1, image_tokens=1) is None


# -------------------------------------------------------------------------------- errors
def test_invalid_key_400_is_authentication() -> None:
    err = error_from_api(api_error("error_api_key_invalid.json"))
    assert isinstance(err, AuthenticationError)
    assert err.status == 400 and err.upstream_code == "API_KEY_INVALID"
    assert "GEMINI_API_KEY" in err.message and not err.retryable


def test_403_is_authentication_or_payment_when_billing() -> None:
    assert isinstance(error_from_api(api_error("error_403_permission.json")), AuthenticationError)
    err = error_from_api(api_error("error_403_billing.json"))
    assert isinstance(err, PaymentRequiredError) and err.upstream_code == "BILLING_DISABLED"


def test_429_per_minute_takes_the_fractional_retry_delay() -> None:
    err = error_from_api(api_error("error_429_per_minute.json"))
    assert isinstance(err, QuotaError) and not err.per_day and err.retryable
    assert err.retry_after == pytest.approx(45.837906927)
    assert err.upstream_code == "RESOURCE_EXHAUSTED"


def test_429_per_day_is_not_retryable() -> None:
    err = error_from_api(api_error("error_429_per_day.json"))
    assert isinstance(err, QuotaError) and err.per_day and not err.retryable
    assert err.retry_after == 58


def test_429_without_retry_info_reads_the_message() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded. Please retry in 7.5s.",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    err = error_from_api(genai_errors.ClientError(429, body))
    assert isinstance(err, QuotaError) and err.retry_after == 7.5


def test_5xx_is_unavailable_other_4xx_bad_request() -> None:
    err = error_from_api(api_error("error_503.json"))
    assert isinstance(err, UpstreamUnavailable) and err.retryable and err.status == 503
    assert "overloaded" in err.message
    bad = error_from_api(api_error("error_400_modalities.json"))
    assert isinstance(bad, UpstreamBadRequest) and not bad.retryable
    assert "response modalities" in bad.message


def test_error_wrapped_in_a_list_and_echoed_key_scrubbed() -> None:
    body = [
        {
            "error": {
                "code": 400,
                "message": f"key {GEMINI_KEY} not valid. API key not valid.",
                "status": "INVALID_ARGUMENT",
            }
        }
    ]
    err = error_from_api(genai_errors.ClientError(400, body), api_key=GEMINI_KEY)
    assert isinstance(err, AuthenticationError) and GEMINI_KEY not in str(err)


# -------------------------------------------------------------------------------- stream
def test_stream_chunks_give_text_image_usage_and_finish() -> None:
    state = GeminiStreamState(model=FLASH)
    events = []
    for chunk in fixture_json("gemini/stream_ok.json"):
        resp = types.GenerateContentResponse.model_validate_json(json.dumps(chunk))
        events.extend(parse_chunk(resp, state))
    events.extend(end_of_stream(state))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Here is ", "your fox."]
    [img] = [e.image for e in events if isinstance(e, ImageEvent)]
    assert (img.width, img.height) == (4, 3)
    [usage] = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usage.image_tokens == 1290 and usage.cost_is_estimate
    assert events[-1].type == "finish" and events[-1].request_id == "resp-stream-1"


def test_stream_without_finish_reason_is_ambiguous_and_blocks_raise_at_the_end() -> None:
    state = GeminiStreamState(model=FLASH)
    first = fixture_json("gemini/stream_ok.json")[0]
    parse_chunk(types.GenerateContentResponse.model_validate_json(json.dumps(first)), state)
    with pytest.raises(AmbiguousError):
        end_of_stream(state)
    state = GeminiStreamState(model=FLASH)
    assert parse_chunk(answer("response_prompt_blocked.json"), state) == []
    with pytest.raises(BlockedError):
        end_of_stream(state)
    state = GeminiStreamState(model=FLASH)
    assert parse_chunk(answer("response_text_only.json"), state)[0].type == "text"
    with pytest.raises(NoImageError):
        end_of_stream(state)


# -------------------------------------------------------------------------------- models
def test_models_keep_generate_content_image_models() -> None:
    raw = fixture_json("gemini/models.json")["models"]
    models = [
        types.Model(
            name=m["name"],
            display_name=m.get("displayName"),
            description=m.get("description"),
            supported_actions=m.get("supportedGenerationMethods"),
        )
        for m in raw
    ]
    found = {m.id: m for m in parse_models(models)}
    assert set(found) == {"gemini-2.5-flash-image", "gemini-3-pro-image-preview"}
    pro = found["gemini-3-pro-image-preview"]
    assert pro.provider_ids == {"google": "gemini-3-pro-image-preview"}
    assert pro.name == "Nano Banana Pro" and pro.discovered


# ------------------------------------------------------------------- transport exceptions
def _translate(exc: BaseException) -> Any:
    from nanobanana.providers.gemini import translate_error

    return translate_error(exc, url="http://127.0.0.1:9", timeout=5, api_key=GEMINI_KEY)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.PoolTimeout("no connection free"),
        httpx2.ConnectError("refused"),
        httpx2.ConnectTimeout("slow connect"),
        aiohttp.ClientConnectorError(
            ConnectionKey("127.0.0.1", 9, False, True, None, None, None), OSError(111, "refused")
        ),
    ],
    ids=[
        "httpx-connect",
        "httpx-connect-timeout",
        "httpx-pool-timeout",
        "httpx2-connect",
        "httpx2-connect-timeout",
        "aiohttp-connector",
    ],
)
def test_failures_before_sending_are_connect_errors(exc: BaseException) -> None:
    err = _translate(exc)
    assert isinstance(err, ConnectError) and err.sent is False and err.retryable


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed"),
        httpx.ReadError("reset"),
        httpx2.ReadTimeout("slow"),
        httpx2.RemoteProtocolError("peer closed"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("cut"),
        TimeoutError(),
        RuntimeError("something nobody foresaw"),
    ],
    ids=[
        "read-timeout",
        "remote-protocol",
        "read-error",
        "httpx2-read-timeout",
        "httpx2-remote-protocol",
        "disconnected",
        "payload",
        "timeout",
        "unforeseen",
    ],
)
def test_failures_after_sending_are_ambiguous(exc: BaseException) -> None:
    err = _translate(exc)
    assert isinstance(err, AmbiguousError) and err.may_be_billed and not err.retryable


def test_unreadable_answers_are_invalid() -> None:
    assert isinstance(_translate(ValueError("Failed to parse JSON")), InvalidResponseError)
    assert isinstance(_translate(genai_errors.UnknownApiResponseError("x")), InvalidResponseError)
    assert isinstance(_translate(httpx2.DecodingError("bad gzip")), InvalidResponseError)


def test_the_provider_imports_no_transport_the_sdk_may_not_bring() -> None:
    """google-genai 3.x depends on httpx2; httpx comes only with the test tools."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['httpx'] = None; sys.modules['httpx2'] = None\n"
        "from nanobanana.providers.gemini import translate_error\n"
        "err = translate_error(ConnectionResetError(104, 'reset'), url='u', timeout=1)\n"
        "print(type(err).__name__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "AmbiguousError"
