"""Gemini on the wire: response fields, proto3-JSON leniency, auth, discovery and scenarios."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from nanobanana.emulator import EmulatorServer

from ..support import image_size
from .helpers import GEMINI_HEADERS, GEMINI_KEY, gemini_body, gen_path, sse_data, sse_events

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def post(
    http: httpx.Client,
    body: dict[str, Any],
    scenario: str | None = None,
    *,
    model: str = "gemini-2.5-flash-image",
    method: str = "generateContent",
    version: str = "v1beta",
    query: str = "",
) -> httpx.Response:
    headers = dict(GEMINI_HEADERS)
    if scenario:
        headers["X-Emulator-Scenario"] = scenario
    path = gen_path(model, method).replace("/v1beta/", f"/{version}/") + query
    return http.post(path, json=body, headers=headers)


def parts(response: httpx.Response) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = response.json()["candidates"][0]["content"]["parts"]
    return parts


def inline_image(part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["inlineData"]["data"], validate=True)


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    return error


@pytest.fixture(scope="module")
def png_bytes(emulator: EmulatorServer) -> bytes:
    r = httpx.post(emulator.url + gen_path(), json=gemini_body(), headers=GEMINI_HEADERS)
    return inline_image(r.json()["candidates"][0]["content"]["parts"][1])


# -- success --------------------------------------------------------------------------------------


def test_response_fields(http: httpx.Client) -> None:
    r = post(http, gemini_body())
    assert r.status_code == 200
    body = r.json()
    cand = body["candidates"][0]
    assert (
        cand["finishReason"] == "STOP" and cand["index"] == 0 and cand["content"]["role"] == "model"
    )
    text, image = cand["content"]["parts"]
    assert "red fox" in text["text"]
    assert image["inlineData"]["mimeType"] == "image/png"
    assert image_size(inline_image(image)) == (1024, 1024)
    usage = body["usageMetadata"]
    assert {"modality": "IMAGE", "tokenCount": 1290} in usage["candidatesTokensDetails"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert body["modelVersion"] == "gemini-2.5-flash-image" and body["responseId"]


def test_v1_and_query_key(http: httpx.Client, emu: EmulatorServer) -> None:
    assert post(http, gemini_body(), version="v1").status_code == 200
    r = http.post(gen_path().replace("v1beta", "v1") + f"?key={GEMINI_KEY}", json=gemini_body())
    assert r.status_code == 200
    seen = emu.requests()[-1]
    assert seen["key_in_query"] is True and seen["auth_header"] is None
    assert seen["api_key"] == GEMINI_KEY


def test_preview_alias_and_4k(http: httpx.Client) -> None:
    assert post(http, gemini_body(), model="gemini-2.5-flash-image-preview").json()[
        "modelVersion"
    ] == ("gemini-2.5-flash-image-preview")
    config = {"imageConfig": {"aspectRatio": "1:1", "imageSize": "4K"}}
    r = post(http, gemini_body(**config), model="gemini-3-pro-image")
    raw = inline_image(parts(r)[1])
    assert image_size(raw) == (4096, 4096) and 10_000_000 < len(raw) < 25_000_000
    assert r.json()["usageMetadata"]["candidatesTokensDetails"][0]["tokenCount"] == 2000


@pytest.mark.parametrize(
    ("modalities", "kinds"),
    [
        (["image", "Text"], ["text", "inlineData"]),
        (["IMAGE"], ["inlineData"]),
        (["Image"], ["inlineData"]),
        (["TEXT"], ["text"]),
    ],
)
def test_response_modalities_in_any_case(
    http: httpx.Client, modalities: list[str], kinds: list[str]
) -> None:
    r = post(http, gemini_body(responseModalities=modalities))
    assert r.status_code == 200
    assert [next(iter(p)) for p in parts(r)] == kinds


def test_snake_case_fields_and_lenient_base64(http: httpx.Client, png_bytes: bytes) -> None:
    urlsafe = base64.urlsafe_b64encode(png_bytes).decode().rstrip("=")
    body = {
        "contents": [
            {
                "parts": [
                    {"text": "make it blue"},
                    {"inline_data": {"mime_type": "image/png", "data": urlsafe}},
                    {
                        "inlineData": {
                            "mimeType": "image/png",
                            "data": base64.b64encode(png_bytes).decode(),
                        }
                    },
                ]
            }
        ],
        "generation_config": {
            "response_modalities": ["IMAGE"],
            "image_config": {"aspect_ratio": "4:3"},
        },
    }
    r = post(http, body)
    assert r.status_code == 200, r.text
    assert image_size(inline_image(parts(r)[0])) == (1184, 864)
    assert r.json()["usageMetadata"]["promptTokensDetails"][1] == {
        "modality": "IMAGE",
        "tokenCount": 516,
    }


# -- validation -----------------------------------------------------------------------------------


def _inline(data: str, mime: str = "image/png") -> dict[str, Any]:
    return {
        "contents": [{"parts": [{"text": "x"}, {"inlineData": {"mimeType": mime, "data": data}}]}]
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            gemini_body(candidateCount=2),
            "Multiple candidates is not enabled for models/gemini-2.5-flash-image",
        ),
        (
            gemini_body(responseModalities=["AUDIO"]),
            "Model does not support the requested response modalities: audio",
        ),
        (gemini_body(responseModalities=["PICTURE"]), "Invalid value at"),
        (gemini_body(imageConfig={"aspectRatio": "7:3"}), "Unsupported aspect ratio"),
        (gemini_body(imageConfig={"imageSize": "2K"}), "Unsupported image size"),
        (gemini_body(imageConfig={"imageSize": "1k"}), "Unsupported image size"),
        (gemini_body(imageConfig={"aspectRatio": "1:8"}), "Unsupported aspect ratio"),
        (gemini_body(temprature=0.5), 'Unknown name "temprature"'),
        ({"contents": [], "bogus": 1}, 'Unknown name "bogus"'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"parts": [{}]}]}, "required oneof field"),
        (_inline("!!!not-base64!!!"), "Base64 decoding failed"),
        (_inline(base64.b64encode(b"hello").decode()), "Unable to process input image"),
        (_inline(base64.b64encode(PNG_MAGIC).decode(), "text/plain"), "Unsupported MIME type"),
    ],
)
def test_invalid_argument(http: httpx.Client, body: dict[str, Any], message: str) -> None:
    r = post(http, body)
    assert r.status_code == 400, r.text
    error = error_of(r)
    assert error["status"] == "INVALID_ARGUMENT" and message in error["message"]


def test_text_model_refuses_image_modality(http: httpx.Client) -> None:
    r = post(http, gemini_body(responseModalities=["TEXT", "IMAGE"]), model="gemini-2.5-flash")
    assert r.status_code == 400 and "response modalities: text,image" in error_of(r)["message"]
    text = post(http, gemini_body(), model="gemini-2.5-flash")
    assert [next(iter(p)) for p in parts(text)] == ["text"]


def test_extended_ratios_and_half_k_on_3_1_flash(http: httpx.Client) -> None:
    config = {"imageConfig": {"aspectRatio": "1:8", "imageSize": "0.5K"}}
    r = post(http, gemini_body(**config), model="gemini-3.1-flash-image")
    assert image_size(inline_image(parts(r)[1])) == (192, 1536)


def test_unknown_model_and_method(http: httpx.Client) -> None:
    r = post(http, gemini_body(), model="gemini-9-ultra")
    assert r.status_code == 404 and error_of(r)["status"] == "NOT_FOUND"
    assert "models/gemini-9-ultra is not found for API version v1beta" in error_of(r)["message"]
    assert post(http, gemini_body(), method="countEverything").status_code == 404


# -- auth -----------------------------------------------------------------------------------------


def test_missing_key_is_403(http: httpx.Client) -> None:
    r = http.post(gen_path(), json=gemini_body())
    assert r.status_code == 403 and error_of(r)["status"] == "PERMISSION_DENIED"


def test_invalid_key_is_400_api_key_invalid(http: httpx.Client) -> None:
    r = http.post(gen_path(), json=gemini_body(), headers={"x-goog-api-key": "AIza-invalid"})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": ERROR_INFO,
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        }
    }


# -- discovery ------------------------------------------------------------------------------------


def test_models_pagination(http: httpx.Client) -> None:
    names, token, pages = [], None, 0
    while True:
        params = {"pageSize": "3", **({"pageToken": token} if token else {})}
        r = http.get("/v1beta/models", params=params, headers=GEMINI_HEADERS)
        assert r.status_code == 200
        body = r.json()
        names += [m["name"] for m in body["models"]]
        pages += 1
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages == 3 and len(names) == len(set(names)) == 8
    assert "models/gemini-2.5-flash-image-preview" in names
    model = http.get("/v1beta/models?pageSize=1", headers=GEMINI_HEADERS).json()["models"][0]
    assert set(model) >= {"name", "displayName", "inputTokenLimit", "supportedGenerationMethods"}
    assert http.get("/v1beta/models?pageToken=%%%", headers=GEMINI_HEADERS).status_code == 400
    assert http.get("/v1beta/models").status_code == 403


def test_get_model(http: httpx.Client) -> None:
    r = http.get("/v1/models/gemini-3-pro-image-preview", headers=GEMINI_HEADERS)
    assert r.status_code == 200 and r.json()["name"] == "models/gemini-3-pro-image-preview"
    missing = http.get("/v1beta/models/nope", headers=GEMINI_HEADERS)
    assert missing.status_code == 404 and error_of(missing)["status"] == "NOT_FOUND"


# -- streaming ------------------------------------------------------------------------------------


def test_sse_stream(http: httpx.Client) -> None:
    r = post(http, gemini_body(), method="streamGenerateContent", query="?alt=sse")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert b"[DONE]" not in r.content
    events = sse_data(r.content)
    assert len(events) == len(sse_events(r.content)) == 2
    first, last = events
    assert "text" in first["candidates"][0]["content"]["parts"][0]
    assert "finishReason" not in first["candidates"][0]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert "candidatesTokensDetails" in last["usageMetadata"]
    image = base64.b64decode(last["candidates"][0]["content"]["parts"][0]["inlineData"]["data"])
    assert image_size(image) == (1024, 1024)


def test_stream_without_sse_is_a_json_array(http: httpx.Client) -> None:
    r = post(http, gemini_body(), method="streamGenerateContent")
    body = r.json()
    assert isinstance(body, list) and len(body) == 2
    assert body[1]["candidates"][0]["finishReason"] == "STOP"


# -- scenarios ------------------------------------------------------------------------------------


def _detail(error: dict[str, Any], suffix: str) -> dict[str, Any]:
    found = [d for d in error.get("details", []) if d["@type"].endswith(suffix)]
    assert len(found) <= 1
    return found[0] if found else {}


def test_quota(http: httpx.Client) -> None:
    r = post(http, gemini_body(), "quota:0.2")
    assert r.status_code == 429 and "retry-after" not in r.headers
    error = error_of(r)
    assert error["status"] == "RESOURCE_EXHAUSTED" and "Please retry in 0.2s." in error["message"]
    assert _detail(error, "RetryInfo")["retryDelay"] == "0.2s"
    violation = _detail(error, "QuotaFailure")["violations"][0]
    assert "PerMinute" in violation["quotaId"]
    assert violation["quotaDimensions"]["model"] == "gemini-2.5-flash-image"
    assert _detail(error_of(post(http, gemini_body(), "quota")), "RetryInfo")["retryDelay"] == "1s"


def test_quota_day(http: httpx.Client) -> None:
    error = error_of(post(http, gemini_body(), "quota-day"))
    assert "PerDay" in _detail(error, "QuotaFailure")["violations"][0]["quotaId"]
    assert _detail(error, "RetryInfo") == {} and "retry in" not in error["message"]


def test_payment(http: httpx.Client) -> None:
    error = error_of(post(http, gemini_body(), "payment"))
    assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED"
    assert (
        "billing" in error["message"]
        and _detail(error, "ErrorInfo")["reason"] == "BILLING_DISABLED"
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [(500, "INTERNAL"), (502, "UNAVAILABLE"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")],
)
def test_server_errors(http: httpx.Client, code: int, status: str) -> None:
    r = post(http, gemini_body(), f"server-error:{code}")
    assert r.status_code == code and error_of(r)["status"] == status


def test_safety(http: httpx.Client) -> None:
    r = post(http, gemini_body(), "safety")
    cand = r.json()["candidates"][0]
    assert r.status_code == 200 and cand["finishReason"] == "IMAGE_SAFETY"
    assert cand["content"] == {"role": "model"} and cand["finishMessage"]


def test_blocked_prompt(http: httpx.Client) -> None:
    body = post(http, gemini_body(), "blocked-prompt").json()
    assert body["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert "candidates" not in body


def test_text_only(http: httpx.Client) -> None:
    r = post(http, gemini_body(), "text-only")
    assert [next(iter(p)) for p in parts(r)] == ["text"]
    assert r.json()["candidates"][0]["finishReason"] == "STOP"


def test_midstream_error(http: httpx.Client) -> None:
    r = post(
        http, gemini_body(), "midstream-error", method="streamGenerateContent", query="?alt=sse"
    )
    events = sse_data(r.content)
    assert r.status_code == 200 and len(events) == 2
    assert events[0]["candidates"][0]["content"]["parts"][0]["text"]
    assert events[1]["error"]["code"] == 500 and events[1]["error"]["status"] == "INTERNAL"
    plain = post(http, gemini_body(), "midstream-error")
    assert plain.status_code == 200 and plain.json()["error"]["code"] == 500


def test_error_in_200(http: httpx.Client) -> None:
    r = post(http, gemini_body(), "error-in-200:503")
    assert r.status_code == 200 and r.json()["error"]["status"] == "UNAVAILABLE"
    stream = post(
        http, gemini_body(), "error-in-200", method="streamGenerateContent", query="?alt=sse"
    )
    assert [list(e) for e in sse_data(stream.content)] == [["error"]]


def test_flaky(http: httpx.Client) -> None:
    first = post(http, gemini_body(), "flaky:1:429:gem")
    assert first.status_code == 429
    assert _detail(error_of(first), "RetryInfo")["retryDelay"] == "0.05s"
    assert post(http, gemini_body(), "flaky:1:429:gem").status_code == 200


def test_payload_modifiers(http: httpx.Client) -> None:
    raw = inline_image(parts(post(http, gemini_body(), "size:64x32,string-images"))[1])
    assert image_size(raw) == (64, 32)
    jpeg = parts(post(http, gemini_body(), "jpeg"))[1]["inlineData"]
    assert jpeg["mimeType"] == "image/jpeg" and base64.b64decode(jpeg["data"]).startswith(
        b"\xff\xd8"
    )
    junk = parts(post(http, gemini_body(), "bad-base64"))[1]["inlineData"]["data"]
    with pytest.raises(ValueError):
        base64.b64decode(junk, validate=True)
    truncated = inline_image(parts(post(http, gemini_body(), "truncated-image"))[1])
    with pytest.raises(OSError):
        image_size(truncated)
    assert not inline_image(parts(post(http, gemini_body(), "not-an-image"))[1]).startswith(
        b"\x89PNG"
    )
