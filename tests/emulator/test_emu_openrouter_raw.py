"""OpenRouter on the wire: envelope fields, validation, auth, discovery and every scenario."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from nanobanana.emulator import EmulatorServer
from nanobanana.emulator.recorder import digest

from ..support import image_size
from .helpers import CHAT, OR_HEADERS, chat_body, data_url_image, image_format, sse_data, sse_events


def post(http: httpx.Client, body: dict[str, Any], scenario: str | None = None) -> httpx.Response:
    headers = dict(OR_HEADERS)
    if scenario:
        headers["X-Emulator-Scenario"] = scenario
    return http.post(CHAT, json=body, headers=headers)


def first_image(response: httpx.Response) -> tuple[str, bytes]:
    return data_url_image(response.json()["choices"][0]["message"]["images"][0]["image_url"]["url"])


# -- success --------------------------------------------------------------------------------------


def test_completion_envelope(http: httpx.Client) -> None:
    r = post(http, chat_body())
    assert r.status_code == 200
    body = r.json()
    assert body["id"].startswith("gen-") and r.headers["x-generation-id"] == body["id"]
    assert body["object"] == "chat.completion" and body["model"] == "google/gemini-2.5-flash-image"
    assert "system_fingerprint" in body and body["system_fingerprint"] is None
    assert body["provider"] == "Google AI Studio" and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("stop", "STOP")
    image = choice["message"]["images"][0]
    assert image["type"] == "image_url"
    mime, raw = data_url_image(image["image_url"]["url"])
    assert mime == "image/png" and image_size(raw) == (1024, 1024)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["image_tokens"] == 1290
    assert usage["is_byok"] is False
    assert usage["cost"] == pytest.approx(0.0387, abs=0.0002)
    assert "x-ratelimit-limit" not in r.headers


def test_without_image_modality_the_answer_is_text(http: httpx.Client) -> None:
    body = chat_body()
    del body["modalities"]
    message = post(http, body).json()["choices"][0]["message"]
    assert message["content"] and "images" not in message


def test_image_only_models(http: httpx.Client) -> None:
    flux = "black-forest-labs/flux.2-pro"
    r = post(
        http, chat_body(model=flux, modalities=["image"], image_config={"aspect_ratio": "2:3"})
    )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == ""
    assert image_size(first_image(r)[1]) == (832, 1248)
    for modalities in (["image", "text"], ["text"]):
        r = post(http, chat_body(model=flux, modalities=modalities))
        assert r.status_code == 404
        assert r.json() == {
            "error": {
                "code": 404,
                "message": "No endpoints found that support "
                f"the requested output modalities: {', '.join(modalities)}",
            }
        }
    body = chat_body(model=flux)
    del body["modalities"]
    assert post(http, body).status_code == 404  # the default modality is text


def test_text_model_cannot_make_images(http: httpx.Client) -> None:
    r = post(http, chat_body(model="openai/gpt-4o-mini"))
    assert r.status_code == 404 and "output modalities: image, text" in r.json()["error"]["message"]
    assert post(http, chat_body(model="openai/gpt-4o-mini", modalities=["text"])).status_code == 200


def test_unknown_model(http: httpx.Client) -> None:
    r = post(http, chat_body(model="google/nope"))
    assert r.status_code == 400
    assert r.json()["error"] == {"code": 400, "message": "google/nope is not a valid model ID"}


@pytest.mark.parametrize(
    ("model", "config", "status", "size"),
    [
        ("google/gemini-2.5-flash-image", {"aspect_ratio": "7:3"}, 400, None),
        ("google/gemini-2.5-flash-image", {"image_size": "2K"}, 400, None),
        ("google/gemini-2.5-flash-image", {"aspect_ratio": "1:4"}, 400, None),
        ("google/gemini-3-pro-image-preview", {"image_size": "0.5K"}, 400, None),
        ("google/gemini-3.1-flash-image-preview", {"image_size": "0.5K"}, 200, (512, 512)),
        ("google/gemini-3.1-flash-image-preview", {"aspect_ratio": "4:1"}, 200, (2048, 512)),
        (
            "google/gemini-3-pro-image-preview",
            {"aspect_ratio": "5:4", "image_size": "2K"},
            200,
            (2304, 1792),
        ),
    ],
)
def test_image_config_validation(
    http: httpx.Client,
    model: str,
    config: dict[str, str],
    status: int,
    size: tuple[int, int] | None,
) -> None:
    r = post(http, chat_body(model=model, image_config=config))
    assert r.status_code == status, r.text
    if size:
        assert image_size(first_image(r)[1]) == size
    else:
        assert set(r.json()["error"]) >= {"code", "message"}


def test_reference_images(http: httpx.Client, emu: EmulatorServer) -> None:
    png = first_image(post(http, chat_body()))[1]
    good = "data:image/png;base64," + base64.b64encode(png).decode()
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "make it blue"},
        {"type": "image_url", "image_url": {"url": good}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    body = chat_body()
    body["messages"] = [{"role": "user", "content": content}]
    r = post(http, body)
    assert r.status_code == 200
    assert r.json()["usage"]["prompt_tokens"] > 2 * 258
    recorded = emu.requests()[-1]["body"]["messages"][0]["content"][1]["image_url"]["url"]
    assert recorded == f"data:image/png;base64,<{len(good) - 22} chars, sha256:{digest(good[22:])}>"
    for url in (
        "data:image/png;base64,@@@notbase64",
        "data:image/png;base64," + base64.b64encode(b"plain text, no image").decode(),
        "ftp://x/y.png",
    ):
        content[1]["image_url"]["url"] = url
        r = post(http, body)
        assert r.status_code == 400, url
        assert r.json()["error"]["metadata"]["error_type"] in (
            "invalid_image",
            "image_download_failed",
        )


def test_malformed_requests(http: httpx.Client) -> None:
    bad = http.post(CHAT, content=b"{not json", headers=OR_HEADERS)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 400
    assert post(http, {"model": "google/gemini-2.5-flash-image", "messages": []}).status_code == 400
    assert post(http, chat_body(modalities=["video"])).status_code == 400
    assert post(http, chat_body(stream="yes")).status_code == 400


# -- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "No auth credentials found"),
        ({"Authorization": "Basic abc"}, "Missing Authentication header"),
        ({"Authorization": "Bearer"}, "Missing Authentication header"),
        ({"Authorization": "Bearer sk-or-v1-invalid-CANARY"}, "User not found."),
    ],
)
def test_auth_failures(http: httpx.Client, headers: dict[str, str], message: str) -> None:
    r = http.post(CHAT, json=chat_body(), headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": {"code": 401, "message": message}}


# -- discovery ------------------------------------------------------------------------------------


def _ids(http: httpx.Client, query: str) -> set[str]:
    r = http.get("/api/v1/models" + query)
    assert r.status_code == 200
    body = r.json()
    assert body["total_count"] == len(body["data"])
    return {m["id"] for m in body["data"]}


def test_models_filter_by_output_modality(http: httpx.Client) -> None:
    default, image, every = (
        _ids(http, ""),
        _ids(http, "?output_modalities=image"),
        _ids(http, "?output_modalities=all"),
    )
    assert "openai/gpt-4o-mini" in default and "black-forest-labs/flux.2-pro" not in default
    assert "google/gemini-2.5-flash-image" in default  # it outputs text too
    assert "black-forest-labs/flux.2-pro" in image and "openai/gpt-4o-mini" not in image
    assert every == default | image == _ids(http, "?output_modalities=text,image")
    assert http.get("/api/v1/models?output_modalities=smell").status_code == 400
    model = http.get("/api/v1/models?output_modalities=image").json()["data"][0]
    assert set(model) >= {"id", "canonical_slug", "name", "created", "architecture", "pricing"}
    assert isinstance(model["pricing"]["prompt"], str)
    assert "image" in model["architecture"]["output_modalities"]


def test_single_model(http: httpx.Client) -> None:
    r = http.get("/api/v1/model/google/gemini-3-pro-image-preview")
    assert r.status_code == 200 and r.json()["data"]["id"] == "google/gemini-3-pro-image-preview"
    assert http.get("/api/v1/model/google/nope").status_code == 404


def test_generation_stats(http: httpx.Client) -> None:
    r = post(http, chat_body())
    gen_id = r.json()["id"]
    stats = http.get("/api/v1/generation", params={"id": gen_id}, headers=OR_HEADERS)
    assert stats.status_code == 200
    data = stats.json()["data"]
    assert data["id"] == gen_id and data["total_cost"] == r.json()["usage"]["cost"]
    assert data["native_tokens_completion_images"] == 1290 and data["streamed"] is False
    assert http.get("/api/v1/generation", params={"id": gen_id}).status_code == 401
    missing = http.get("/api/v1/generation", params={"id": "gen-0-none"}, headers=OR_HEADERS)
    assert missing.status_code == 404


def test_current_key_reports_usage_and_refuses_bad_keys(http: httpx.Client) -> None:
    """``GET /api/v1/key`` as documented: the key's limit and usage, 401 without a good key."""
    key = {"Authorization": f"Bearer sk-or-v1-{uuid.uuid4().hex}"}
    before = http.get("/api/v1/key", headers=key)
    assert before.status_code == 200
    data = before.json()["data"]
    assert data["usage"] == 0 and data["limit"] is None and data["limit_remaining"] is None
    assert data["is_free_tier"] is False and key["Authorization"][7:] not in data["label"]
    r = http.post(CHAT, json=chat_body(), headers=key)
    after = http.get("/api/v1/key", headers=key).json()["data"]
    assert after["usage"] == pytest.approx(r.json()["usage"]["cost"])
    assert http.get("/api/v1/key").status_code == 401
    refused = http.get("/api/v1/key", headers={"Authorization": "Bearer sk-or-invalid"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == 401


# -- streaming ------------------------------------------------------------------------------------


def test_stream_shape(http: httpx.Client) -> None:
    r = post(http, chat_body(stream=True, image_config={"aspect_ratio": "9:16"}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-generation-id"].startswith("gen-")
    events = sse_events(r.content)
    assert events[0] == b": OPENROUTER PROCESSING"
    data = sse_data(r.content)
    assert data[-1] == "[DONE]"
    text, image, last = data[0], data[1], data[-2]
    assert text["object"] == "chat.completion.chunk" and text["choices"][0]["delta"]["content"]
    delta = image["choices"][0]["delta"]
    assert delta["images"][0]["index"] == 0 and delta["images"][0]["type"] == "image_url"
    assert image_size(data_url_image(delta["images"][0]["image_url"]["url"])[1]) == (768, 1344)
    image_lines = [e for e in events if b'"images"' in e]
    assert len(image_lines) == 1 and b"\n" not in image_lines[0]  # one multi-MB line
    assert last["choices"][0]["finish_reason"] == "stop" and last["usage"]["cost"] > 0


# -- scenarios ------------------------------------------------------------------------------------


def test_quota(http: httpx.Client) -> None:
    r = post(http, chat_body(), "quota")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.headers["x-ratelimit-remaining"] == "0" and int(r.headers["x-ratelimit-reset"]) > 0
    assert r.json()["error"]["code"] == 429
    assert post(http, chat_body(), "quota:0.2").headers["retry-after"] == "0.2"


def test_quota_day(http: httpx.Client) -> None:
    r = post(http, chat_body(), "quota-day")
    assert r.status_code == 429 and "retry-after" not in r.headers
    error = r.json()["error"]
    assert "per day" in error["message"] and error["metadata"]["limit"] == "per-day"


def test_legacy_error(http: httpx.Client) -> None:
    r = post(http, chat_body(), "legacy-error:17")
    assert r.status_code == 429 and "retry-after" not in r.headers
    body = r.json()
    meta = body["error"]["metadata"]
    assert isinstance(meta["raw"], str) and json.loads(meta["raw"])["error"]["code"] == 429
    assert meta["retry_after_seconds"] == 17 and meta["headers"] == {"Retry-After": "17"}
    assert body["user_id"].startswith("user_")


def test_payment(http: httpx.Client) -> None:
    r = post(http, chat_body(), "payment")
    assert r.status_code == 402
    assert r.json()["error"]["message"].startswith("Insufficient credits")


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors(http: httpx.Client, code: int) -> None:
    r = post(http, chat_body(), f"server-error:{code}")
    assert r.status_code == code and r.json()["error"]["code"] == code
    assert ("retry-after" in r.headers) == (code == 503)


def test_server_error_default_is_500(http: httpx.Client) -> None:
    assert post(http, chat_body(), "server-error").status_code == 500


def test_safety(http: httpx.Client) -> None:
    r = post(http, chat_body(), "safety")
    choice = r.json()["choices"][0]
    assert r.status_code == 200
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (
        "content_filter",
        "IMAGE_SAFETY",
    )
    assert "images" not in choice["message"]


def test_blocked_prompt(http: httpx.Client) -> None:
    r = post(http, chat_body("something bad"), "blocked-prompt")
    assert r.status_code == 403
    meta = r.json()["error"]["metadata"]
    assert set(meta) == {"reasons", "flagged_input", "provider_name", "model_slug"}
    assert meta["flagged_input"] == "something bad"


def test_text_only(http: httpx.Client) -> None:
    r = post(http, chat_body(), "text-only")
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"]
    assert "images" not in choice["message"]


def test_midstream_error_streaming(http: httpx.Client) -> None:
    r = post(http, chat_body(stream=True), "midstream-error")
    assert r.status_code == 200
    data = sse_data(r.content)
    assert data[0]["choices"][0]["delta"]["content"] == "Generating your image"
    assert data[-1]["error"]["code"] == 502 and data[-1]["choices"][0]["finish_reason"] == "error"
    assert "[DONE]" not in data


@pytest.mark.parametrize("scenario", ["midstream-error:429", "error-in-200:429"])
def test_error_in_200(http: httpx.Client, scenario: str) -> None:
    r = post(http, chat_body(), scenario)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"error", "user_id"} and body["error"]["code"] == 429


def test_error_in_200_streaming_sends_the_error_first(http: httpx.Client) -> None:
    data = sse_data(post(http, chat_body(stream=True), "error-in-200").content)
    errors = [d for d in data if isinstance(d, dict) and "error" in d]
    assert len(errors) == 1 and not any(
        isinstance(d, dict) and d["choices"][0]["delta"].get("images") for d in data
    )


def test_flaky(http: httpx.Client, emu: EmulatorServer) -> None:
    statuses = [post(http, chat_body(), "flaky:2:429:or-a").status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    r = post(http, chat_body(), "flaky:2:429:or-b")  # another tag counts separately
    assert r.status_code == 429 and r.headers["retry-after"] == "0.05"
    assert post(http, chat_body(), "flaky:1:503:or-c").status_code == 503
    assert post(http, chat_body(), "flaky:1:503:or-c").status_code == 200
    emu.reset()
    assert post(http, chat_body(), "flaky:2:429:or-a").status_code == 429


def test_string_images(http: httpx.Client) -> None:
    images = post(http, chat_body(), "string-images").json()["choices"][0]["message"]["images"]
    assert isinstance(images[0], str)
    assert image_size(data_url_image(images[0])[1]) == (1024, 1024)


def test_size_and_jpeg(http: httpx.Client) -> None:
    mime, raw = first_image(post(http, chat_body(), "size:100x50"))
    assert mime == "image/png" and image_size(raw) == (100, 50)
    mime, raw = first_image(post(http, chat_body(image_config={"aspect_ratio": "3:2"}), "jpeg"))
    assert mime == "image/jpeg" and image_format(raw) == "JPEG" and image_size(raw) == (1248, 832)


def test_oversize(http: httpx.Client) -> None:
    url = post(http, chat_body(), "oversize:6").json()["choices"][0]["message"]["images"][0][
        "image_url"
    ]["url"]
    assert abs(len(url.partition(",")[2]) - 6_000_000) < 100
    assert image_size(data_url_image(url)[1]) == (1024, 1024)


def test_damaged_payloads(http: httpx.Client) -> None:
    url = post(http, chat_body(), "bad-base64").json()["choices"][0]["message"]["images"][0][
        "image_url"
    ]["url"]
    with pytest.raises(ValueError):
        data_url_image(url)
    mime, raw = first_image(post(http, chat_body(), "not-an-image"))
    assert mime == "image/png" and not raw.startswith(b"\x89PNG")
    _, raw = first_image(post(http, chat_body(), "truncated-image"))
    assert raw.startswith(b"\x89PNG")
    with pytest.raises(OSError):
        image_size(raw)


def test_latency(http: httpx.Client) -> None:
    start = time.monotonic()
    assert post(http, chat_body(), "latency:0.3").status_code == 200
    assert time.monotonic() - start >= 0.3


def test_stagger_spaces_requests_that_carry_the_same_spec(
    http: httpx.Client, emu: EmulatorServer
) -> None:
    emu.reset()
    waited = []
    for _ in range(3):
        start = time.monotonic()
        assert post(http, chat_body(), "stagger:0.15").status_code == 200
        waited.append(time.monotonic() - start)
    assert waited[0] < 0.15 <= waited[1] < 0.3 <= waited[2]
    start = time.monotonic()
    assert post(http, chat_body(), "stagger:0.1").status_code == 200  # its own count
    assert time.monotonic() - start < 0.1
    emu.reset()
    start = time.monotonic()
    assert post(http, chat_body(), "stagger:0.15").status_code == 200
    assert time.monotonic() - start < 0.15


def test_marker_in_prompt_selects_the_scenario(http: httpx.Client, emu: EmulatorServer) -> None:
    r = post(http, chat_body("a fox [emulator:quota:0.5,latency:0.01]"))
    assert r.status_code == 429 and r.headers["retry-after"] == "0.5"
    assert emu.requests()[-1]["scenario"] == ["quota:0.5", "latency:0.01"]
    # The marker is not drawn or echoed as part of the prompt.
    text = post(http, chat_body("a fox [emulator:ok]")).json()["choices"][0]["message"]["content"]
    assert "emulator" not in text


def test_bad_scenarios_are_400(http: httpx.Client) -> None:
    r = post(http, chat_body(), "nosuch")
    assert r.status_code == 400 and "unknown emulator scenario" in r.json()["error"]["message"]
    assert post(http, chat_body(), "quota,payment").status_code == 400
