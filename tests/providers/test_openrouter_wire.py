"""OpenRouter's wire format from fixtures: requests, answers, errors, stream chunks, models."""

from __future__ import annotations

import base64

import orjson
import pytest

from nanobanana.errors import (
    AmbiguousError,
    AuthenticationError,
    BlockedError,
    InvalidResponseError,
    NoImageError,
    PaymentRequiredError,
    QuotaError,
    UpstreamBadRequest,
    UpstreamUnavailable,
)
from nanobanana.imaging import b64decode
from nanobanana.providers.openrouter_errors import error_from_payload, error_from_status
from nanobanana.providers.openrouter_wire import (
    StreamState,
    build_request,
    end_of_stream,
    parse_event,
    parse_models,
    parse_response,
)
from nanobanana.providers.sse import SSEDecoder
from nanobanana.types import ImageEvent, TextDelta, UsageEvent

from .helpers import OPENROUTER_KEY, call, fixture_bytes, noise_png, reference


# ------------------------------------------------------------------------------ requests
def test_request_text_part_first_then_one_data_url_per_reference() -> None:
    refs = (reference(3, 2), reference(5, 4))
    body = build_request(call(images=refs))
    assert body["model"] == "google/gemini-2.5-flash-image"
    assert body["stream"] is False
    [message] = body["messages"]
    assert message["role"] == "user"
    content = message["content"]
    assert content[0] == {"type": "text", "text": "a red fox in the snow"}
    assert [p["type"] for p in content[1:]] == ["image_url", "image_url"]
    for part, ref in zip(content[1:], refs, strict=True):
        url = part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert b64decode(url.partition(",")[2]) == ref.data


def test_request_modalities_follow_the_model() -> None:
    assert build_request(call("gemini-2.5-flash-image"))["modalities"] == ["image", "text"]
    flux = build_request(call("black-forest-labs/flux.2-pro"))
    assert flux["modalities"] == ["image"]  # image-only models refuse "text" with a 404
    assert flux["model"] == "black-forest-labs/flux.2-pro"


def test_request_image_config_and_seed_only_when_set() -> None:
    plain = build_request(call())
    assert "image_config" not in plain and "seed" not in plain
    assert build_request(call(aspect_ratio="16:9"))["image_config"] == {"aspect_ratio": "16:9"}
    full = build_request(
        call("gemini-3-pro-image", aspect_ratio="21:9", image_size="4K", seed=0), stream=True
    )
    assert full["image_config"] == {"aspect_ratio": "21:9", "image_size": "4K"}
    assert full["seed"] == 0  # zero is a seed, not "unset"
    assert full["stream"] is True
    assert full["model"] == "google/gemini-3-pro-image-preview"
    orjson.dumps(full)  # JSON-serialisable as is


# ----------------------------------------------------------------------------- responses
def test_response_with_image_objects_text_usage_and_cost() -> None:
    resp = parse_response(fixture_bytes("openrouter/response_object.json"))
    [img] = resp.images
    assert (img.mime_type, img.width, img.height, img.index) == ("image/png", 4, 3, 0)
    assert img.data.startswith(b"\x89PNG")
    assert resp.text == "Here you go"
    assert resp.finish_reason == "STOP"
    assert resp.request_id == "gen-1766560958-qN7G"
    assert resp.served_model == "google/gemini-2.5-flash-image"
    u = resp.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.image_tokens) == (
        9,
        1290,
        1299,
        1290,
    )
    assert u.cost == pytest.approx(0.0387) and u.cost_is_estimate is False


def test_generation_id_header_wins_over_the_body_id() -> None:
    body = fixture_bytes("openrouter/response_object.json")
    assert parse_response(body, request_id="gen-from-header").request_id == "gen-from-header"


def test_response_image_shapes_string_dict_and_object_and_real_type_from_bytes() -> None:
    resp = parse_response(fixture_bytes("openrouter/response_shapes.json"))
    got = [(i.mime_type, i.width, i.height, i.index) for i in resp.images]
    # The third is declared image/png but is a JPEG: the bytes decide.
    assert got == [("image/png", 4, 3, 0), ("image/png", 2, 5, 1), ("image/jpeg", 6, 4, 2)]
    assert resp.text == ""


def test_content_filter_without_image_is_blocked_with_native_reason_and_text() -> None:
    with pytest.raises(BlockedError) as ei:
        parse_response(fixture_bytes("openrouter/response_content_filter.json"))
    assert ei.value.reason == "IMAGE_SAFETY"
    assert ei.value.text == "I can't create that image."
    assert ei.value.provider == "openrouter"


@pytest.mark.parametrize("native", ["SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT"])
def test_native_safety_reasons_are_blocks_even_with_finish_stop(native: str) -> None:
    doc = orjson.loads(fixture_bytes("openrouter/response_text_only.json"))
    doc["choices"][0]["native_finish_reason"] = native
    with pytest.raises(BlockedError) as ei:
        parse_response(orjson.dumps(doc))
    assert ei.value.reason == native


def test_text_without_image_is_no_image_with_the_text() -> None:
    with pytest.raises(NoImageError) as ei:
        parse_response(fixture_bytes("openrouter/response_text_only.json"))
    assert ei.value.text == "Sure! Imagine a fox in the snow."
    assert not isinstance(ei.value, BlockedError)


def test_error_in_200_is_mapped_by_its_inner_code_with_the_raw_message() -> None:
    with pytest.raises(UpstreamUnavailable) as ei:
        parse_response(fixture_bytes("openrouter/error_in_200.json"))
    err = ei.value
    assert err.status == 502 and err.provider == "openrouter"
    assert "Internal error encountered." in err.message  # from metadata.raw, a JSON string
    assert "Google AI Studio" in err.message
    assert err.may_be_billed  # it failed after reaching a model


def test_error_in_200_quota_is_a_retryable_quota_error_not_billed() -> None:
    with pytest.raises(QuotaError) as ei:
        parse_response(fixture_bytes("openrouter/error_in_200_quota.json"))
    assert ei.value.retry_after == 12
    assert ei.value.retryable and not ei.value.may_be_billed
    assert ei.value.upstream_code == "rate_limit_exceeded"


def test_finish_reason_error_without_image_is_unavailable_and_maybe_billed() -> None:
    doc = orjson.loads(fixture_bytes("openrouter/response_text_only.json"))
    doc["choices"][0].update(finish_reason="error", native_finish_reason="MALFORMED_RESPONSE")
    with pytest.raises(UpstreamUnavailable) as ei:
        parse_response(orjson.dumps(doc))
    assert ei.value.may_be_billed and ei.value.upstream_code == "MALFORMED_RESPONSE"


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b"", b"[1,2]", b'{"id":"x","choices":[]}'],
    ids=["html", "empty", "array", "no-choices"],
)
def test_bodies_that_are_not_an_answer_are_invalid(body: bytes) -> None:
    with pytest.raises(InvalidResponseError) as ei:
        parse_response(body)
    assert ei.value.may_be_billed and not ei.value.retryable


def test_bad_image_payloads_are_invalid_responses_with_request_id() -> None:
    doc = orjson.loads(fixture_bytes("openrouter/response_object.json"))
    doc["choices"][0]["message"]["images"][0]["image_url"]["url"] = "data:image/png;base64,@@@"
    with pytest.raises(InvalidResponseError) as ei:
        parse_response(orjson.dumps(doc))
    assert ei.value.request_id == "gen-1766560958-qN7G"
    doc["choices"][0]["message"]["images"] = [{"type": "image_url", "image_url": {"nope": 1}}]
    with pytest.raises(InvalidResponseError):
        parse_response(orjson.dumps(doc))


def test_content_given_as_parts_or_as_a_data_url() -> None:
    b64 = base64.b64encode(noise_png(500)).decode()
    doc = orjson.loads(fixture_bytes("openrouter/response_text_only.json"))
    doc["choices"][0]["message"]["content"] = [
        {"type": "text", "text": "Look: "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64}},
    ]
    resp = parse_response(orjson.dumps(doc))
    assert resp.text == "Look: " and len(resp.images) == 1
    doc["choices"][0]["message"]["content"] = "data:image/png;base64," + b64
    assert len(parse_response(orjson.dumps(doc)).images) == 1


def test_a_multi_megabyte_image_decodes_to_the_exact_bytes() -> None:
    data = noise_png(3_000_000)
    doc = orjson.loads(fixture_bytes("openrouter/response_object.json"))
    doc["choices"][0]["message"]["images"][0]["image_url"]["url"] = (
        "data:image/png;base64," + base64.b64encode(data).decode()
    )
    [img] = parse_response(orjson.dumps(doc)).images
    assert img.data == data


# -------------------------------------------------------------------------------- errors
def status_error(status: int, name: str, **kw):  # type: ignore[no-untyped-def]
    return error_from_status(status, fixture_bytes(f"openrouter/{name}"), **kw)


def test_401_is_authentication_and_names_the_fix() -> None:
    err = status_error(401, "error_401.json")
    assert isinstance(err, AuthenticationError)
    assert err.status == 401 and not err.retryable and not err.may_be_billed
    assert "OPENROUTER_API_KEY" in err.message and "Missing Authentication header" in err.message


def test_402_is_payment_required_and_retryable_only_with_retry_after() -> None:
    err = status_error(402, "error_402.json")
    assert isinstance(err, PaymentRequiredError) and not err.retryable
    err = status_error(402, "error_402.json", headers={"Retry-After": "3"})
    assert isinstance(err, PaymentRequiredError) and err.retryable and err.retry_after == 3


def test_403_moderation_is_blocked_with_the_reasons() -> None:
    err = status_error(403, "error_403_moderation.json")
    assert isinstance(err, BlockedError)
    assert err.reason == "violence, self-harm"
    assert isinstance(
        error_from_status(403, b'{"error":{"code":403,"message":"x"}}'), AuthenticationError
    )


def test_content_policy_error_type_is_blocked_at_any_status() -> None:
    meta = b'"metadata":{"error_type":"content_policy_violation"}'
    body = b'{"error":{"code":400,"message":"no",' + meta + b"}}"
    err = error_from_status(400, body)
    assert isinstance(err, BlockedError) and err.reason == "content_policy_violation"


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_bad_requests(status: int) -> None:
    err = status_error(status, "error_404_modalities.json")
    assert isinstance(err, UpstreamBadRequest) and err.status == status and not err.retryable
    assert "output modalities" in err.message


def test_429_legacy_form_takes_retry_after_from_metadata_and_the_raw_message() -> None:
    err = status_error(429, "error_429_legacy.json")
    assert isinstance(err, QuotaError) and not err.per_day and err.retryable
    assert err.retry_after == 17
    assert "temporarily rate-limited upstream" in err.message and "Venice" in err.message


def test_retry_after_header_wins_and_http_date_or_ms_forms_are_read() -> None:
    assert status_error(429, "error_429_legacy.json", headers={"Retry-After": "4"}).retry_after == 4
    err = status_error(429, "error_429_legacy.json", headers={"retry-after-ms": "1500"})
    assert err.retry_after == pytest.approx(1.5)
    date = status_error(
        429, "error_401.json", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    assert date.retry_after == 0.0  # a past date: retry now
    only_headers = (
        b'{"error":{"code":429,"message":"x","metadata":{"headers":{"retry-after":"9"}}}}'
    )
    assert error_from_status(429, only_headers).retry_after == 9


def test_429_daily_limit_is_per_day_and_not_retryable() -> None:
    err = status_error(429, "error_429_daily.json")
    assert isinstance(err, QuotaError) and err.per_day and not err.retryable


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504, 524, 529])
def test_timeouts_and_server_errors_are_unavailable_and_retryable(status: int) -> None:
    err = status_error(status, "error_503.json", headers={"Retry-After": "2"})
    assert isinstance(err, UpstreamUnavailable) and err.retryable and err.retry_after == 2
    assert err.status == status and not err.may_be_billed


def test_non_json_error_body_keeps_an_excerpt() -> None:
    err = error_from_status(502, b"<html><body>Bad gateway</body></html>")
    assert isinstance(err, UpstreamUnavailable) and "Bad gateway" in err.message


def test_availability_form_of_2026() -> None:
    body = orjson.dumps(
        {
            "error": {
                "error_type": "capacity",
                "http_status": 429,
                "message": "busy",
                "availability": {
                    "code": "capacity_exhausted",
                    "retryable": True,
                    "retry_after": 30,
                },
            }
        }
    )
    err = error_from_payload(orjson.loads(body)["error"])
    assert isinstance(err, QuotaError) and err.retry_after == 30
    assert err.upstream_code == "capacity_exhausted"


def test_an_echoed_key_is_scrubbed_from_messages() -> None:
    body = orjson.dumps({"error": {"code": 401, "message": f"Key {OPENROUTER_KEY} is invalid"}})
    err = error_from_status(401, body, api_key=OPENROUTER_KEY)
    assert OPENROUTER_KEY not in err.message and OPENROUTER_KEY not in str(err)


# -------------------------------------------------------------------------------- stream
def run_stream(raw: bytes, chunk: int = 97) -> tuple[list, StreamState, BaseException | None]:  # type: ignore[type-arg]
    """Feed a recorded SSE stream through the decoder and parser, as the provider does."""
    state, events, dec = StreamState(request_id="gen-hdr"), [], SSEDecoder()
    try:
        for i in range(0, len(raw), chunk):
            for data in dec.feed(raw[i : i + chunk]):
                if data == b"[DONE]":
                    state.done = True
                    break
                events.extend(parse_event(data, state))
                if state.error is not None:
                    raise state.error
        events.append(end_of_stream(state))
    except Exception as exc:
        return events, state, exc
    return events, state, None


def test_stream_with_comments_text_image_usage_and_done() -> None:
    events, _, err = run_stream(fixture_bytes("openrouter/stream_ok.sse"))
    assert err is None
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["Here is", " your fox"]
    [image] = [e.image for e in events if isinstance(e, ImageEvent)]
    assert (image.width, image.height, image.index) == (4, 3, 0)
    [usage] = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usage.cost == pytest.approx(0.0387) and usage.image_tokens == 1290
    finish = events[-1]
    assert finish.type == "finish" and finish.finish_reason == "STOP"
    assert finish.request_id == "gen-hdr" and finish.served_model == "google/gemini-2.5-flash-image"


def test_stream_at_every_read_size_gives_the_same_events() -> None:
    raw = fixture_bytes("openrouter/stream_ok.sse")
    reference_kinds = [type(e).__name__ for e in run_stream(raw)[0]]
    for size in (1, 2, 3, 5, 64, 4096):
        assert [type(e).__name__ for e in run_stream(raw, size)[0]] == reference_kinds


def test_midstream_error_raises_after_the_text_already_yielded() -> None:
    events, _, err = run_stream(fixture_bytes("openrouter/stream_midstream_error.sse"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Working on it"]
    assert isinstance(err, UpstreamUnavailable) and err.status == 502
    assert err.may_be_billed and err.upstream_code == "provider_unavailable"


def test_midstream_finish_reason_error_without_error_object() -> None:
    raw = b'data: {"choices":[{"delta":{"content":"x"},"finish_reason":"error"}]}\n\n'
    events, _, err = run_stream(raw)
    assert [type(e).__name__ for e in events] == ["TextDelta"]
    assert isinstance(err, UpstreamUnavailable) and err.may_be_billed


def test_stream_blocked_at_the_end() -> None:
    events, _, err = run_stream(fixture_bytes("openrouter/stream_blocked.sse"))
    assert isinstance(err, BlockedError) and err.reason == "IMAGE_SAFETY"
    assert err.text == "I can't draw that."
    assert [e.text for e in events] == ["I can't draw that."]


def test_stream_that_stops_without_finish_or_done_is_ambiguous() -> None:
    raw = fixture_bytes("openrouter/stream_ok.sse")
    cut = raw.index(b'"finish_reason":"stop"')
    cut = raw.rindex(b"\n\n", 0, cut) + 2  # after the image chunk, before the finish chunk
    events, _, err = run_stream(raw[:cut])
    assert any(isinstance(e, ImageEvent) for e in events)
    assert isinstance(err, AmbiguousError) and err.may_be_billed


def test_stream_finished_without_done_is_still_complete() -> None:
    raw = fixture_bytes("openrouter/stream_ok.sse").replace(b"data: [DONE]\n\n", b"")
    events, _, err = run_stream(raw)
    assert err is None and events[-1].type == "finish"


def test_stream_event_that_is_not_json_is_invalid() -> None:
    with pytest.raises(InvalidResponseError):
        parse_event(b"{not json", StreamState())


# -------------------------------------------------------------------------------- models
def test_models_list_keeps_image_models_with_their_capabilities() -> None:
    models = {m.id: m for m in parse_models(fixture_bytes("openrouter/models.json"))}
    assert set(models) == {"google/gemini-2.5-flash-image", "black-forest-labs/flux.2-pro"}
    gem = models["google/gemini-2.5-flash-image"]
    assert gem.provider_ids == {"openrouter": "google/gemini-2.5-flash-image"}
    assert gem.outputs_text and gem.accepts_images and gem.supports_seed and gem.discovered
    assert gem.name.startswith("Google: Gemini 2.5 Flash Image")
    assert gem.pricing.input_per_mtok == pytest.approx(0.3)
    assert gem.pricing.output_image_per_mtok == pytest.approx(30.0)
    flux = models["black-forest-labs/flux.2-pro"]
    assert not flux.outputs_text and flux.modalities == ["image"]
    assert flux.pricing.output_image_per_mtok is None  # "-1": variable price


def test_models_list_that_is_not_a_list_is_invalid() -> None:
    with pytest.raises(InvalidResponseError):
        parse_models(b'{"error":"nope"}')


def test_key_status_is_read_from_get_key_and_drops_the_label() -> None:
    from nanobanana.providers.openrouter_wire import parse_key_status

    body = {
        "data": {
            "label": "sk-or-v1-abc...xyz",
            "limit": 100,
            "limit_remaining": 74.5,
            "limit_reset": "monthly",
            "usage": 25.5,
            "is_free_tier": False,
            "rate_limit": {"requests": -1, "interval": "10s"},
        }
    }
    status = parse_key_status(orjson.dumps(body))
    assert (status.limit, status.limit_remaining, status.usage) == (100.0, 74.5, 25.5)
    assert status.limit_reset == "monthly" and status.free_tier is False
    assert "sk-or" not in repr(status)
    unlimited = parse_key_status(b'{"data": {"limit": null, "usage": true}}')
    assert unlimited.limit is None and unlimited.usage is None  # a boolean is not a number
    for bad, why in ((b"<html>", "is not JSON"), (b'{"data": []}', "has no data")):
        with pytest.raises(InvalidResponseError, match=f"key information {why}"):
            parse_key_status(bad)
