"""The pure mapping code of the compatibility layer, from fixtures, without a server.

The answers are read back with nanobanana's own OpenRouter reader (``providers/openrouter_wire``,
tested against recorded OpenRouter payloads) and compared key by key with the OpenRouter
fixtures, so writer and reader agree on the wire format the reference documents.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import orjson
import pybase64
import pytest
from openai.types import ImagesResponse as OpenAIImagesResponse

from nanobanana.catalog import Catalog
from nanobanana.errors import (
    BlockedError,
    NoImageError,
    QuotaError,
    UnknownModelError,
    UpstreamError,
    UpstreamUnavailable,
)
from nanobanana.files import Pieces
from nanobanana.providers import openrouter_wire
from nanobanana.providers.sse import SSEDecoder
from nanobanana.server.compat import (
    errors,
    models,
    openai_images,
    openrouter_images,
    openrouter_response,
    splice,
)
from nanobanana.server.compat.errors import Problem, ProblemError
from nanobanana.server.compat.openrouter_request import ChatRequest, parse_chat
from nanobanana.server.compat.outcome import ImagePayload, JobOutcome
from nanobanana.server.compat.splice import Splicer

from ..support import png_bytes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openrouter"
CATALOG = Catalog()
USAGE = {
    "input_tokens": 9,
    "output_tokens": 1290,
    "total_tokens": 1299,
    "image_tokens": 1290,
    "cost": 0.0387,
    "cost_is_estimate": False,
}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def outcome(**over: Any) -> JobOutcome:
    values: dict[str, Any] = {
        "id": "0123456789abcdef0123456789abcdef",
        "created": 1766560958,
        "status": "succeeded",
        "provider": "google",
        "model": "google/gemini-2.5-flash-image",
        "text": "Here you go",
        "usage": USAGE,
        "images": (ImagePayload(png_bytes(40, 30), "image/png", 40, 30, 0, "/api/images/abc"),),
    }
    values.update(over)
    return JobOutcome(**values)


def shape(value: Any) -> Any:
    """The keys of a JSON document, recursively (list items: the first one)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


# ---------------------------------------------------------------------------- splicing
def test_splicing_writes_what_an_encoder_would() -> None:
    blob = bytes(range(256)) * 50
    splicer = Splicer()
    doc = {
        "a": [{"url": splicer.data_url("image/png", blob)}, {"b64": splicer.b64(b"xyz")}],
        "text": 'quotes " and unicode é',
    }
    out = splicer.dumps(doc)
    expected = {
        "a": [
            {"url": "data:image/png;base64," + pybase64.b64encode(blob).decode()},
            {"b64": pybase64.b64encode(b"xyz").decode()},
        ],
        "text": 'quotes " and unicode é',
    }
    assert json.loads(out) == expected
    assert out == orjson.dumps(expected)


def test_large_bodies_come_in_bounded_pieces_with_the_same_bytes() -> None:
    """A 4K-sized payload is base64ed slice by slice as it is sent: no piece is the whole
    20 MB, the pieces join up to exactly the encoder's JSON, and the length is known first."""
    rng = random.Random(7)
    big = rng.randbytes(8 * 1024 * 1024)  # larger than a slice
    odd = rng.randbytes(splice.SLICE_BYTES + 1)  # a slice boundary inside a payload
    # An image with its provenance inserted: pieces whose lengths are not multiples of 3.
    tagged = Pieces(odd[:34], b"provenance chunk", memoryview(odd)[34:])
    splicer = Splicer()
    doc = {"images": [splicer.b64(big), splicer.data_url("image/png", tagged)], "n": 2}
    body = splicer.render(doc)
    pieces = list(body.pieces())
    assert len(pieces) > 3
    assert max(len(p) for p in pieces) <= 4 * splice.SLICE_BYTES // 3
    joined = b"".join(pieces)
    expected = {
        "images": [
            pybase64.b64encode(big).decode(),
            "data:image/png;base64,"
            + pybase64.b64encode(odd[:34] + b"provenance chunk" + odd[34:]).decode(),
        ],
        "n": 2,
    }
    assert joined == orjson.dumps(expected)
    assert body.length == len(joined)
    # A small body is one piece.
    small = Splicer()
    one = small.render({"x": small.b64(b"abc"), "y": small.b64(Pieces(b"a", b"bcd"))})
    assert list(one.pieces()) == [orjson.dumps({"x": "YWJj", "y": "YWJjZA=="})]
    # A 1K image's answer: its base64 is sent as made, between the JSON around it (joined with
    # the base64 of the PNG head that carries the provenance), never copied into one body.
    image = rng.randbytes(1_300_000)
    one_k = Splicer()
    doc = {"id": "j", "images": [one_k.b64(Pieces(image[:40], b"meta", image[40:]))], "n": 1}
    sent = list(one_k.render(doc).pieces())
    assert [len(p) < splice.SMALL_PIECE_BYTES for p in sent] == [True, False, True]
    assert b"".join(sent) == orjson.dumps(
        {**doc, "images": [pybase64.b64encode(image[:40] + b"meta" + image[40:]).decode()]}
    )


async def test_spliced_response_sends_every_piece_with_its_length() -> None:
    splicer = Splicer()
    payload = random.Random(3).randbytes(8 * 1024 * 1024)
    body = splicer.render({"b64": splicer.b64(payload)})
    response = splice.SplicedResponse(body, 201, {"X-Job": "j1"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await response({"type": "http"}, None, send)  # type: ignore[arg-type]
    start, *chunks = sent
    headers = dict(start["headers"])
    assert start["status"] == 201 and headers[b"x-job"] == b"j1"
    assert headers[b"content-type"] == b"application/json"
    data = b"".join(m["body"] for m in chunks)
    assert int(headers[b"content-length"]) == len(data) == body.length
    assert [m["more_body"] for m in chunks] == [True] * (len(chunks) - 1) + [False]
    assert orjson.loads(data) == {"b64": pybase64.b64encode(payload).decode()}


def test_splicing_refuses_a_lost_placeholder() -> None:
    splicer = Splicer()
    splicer.b64(b"abc")
    with pytest.raises(ValueError, match="missing"):
        splicer.dumps({"nothing": "here"})


# ------------------------------------------------------------------------ chat requests
def chat(**body: Any) -> ChatRequest:
    body.setdefault("messages", [{"role": "user", "content": "a fox"}])
    return ChatRequest.model_validate(body)


def test_prompt_is_the_last_user_text_and_its_images_are_references() -> None:
    ref = "data:image/png;base64," + pybase64.b64encode(png_bytes()).decode()
    call = parse_chat(
        chat(
            model="google/gemini-2.5-flash-image",
            messages=[
                {"role": "system", "content": "You draw."},
                {"role": "user", "content": "first try"},
                {"role": "assistant", "content": "ok", "images": []},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "make the sky"},
                        {"type": "image_url", "image_url": {"url": ref, "detail": "high"}},
                        {"type": "text", "text": "purple"},
                    ],
                },
            ],
            modalities=["image", "text"],
            image_config={"aspect_ratio": "16:9", "image_size": "2K", "style": "ignored"},
            provider={"order": ["google-vertex"]},
            seed=7,
            temperature=0.3,
            usage={"include": True},
        )
    )
    assert call.prompt == "make the sky\npurple"
    assert call.images == (ref,)
    assert (call.aspect_ratio, call.image_size, call.seed) == ("16:9", "2K", 7)
    assert call.provider is None and call.stream is False
    assert parse_chat(chat(provider="google", stream=True)).provider == "google"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"modalities": ["text"]}, 404, "modalities"),
        ({"messages": [{"role": "system", "content": "x"}]}, 400, "prompt"),
        ({"messages": [{"role": "user", "content": "   "}]}, 400, "prompt"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "edit"},
                            {"type": "image_url", "image_url": {"url": "http://169.254.169.254/x"}},
                        ],
                    }
                ]
            },
            400,
            "images",
        ),
    ],
)
def test_requests_that_cannot_be_a_generation(
    body: dict[str, Any], status: int, field: str
) -> None:
    with pytest.raises(ProblemError) as caught:
        parse_chat(chat(**body))
    assert caught.value.problem.status == status
    assert caught.value.problem.field_name == field


def test_reasoning_effort_becomes_the_thinking_level() -> None:
    assert parse_chat(chat()).thinking is None
    assert parse_chat(chat(reasoning={"enabled": True})).thinking is None
    for effort, level in (("minimal", "minimal"), ("low", "low"), ("xhigh", "high")):
        assert parse_chat(chat(reasoning={"effort": effort, "exclude": True})).thinking == level
    with pytest.raises(ProblemError) as caught:
        parse_chat(chat(reasoning={"effort": "none"}))
    assert caught.value.problem.status == 400
    assert caught.value.problem.field_name == "thinking"


def test_the_web_plugin_is_google_search() -> None:
    assert parse_chat(chat()).google_search is False
    assert parse_chat(chat(plugins=[{"id": "web"}])).google_search is True
    assert parse_chat(chat(plugins=[{"id": "web", "engine": "native"}])).google_search is True
    assert parse_chat(chat(plugins=[{"id": "response-healing"}])).google_search is False
    with pytest.raises(ProblemError) as caught:
        parse_chat(chat(plugins=[{"id": "web", "engine": "exa"}]))
    assert caught.value.problem.field_name == "google_search"
    assert "Google Search only" in caught.value.problem.message


def test_the_request_schema_is_strict_on_known_fields() -> None:
    from pydantic import ValidationError

    for bad in (
        {"stream": "yes"},
        {"seed": "7"},
        {"seed": -1},
        {"n": 2},
        {"messages": []},
        {"modalities": ["video"]},
        {"image_config": {"aspect_ratio": "banana"}},
        {"reasoning": {"effort": "extreme"}},
        {"reasoning": "high"},
    ):
        with pytest.raises(ValidationError):
            chat(**bad)


# ----------------------------------------------------------------------- chat answers
def test_completion_has_openrouters_shape_and_reads_back() -> None:
    out = outcome()
    body = openrouter_response.completion(out).to_bytes()
    doc = json.loads(body)
    assert shape(doc) == shape(_trim_usage(fixture("response_object.json")))
    assert doc["id"] == "gen-0123456789abcdef0123456789abcdef"
    assert doc["provider"] == "Google AI Studio" and doc["system_fingerprint"] is None
    # The reader the library uses for real OpenRouter answers decodes the image intact.
    parsed = openrouter_wire.parse_response(body)
    assert parsed.images[0].data == out.images[0].data
    assert (parsed.images[0].width, parsed.images[0].height) == (40, 30)
    assert parsed.text == "Here you go"
    assert parsed.usage.cost == pytest.approx(0.0387) and parsed.usage.image_tokens == 1290


def _trim_usage(doc: dict[str, Any]) -> dict[str, Any]:
    """The fixture's usage has details we do not know (audio tokens, cost split)."""
    usage = doc["usage"]
    usage["prompt_tokens_details"] = {"cached_tokens": 0}
    usage["cost_details"] = {"upstream_inference_cost": None}
    return doc


def test_content_filter_is_a_completion_without_images() -> None:
    blocked = outcome(
        status="blocked",
        images=(),
        usage=None,
        text=None,
        error_code="content_blocked",
        error_message="blocked",
        error_details={"finish_reason": "IMAGE_SAFETY", "text": "I can't create that image."},
    )
    doc = json.loads(openrouter_response.completion(blocked).to_bytes())
    expected = fixture("response_content_filter.json")
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["native_finish_reason"] == "IMAGE_SAFETY"
    assert choice["message"] == expected["choices"][0]["message"]
    with pytest.raises(BlockedError):
        openrouter_wire.parse_response(openrouter_response.completion(blocked).to_bytes())

    text_only = outcome(
        status="failed",
        images=(),
        error_code="no_image",
        error_details={"finish_reason": "STOP", "text": "Sure! Imagine a fox."},
    )
    doc = json.loads(openrouter_response.completion(text_only).to_bytes())
    assert doc["choices"][0]["finish_reason"] == "stop"
    assert doc["choices"][0]["message"]["content"] == "Sure! Imagine a fox."
    with pytest.raises(NoImageError):
        openrouter_wire.parse_response(openrouter_response.completion(text_only).to_bytes())


def _events(chunks: list[bytes]) -> list[bytes]:
    decoder = SSEDecoder()
    out: list[bytes] = []
    for chunk in chunks:
        # Feed in odd-sized pieces, as a network would.
        for i in range(0, len(chunk), 997):
            out.extend(decoder.feed(chunk[i : i + 997]))
    return out + decoder.flush()


def test_grounded_answers_cite_their_pages_plain_and_streamed() -> None:
    """A grounded job's pages, as OpenRouter's web search cites them; the library's reader
    gets them back from both shapes."""
    grounding = {
        "queries": ["tallest tower"],
        "sources": [{"url": "https://a.example/t", "title": "A"}, {"url": "https://b.example"}],
        "search_entry_point": "<div>chips</div>",
    }
    out = outcome(grounding=grounding)
    plain = openrouter_wire.parse_response(openrouter_response.completion(out).to_bytes())
    streamed = openrouter_wire.StreamState()
    for event in _events(list(openrouter_response.stream_events(out))):
        openrouter_wire.parse_event(event, streamed)
    finish = openrouter_wire.end_of_stream(streamed)
    for found in (plain.grounding, finish.grounding):
        assert found is not None
        assert [(s.url, s.title) for s in found.sources] == [
            ("https://a.example/t", "A"),
            ("https://b.example", "https://b.example"),
        ]
    doc = json.loads(openrouter_response.completion(outcome()).to_bytes())
    assert "annotations" not in doc["choices"][0]["message"]  # not grounded: none


def test_stream_events_read_back_like_an_openrouter_stream() -> None:
    out = outcome(
        images=(
            ImagePayload(png_bytes(40, 30), "image/png", 40, 30, 0),
            ImagePayload(png_bytes(20, 10), "image/png", 20, 10, 1),
        )
    )
    chunks = [openrouter_response.KEEPALIVE, *openrouter_response.stream_events(out)]
    assert chunks[-1] == b"data: [DONE]\n\n"
    events = _events(chunks)
    docs = [json.loads(e) for e in events[:-1]]
    assert all(d["object"] == "chat.completion.chunk" for d in docs)
    assert docs[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Here you go"}
    # Each image in its own chunk, with its index, as OpenRouter streams them.
    assert [d["choices"][0]["delta"]["images"][0]["index"] for d in docs[1:3]] == [0, 1]
    assert docs[-1]["choices"][0]["finish_reason"] == "stop" and docs[-1]["usage"]["cost"] == 0.0387
    state = openrouter_wire.StreamState()
    seen = [ev for data in events for ev in openrouter_wire.parse_event(data, state)]
    images = [ev.image for ev in seen if ev.type == "image"]
    assert [(i.width, i.height) for i in images] == [(40, 30), (20, 10)]
    finish = openrouter_wire.end_of_stream(state)
    assert finish.finish_reason == "STOP" and state.done


def test_stream_error_is_a_top_level_error_and_finish_reason_error() -> None:
    out = outcome(status="failed", images=())
    problem = errors.from_job(
        "upstream_unavailable",
        "Provider returned error",
        {"provider": "openrouter", "upstream_status": 502, "may_be_billed": True},
    )
    event = openrouter_response.stream_error(out, problem)
    doc = json.loads(_events([event])[0])
    expected = (FIXTURES / "stream_midstream_error.sse").read_text().split("\n\n")[2]
    reference = json.loads(expected.removeprefix("data: "))
    assert set(doc) == set(reference) | {"system_fingerprint"}
    assert doc["choices"] == reference["choices"]
    assert set(doc["error"]) == set(reference["error"]) == {"code", "message", "metadata"}
    assert doc["error"]["code"] == 502
    assert doc["error"]["metadata"]["error_type"] == "provider_unavailable"
    assert doc["choices"][0]["finish_reason"] == "error"
    state = openrouter_wire.StreamState()
    openrouter_wire.parse_event(_events([event])[0], state)
    assert isinstance(state.error, UpstreamError) and state.error.status == 502


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("code", "details", "status", "no_retry"),
    [
        ("missing_api_key", {"provider": "google"}, 400, False),
        ("invalid_parameter", {"field": "aspect_ratio"}, 400, False),
        ("upstream_payment_required", {}, 402, False),
        ("quota_exceeded", {"retry_after": 12.2}, 429, False),
        ("quota_exceeded", {"per_day": True}, 429, True),
        ("deadline_exceeded", {"may_be_billed": True}, 408, True),
        ("upstream_unavailable", {"upstream_status": 503}, 503, False),
        ("upstream_unavailable", {"upstream_status": 502}, 502, False),
        ("upstream_ambiguous", {"may_be_billed": True}, 502, True),
        ("content_blocked", {}, 400, True),
        ("no_image", {}, 502, True),
        ("interrupted", {"may_be_billed": True}, 503, True),
    ],
)
def test_job_errors_get_real_statuses(
    code: str, details: dict[str, Any], status: int, no_retry: bool
) -> None:
    problem = errors.from_job(code, "message", details)
    assert problem.status == status
    headers = problem.response_headers()
    assert (headers.get("x-should-retry") == "false") is no_retry
    if status == 429:
        assert headers["Retry-After"] == ("13" if "retry_after" in details else "60")
    body = errors.openrouter_error(problem)
    assert body["error"]["code"] == status
    assert set(errors.openai_error(problem)["error"]) == {"message", "type", "param", "code"}


def test_missing_key_names_the_fix_and_params_follow_the_dialect() -> None:
    problem = errors.from_job("missing_api_key", "no key", {"provider": "google"})
    assert "PUT /api/settings/keys/google" in problem.message
    bad_ratio = errors.from_library(
        __import__("nanobanana.errors", fromlist=["ValidationError"]).ValidationError(
            "bad ratio", field="aspect_ratio", allowed=["1:1", "16:9"]
        )
    )
    meta = errors.openrouter_error(bad_ratio)["error"]["metadata"]
    assert meta == {
        "error_type": "invalid_parameter",
        "param": "image_config.aspect_ratio",
        "allowed": ["1:1", "16:9"],
    }
    assert errors.openai_error(bad_ratio)["error"]["param"] == "size"
    quota = errors.from_library(QuotaError("slow down", provider="google", retry_after=3.0))
    assert (
        errors.openrouter_error(quota)["error"]["metadata"]["error_type"] == "rate_limit_exceeded"
    )
    assert errors.openai_error(quota)["error"] == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    unknown = errors.from_library(UnknownModelError("no such model", field="model"))
    assert errors.openai_error(unknown)["error"]["code"] == "model_not_found"
    unavailable = errors.from_library(
        UpstreamUnavailable("down", provider="openrouter", status=503)
    )
    assert errors.openai_error(unavailable)["error"]["type"] == "server_error"
    assert errors.from_api(422, "validation_error", "bad").status == 400
    assert errors.from_api(422, "idempotency_key_reused", "bad").status == 422


def test_validation_errors_do_not_echo_the_input() -> None:
    problem = errors.from_validation(
        [{"loc": ("body", "messages", 0, "content"), "msg": "bad", "input": "sk-or-v1-CANARY"}]
    )
    assert problem.status == 400 and problem.field_name == "messages"
    assert "CANARY" not in json.dumps(errors.openrouter_error(problem))
    assert isinstance(problem, Problem)


# ---------------------------------------------------------------------------- OpenAI images
def test_size_table_follows_the_catalog_pixels() -> None:
    flash = CATALOG.get("gemini-2.5-flash-image")
    table = openai_images.size_table(flash)
    assert table["1024x1024"] == ("1:1", "1K")
    assert table["1344x768"] == ("16:9", "1K")
    assert len(table) == len(flash.aspect_ratios)
    pro = openai_images.size_table(CATALOG.get("gemini-3-pro-image"))
    assert pro["2048x2048"] == ("1:1", "2K") and pro["5376x3072"] == ("16:9", "4K")
    flash31 = openai_images.size_table(CATALOG.get("gemini-3.1-flash-image"))
    assert flash31["512x512"] == ("1:1", "0.5K") and flash31["512x2048"] == ("1:4", "1K")


def test_sizes_the_model_cannot_make_get_the_nearest_with_a_note() -> None:
    flash = CATALOG.get("gemini-2.5-flash-image")
    assert openai_images.map_size(flash, "1344x768", None) == openai_images.SizeChoice("16:9", "1K")
    assert openai_images.map_size(flash, "auto", "high") == openai_images.SizeChoice(None, "1K")
    # Other models' sizes: Open WebUI's default, gpt-image's landscape and portrait.
    for asked, made in (
        ("512x512", ("1:1", "1K")),
        ("1536x1024", ("3:2", "1K")),
        ("1024x1536", ("2:3", "1K")),
        ("1920x1080", ("16:9", "1K")),
    ):
        chosen = openai_images.map_size(flash, asked, None)
        assert (chosen.aspect_ratio, chosen.image_size) == made, asked
        assert chosen.note and asked in chosen.note and "the nearest" in chosen.note
    flash31 = CATALOG.get("gemini-3.1-flash-image")
    assert openai_images.map_size(flash31, "500x500", None).image_size == "0.5K"
    pro = CATALOG.get("gemini-3-pro-image")
    assert openai_images.map_size(pro, "2500x2500", None).image_size == "2K"
    with pytest.raises(ProblemError) as caught:
        openai_images.map_size(flash, "0x100", None)
    problem = caught.value.problem
    assert problem.status == 400 and problem.field_name == "size"
    assert "1024x1024" in problem.message and "1344x768" in problem.message
    assert problem.details["allowed"][0] == "auto"
    body = errors.openai_error(problem)["error"]
    assert body["param"] == "size" and body["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("model", "quality", "size"),
    [
        ("gemini-3.1-flash-image", "low", "0.5K"),
        ("gemini-3.1-flash-image", "medium", "1K"),
        ("gemini-3.1-flash-image", "standard", "1K"),
        ("gemini-3.1-flash-image", "hd", "2K"),
        ("gemini-3.1-flash-image", "max", "4K"),
        ("gemini-3-pro-image", "low", "1K"),
        ("gemini-3-pro-image", "high", "2K"),
        ("gemini-2.5-flash-image", "hd", "1K"),
        ("gemini-2.5-flash-image", "auto", None),
        ("gemini-2.5-flash-image", None, None),
    ],
)
def test_quality_picks_the_resolution(model: str, quality: str | None, size: str | None) -> None:
    assert openai_images.size_for_quality(CATALOG.get(model), quality) == size


def test_plan_checks_n_format_and_quality() -> None:
    flash = CATALOG.get("gemini-2.5-flash-image")
    base: dict[str, Any] = {
        "prompt": "x",
        "n": None,
        "size": None,
        "quality": None,
        "response_format": None,
        "seed": None,
    }
    call = openai_images.plan(flash, **base)
    assert (call.n, call.response_format) == (1, "b64_json")
    for over, field in (
        ({"n": 11}, "n"),
        ({"n": 0}, "n"),
        ({"quality": "ultra"}, "quality"),
        ({"response_format": "png"}, "response_format"),
    ):
        with pytest.raises(ProblemError) as caught:
            openai_images.plan(flash, **{**base, **over})
        assert caught.value.problem.field_name == field
    assert openai_images.catalog_model("dall-e-3") is None
    assert openai_images.catalog_model("gpt-image-1") is None
    assert openai_images.catalog_model("nano-banana") == "nano-banana"


def test_images_response_b64_and_urls() -> None:
    out = outcome()
    doc = json.loads(openai_images.images_response(out, "b64_json", "http://h:8000/").to_bytes())
    assert pybase64.b64decode(doc["data"][0]["b64_json"]) == out.images[0].data
    assert doc["usage"] == {
        "input_tokens": 9,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 9},
        "output_tokens": 1290,
        "output_tokens_details": {"image_tokens": 1290, "text_tokens": 0},
        "total_tokens": 1299,
        "cost": 0.0387,
    }
    assert doc["size"] == "40x30" and doc["output_format"] == "png"
    # OpenAI's own model of the answer reads every field.
    parsed = OpenAIImagesResponse.model_validate(doc)
    assert parsed.usage is not None and parsed.usage.input_tokens_details.text_tokens == 9
    doc = json.loads(openai_images.images_response(out, "url", "http://h:8000/").to_bytes())
    assert doc["data"] == [{"url": "http://h:8000/api/images/abc"}]
    # An edit: the references' tokens by the catalog, never more than the input counted.
    edit = json.loads(
        openai_images.images_response(out, "url", "", input_image_tokens=5).to_bytes()
    )
    assert edit["usage"]["input_tokens_details"] == {"image_tokens": 5, "text_tokens": 4}
    big = json.loads(
        openai_images.images_response(out, "url", "", input_image_tokens=50).to_bytes()
    )
    assert big["usage"]["input_tokens_details"] == {"image_tokens": 9, "text_tokens": 0}
    # The demo's synthetic images cost nothing; an unknown cost is null, not left out.
    demo = outcome(usage={"input_tokens": 3, "output_tokens": 10}, synthetic=True)
    usage = json.loads(openai_images.images_response(demo, "url", "").to_bytes())["usage"]
    assert usage["cost"] == 0.0 and usage["total_tokens"] == 13
    # ... in every dialect: OpenRouter's Image API and chat completions say the same.
    image_api = json.loads(openrouter_images.image_response(demo).to_bytes())["usage"]
    assert image_api["cost"] == 0.0 and openrouter_response.usage(demo)["cost"] == 0.0
    assert openrouter_response.usage(outcome(usage={"input_tokens": 3}))["cost"] is None
    unknown = outcome(usage={"input_tokens": 3, "output_tokens": 10})
    assert (
        json.loads(openai_images.images_response(unknown, "url", "").to_bytes())["usage"]["cost"]
        is None
    )


# ------------------------------------------------------------------------------- models
def test_models_default_to_text_output_like_openrouter() -> None:
    def listed(**query: str) -> list[dict[str, Any]]:
        page = models.openrouter_models(CATALOG, models.ModelQuery.parse(query))
        assert page["total_count"] == len(page["data"]) and page["links"] == {"next": None}
        return cast(list[dict[str, Any]], page["data"])

    text = listed()
    image = listed(output_modalities="image")
    every = listed(output_modalities="all")
    assert {m["id"] for m in text} == {
        "google/gemini-2.5-flash-image",
        "google/gemini-3-pro-image-preview",
        "google/gemini-3.1-flash-image-preview",
        "google/gemini-3.1-flash-lite-image",  # served through Google by this service
    }
    assert len(image) == len(every) == len(CATALOG)
    assert models.parse_output_modalities("text, image") == {"text", "image"}
    with pytest.raises(ProblemError):
        models.parse_output_modalities("video")


def test_models_page_and_filter_as_openrouter_documents() -> None:
    def page(**query: str) -> dict[str, Any]:
        return models.openrouter_models(CATALOG, models.ModelQuery.parse(query), raw_query=query)

    every = page(output_modalities="all")
    ids = [m["id"] for m in every["data"]]
    first = page(output_modalities="all", limit="2")
    assert [m["id"] for m in first["data"]] == ids[:2]
    assert first["total_count"] == len(ids) > 2
    assert first["links"]["next"] == "/api/v1/models?output_modalities=all&offset=2&limit=2"
    last = page(output_modalities="all", limit="2", offset=str(len(ids) - 1))
    assert [m["id"] for m in last["data"]] == ids[-1:] and last["links"]["next"] is None
    assert page(output_modalities="all", offset=str(len(ids)))["data"] == []
    # Filters: every named input and parameter, any named author, the text in id or name.
    seeded = page(output_modalities="all", supported_parameters="seed,image_config")["data"]
    assert seeded and all("seed" in m["supported_parameters"] for m in seeded)
    assert len(seeded) < len(ids)
    google = page(output_modalities="all", model_authors="google")["data"]
    assert google and all(m["id"].startswith("google/") for m in google)
    assert [m["id"] for m in page(output_modalities="all", q="FLUX.2-PRO")["data"]] == [
        "black-forest-labs/flux.2-pro"
    ]
    edits = page(output_modalities="all", input_modalities="image,text")["data"]
    assert edits and all("image" in m["architecture"]["input_modalities"] for m in edits)
    assert page(output_modalities="all", input_modalities="audio")["data"] == []
    # OpenRouter's other parameters are taken; a typo or a bad number is a 400 naming it.
    assert page(sort="newest", max_price="1")["data"] == page()["data"]
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"limit": "ten"}):
        with pytest.raises(ProblemError) as caught:
            models.ModelQuery.parse(bad)
        assert caught.value.problem.field_name == next(iter(bad))
    with pytest.raises(ProblemError) as caught:
        models.ModelQuery.parse({"input_modalities": "smell"})
    assert caught.value.problem.details["allowed"] == list(models.INPUT_MODALITIES)


def test_model_shape_reads_back_with_the_librarys_discovery() -> None:
    doc = models.openrouter_models(CATALOG)
    flash = next(m for m in doc["data"] if m["id"] == "google/gemini-2.5-flash-image")
    reference = fixture("models.json")["data"][0]
    assert set(reference) - set(flash) == set()
    assert flash["architecture"]["modality"] == reference["architecture"]["modality"]
    assert flash["pricing"]["prompt"] == reference["pricing"]["prompt"] == "0.0000003"
    assert flash["pricing"]["image_output"] == reference["pricing"]["image_output"]
    found = openrouter_wire.parse_models(orjson.dumps(doc))
    assert {s.provider_ids["openrouter"] for s in found} == {m["id"] for m in doc["data"]}
    flux = next(m for m in doc["data"] if m["id"] == "black-forest-labs/flux.2-pro")
    assert flux["architecture"]["output_modalities"] == ["image"]
    assert flux["pricing"]["prompt"] == "-1" and "seed" in flux["supported_parameters"]
    # Thinking levels in OpenRouter's shape: highest first, null when passed on, none at all
    # when the model takes none (and the library reads them back the same).
    assert flash["reasoning"] == {"supported_efforts": None, "mandatory": False}
    assert "reasoning" in flash["supported_parameters"]
    lite = models.openrouter_model(CATALOG.get("gemini-3.1-flash-lite-image"))
    assert lite["reasoning"]["supported_efforts"] == ["high", "minimal"]
    [back] = openrouter_wire.parse_models(orjson.dumps({"data": [lite]}))
    assert back.thinking_levels == ("minimal", "high")
    thoughtless = models.openrouter_model(replace(CATALOG.get(flux["id"]), thinking_levels=()))
    assert "reasoning" not in thoughtless
    assert "reasoning" not in thoughtless["supported_parameters"]
    listing = models.openai_models(CATALOG)
    assert listing["object"] == "list"
    assert {
        "id": "gemini-2.5-flash-image",
        "object": "model",
        "created": 0,
        "owned_by": "google",
    } in listing["data"]


def test_documented_ratios_and_sizes_are_the_catalogs() -> None:
    from typing import get_args

    from nanobanana.catalog import EXTENDED_RATIOS, SIZE_SCALE, STANDARD_RATIOS
    from nanobanana.server.compat.openrouter_request import AspectRatio, ImageSize

    assert get_args(AspectRatio) == STANDARD_RATIOS + EXTENDED_RATIOS
    assert get_args(ImageSize) == tuple(SIZE_SCALE)


def test_prompts_with_control_characters_are_refused_and_need_visible_text() -> None:
    """As the native API does: a NUL (or another control character) is a 400 naming it."""
    assert parse_chat(chat(messages=[{"role": "user", "content": "a fox\tnow\n"}])).prompt
    for content in ("a\x00 fox", [{"type": "text", "text": "a fox\x1b"}]):
        with pytest.raises(ProblemError) as err:
            parse_chat(chat(messages=[{"role": "user", "content": content}]))
        assert err.value.problem.status == 400 and err.value.problem.field_name == "prompt"
    with pytest.raises(ProblemError) as err:
        parse_chat(chat(messages=[{"role": "user", "content": "a\x00 fox"}]))
    assert "U+0000 at position 2" in err.value.problem.message
    with pytest.raises(ProblemError):
        parse_chat(chat(messages=[{"role": "user", "content": " \n "}]))
    # The last user message *with text* is the prompt, with its own images.
    call = parse_chat(
        chat(
            messages=[
                {"role": "user", "content": "draw a fox"},
                {"role": "user", "content": [{"type": "image_url", "image_url": "data:x"}]},
            ]
        )
    )
    assert (call.prompt, call.images) == ("draw a fox", ())
