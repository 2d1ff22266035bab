"""OpenRouter wire format: the bodies the emulator sends (reference §1.3-§1.6).

Pure functions from facts to ``Reply`` objects.  Image payloads are never passed through a JSON
encoder: the envelope is serialised with a placeholder, which is then replaced by the base64
bytes (``splice``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from .delivery import Reply, splice
from .images import Payload
from .models import ModelSpec
from .state import Artifact

__all__ = [
    "chat_completion",
    "chat_stream",
    "error",
    "error_for_status",
    "model_object",
    "usage",
]

JSON = "application/json"
USER_ID = "user_2emulator000000000000000"
PROCESSING = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
_RATE_LIMIT_PER_MINUTE = 20


def format_seconds(seconds: float) -> str:
    """``1`` for whole seconds, else a short decimal such as ``0.05``."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def json_reply(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, [("content-type", JSON), *(headers or [])], [orjson.dumps(obj)])


def error_body(
    status: int, message: str, metadata: Mapping[str, Any] | None = None, *, user_id: bool = False
) -> dict[str, Any]:
    inner: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        inner["metadata"] = dict(metadata)
    body: dict[str, Any] = {"error": inner}
    if user_id:
        body["user_id"] = USER_ID
    return body


def error(
    status: int,
    message: str,
    metadata: Mapping[str, Any] | None = None,
    headers: list[tuple[str, str]] | None = None,
    *,
    user_id: bool = False,
) -> Reply:
    """``{"error":{"code","message","metadata"?}}`` with the same HTTP status (reference §1.5)."""
    return json_reply(status, error_body(status, message, metadata, user_id=user_id), headers)


def _reset_ms(seconds: float) -> str:
    return str(int((time.time() + seconds) * 1000))


def quota(model: str, seconds: float) -> Reply:
    limit = str(_RATE_LIMIT_PER_MINUTE)
    rate_headers = {
        "X-RateLimit-Limit": limit,
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": _reset_ms(seconds),
    }
    message = (
        f"Rate limit exceeded: limit_rpm/{model}. High demand for {model} on OpenRouter - "
        f"limited to {limit} requests per minute. Please retry shortly."
    )
    metadata = {"headers": rate_headers, "provider_name": None, "error_type": "rate_limit_exceeded"}
    headers = [("Retry-After", format_seconds(seconds)), *rate_headers.items()]
    return error(429, message, metadata, headers, user_id=True)


def quota_day() -> Reply:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    rate_headers = {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(tomorrow.timestamp() * 1000)),
    }
    message = (
        "Rate limit exceeded: free-models-per-day. "
        "Add 10 credits to unlock 1000 free model requests per day"
    )
    metadata = {
        "headers": rate_headers,
        "provider_name": None,
        "error_type": "rate_limit_exceeded",
        "limit": "per-day",
    }
    return error(429, message, metadata, list(rate_headers.items()), user_id=True)


def legacy_quota(model: ModelSpec, seconds: float) -> Reply:
    """The older form: upstream body as a JSON *string* in ``metadata.raw`` (reference §1.5)."""
    retry: float = int(seconds) if float(seconds).is_integer() else seconds
    raw = orjson.dumps(
        {
            "error": {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "message": f"{model.id} is temporarily rate-limited upstream. "
                "Please retry shortly, or add your own key.",
            }
        },
        option=orjson.OPT_INDENT_2,
    ).decode()
    metadata = {
        "raw": raw,
        "provider_name": model.provider,
        "is_byok": False,
        "retry_after_seconds": retry,
        "headers": {"Retry-After": format_seconds(retry)},
    }
    return error(429, "Provider returned error", metadata, user_id=True)


def payment() -> Reply:
    return error(402, "Insufficient credits. Add more using https://openrouter.ai/credits")


def server_error(status: int, model: ModelSpec, retry_after: float = 1.0) -> Reply:
    if status == 502:
        metadata = {
            "provider_name": model.provider,
            "raw": "upstream connection error",
            "error_type": "provider_unavailable",
        }
        return error(502, "Provider returned error", metadata, user_id=True)
    if status == 503:
        return error(
            503,
            f"No instances available for {model.id}: the provider is overloaded",
            {"provider_name": model.provider, "error_type": "provider_overloaded"},
            [("Retry-After", format_seconds(retry_after))],
        )
    if status == 504:
        return error(504, "Gateway Timeout", {"error_type": "timeout"})
    return error(status, "Internal Server Error", {"error_type": "server"})


def moderation(model: ModelSpec, flagged: str) -> Reply:
    metadata = {
        "reasons": ["violence"],
        "flagged_input": flagged[:100],
        "provider_name": model.provider,
        "model_slug": model.id,
    }
    message = (
        f"{model.id} requires moderation on {model.provider}. "
        'Your input was flagged for "violence". No credits were charged.'
    )
    return error(403, message, metadata)


def error_for_status(status: int, model: ModelSpec, retry_after: float) -> Reply:
    """An error of any status in OpenRouter's shape (the ``flaky`` scenario)."""
    if status == 429:
        return quota(model.id, retry_after)
    if status in (500, 502, 503, 504):
        return server_error(status, model, retry_after)
    if status == 402:
        return payment()
    if status == 401:
        return error(401, "User not found.")
    return error(status, f"Emulated error {status}")


# -- success bodies -----------------------------------------------------------------------------


def usage(model: ModelSpec, art: Artifact) -> dict[str, Any]:
    prompt_cost = art.prompt_tokens * model.prompt_price
    completion_cost = (
        art.text_tokens * model.completion_price + art.image_tokens * model.image_price
    )
    return {
        "prompt_tokens": art.prompt_tokens,
        "completion_tokens": art.completion_tokens,
        "total_tokens": art.prompt_tokens + art.completion_tokens,
        "cost": round(prompt_cost + completion_cost, 10),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0, "video_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": None,
            "upstream_inference_prompt_cost": round(prompt_cost, 10),
            "upstream_inference_completions_cost": round(completion_cost, 10),
        },
        "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": art.image_tokens},
    }


def _envelope(gen_id: str, model: ModelSpec, created: int, obj: str) -> dict[str, Any]:
    return {
        "id": gen_id,
        "provider": model.provider,
        "model": model.id,
        "object": obj,
        "created": created,
        "system_fingerprint": None,
    }


def _splice_url(template: bytes, token: str, payload: Payload | None) -> list[bytes]:
    """Put ``data:<mime>;base64,<b64>`` where the token is, without re-encoding any JSON."""
    if payload is None:
        return [template]
    pieces = splice(template, token, payload.b64)
    if len(pieces) == 3:
        pieces.insert(1, b"data:" + payload.mime.encode() + b";base64,")
    return pieces


def _image_item(token: str, bare: bool, index: int | None = None) -> Any:
    if bare:
        return token
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": token}}
    if index is not None:
        item["index"] = index
    return item


def citations(prompt: str) -> list[dict[str, Any]]:
    """``url_citation`` annotations of a web-searched answer (OpenRouter's web-search guide)."""
    slug = "-".join(prompt.lower().split())[:60] or "image"
    return [
        {
            "type": "url_citation",
            "url_citation": {
                "url": f"https://{site}/{quote(slug)}",
                "title": f"About {prompt[:60]}",
                "content": "",
                "start_index": 0,
                "end_index": 0,
            },
        }
        for site in ("example.com", "example.org")
    ]


#: The ``format`` OpenRouter gives a Gemini thought signature in ``reasoning_details``.
GEMINI_REASONING_FORMAT = "google-gemini-v1"


def gemini_reasoning(signature: str) -> dict[str, Any]:
    """A Gemini 3 model's thought signature as OpenRouter hands it on: one encrypted
    ``reasoning_details`` entry, to be sent back on the assistant message."""
    return {
        "type": "reasoning.encrypted",
        "data": signature,
        "id": None,
        "format": GEMINI_REASONING_FORMAT,
        "index": 0,
    }


def provider_error(model: ModelSpec, status: int, message: str, google_status: str) -> Reply:
    """An upstream provider's refusal as OpenRouter passes it on: "Provider returned error"
    with the provider's own body in ``metadata.raw``."""
    raw = orjson.dumps(
        {"error": {"code": status, "message": message, "status": google_status}},
        option=orjson.OPT_INDENT_2,
    ).decode()
    return error(
        status,
        "Provider returned error",
        {"raw": raw, "provider_name": model.provider},
        user_id=True,
    )


def chat_completion(
    gen_id: str,
    model: ModelSpec,
    art: Artifact,
    *,
    token: str,
    finish: tuple[str, str] = ("stop", "STOP"),
    bare_images: bool = False,
    annotations: list[dict[str, Any]] | None = None,
    reasoning_details: list[dict[str, Any]] | None = None,
) -> Reply:
    """A non-streaming ``chat.completion`` (reference §1.3)."""
    created = int(time.time())
    message: dict[str, Any] = {
        "role": "assistant",
        "content": art.text,
        "refusal": None,
        "reasoning": None,
    }
    if reasoning_details:
        message["reasoning_details"] = reasoning_details
    if art.payload is not None:
        message["images"] = [_image_item(token, bare_images)]
    if annotations:
        message["annotations"] = annotations
    body = _envelope(gen_id, model, created, "chat.completion")
    body["choices"] = [
        {
            "logprobs": None,
            "finish_reason": finish[0],
            "native_finish_reason": finish[1],
            "index": 0,
            "message": message,
        }
    ]
    body["usage"] = usage(model, art)
    chunks = _splice_url(orjson.dumps(body), token, art.payload)
    headers = [("content-type", JSON), ("X-Generation-Id", gen_id)]
    return Reply(200, headers, chunks)


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _chunk(
    base: dict[str, Any], delta: dict[str, Any], finish: tuple[str, str] | None
) -> dict[str, Any]:
    choice = {
        "index": 0,
        "delta": delta,
        "finish_reason": finish[0] if finish else None,
        "native_finish_reason": finish[1] if finish else None,
        "logprobs": None,
    }
    return {**base, "choices": [choice]}


def chat_stream(
    gen_id: str,
    model: ModelSpec,
    art: Artifact,
    *,
    token: str,
    finish: tuple[str, str] = ("stop", "STOP"),
    bare_images: bool = False,
    error_after_text: dict[str, Any] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    reasoning_details: list[dict[str, Any]] | None = None,
) -> Reply:
    """An SSE stream (reference §1.4): comment, text delta, image delta, final chunk, [DONE].

    With ``error_after_text`` the stream stops after the text delta with an error event whose
    ``finish_reason`` is ``error`` (status stays 200).
    """
    base = _envelope(gen_id, model, int(time.time()), "chat.completion.chunk")
    del base["system_fingerprint"]
    pieces = [PROCESSING]
    if art.text or error_after_text is not None or art.payload is None:
        pieces.append(_sse(_chunk(base, {"role": "assistant", "content": art.text}, None)))
    if error_after_text is not None:
        event = {**base, "error": error_after_text}
        event["choices"] = [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
        pieces.append(_sse(event))
        return Reply(200, _stream_headers(gen_id), pieces, stream=True)
    if art.payload is not None:
        delta = {"role": "assistant", "content": "", "images": [_image_item(token, bare_images, 0)]}
        if reasoning_details:
            delta["reasoning_details"] = reasoning_details
        pieces.extend(_splice_url(_sse(_chunk(base, delta, None)), token, art.payload))
    last = _chunk(
        base, {"content": "", **({"annotations": annotations} if annotations else {})}, finish
    )
    last["usage"] = usage(model, art)
    pieces.append(_sse(last))
    pieces.append(DONE)
    return Reply(200, _stream_headers(gen_id), pieces, stream=True)


def _stream_headers(gen_id: str) -> list[tuple[str, str]]:
    return [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-cache"),
        ("X-Generation-Id", gen_id),
    ]


def error_event(gen_id: str, model: ModelSpec, status: int, message: str) -> Reply:
    """A stream whose first event is an error (``error-in-200`` while streaming)."""
    return chat_stream(
        gen_id,
        model,
        Artifact(None, "", 0, 0, 0),
        token="",
        error_after_text=error_inner(status, message),
    )


def error_inner(status: int, message: str) -> dict[str, Any]:
    kinds = {
        429: "rate_limit_exceeded",
        502: "provider_unavailable",
        503: "provider_overloaded",
        504: "timeout",
        500: "server",
    }
    return {
        "code": status,
        "message": message,
        "metadata": {"error_type": kinds.get(status, "server")},
    }


# -- discovery ----------------------------------------------------------------------------------


def _price(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".") if value else "0"


def model_object(spec: ModelSpec) -> dict[str, Any]:
    """One entry of ``GET /api/v1/models`` (reference §1.6)."""
    inputs, outputs = list(spec.inputs), list(spec.outputs)
    params = ["max_tokens", "temperature", "top_p", "seed", "stop", "response_format"]
    if spec.thinking_levels:
        params += ["reasoning", "include_reasoning"]
    return {
        "id": spec.id,
        "canonical_slug": spec.id,
        "hugging_face_id": "",
        "name": spec.name,
        "created": spec.created,
        "description": spec.description,
        "context_length": spec.context_length,
        "architecture": {
            "modality": "+".join(inputs) + "->" + "+".join(outputs),
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": "Gemini" if spec.id.startswith("google/") else "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": _price(spec.prompt_price),
            "completion": _price(spec.completion_price),
            "request": "0",
            "image": "0",
            "image_output": _price(spec.image_price),
            "web_search": "0",
            "internal_reasoning": "0",
            "input_cache_read": "0",
        },
        "top_provider": {
            "context_length": spec.context_length,
            "max_completion_tokens": spec.output_limit,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": params,
        "default_parameters": {},
        "supported_voices": None,
        "links": {"details": f"/api/v1/models/{spec.id}/endpoints"},
        "expiration_date": None,
        # The models guide: a model that lets callers choose an effort says which.
        **(
            {"reasoning": {"supported_efforts": list(spec.thinking_levels), "mandatory": False}}
            if spec.thinking_levels
            else {}
        ),
    }


def key_info(key: str, spent: float, limit: float | None) -> dict[str, Any]:
    """The ``data`` of ``GET /api/v1/key`` (OpenRouter's API reference, "Get current API key"):
    the label is the masked key, ``limit`` null means no limit; a key with credits is not on
    the free tier."""
    return {
        "label": f"{key[:11]}...{key[-3:]}" if len(key) > 16 else "sk-or-v1-...",
        "limit": limit,
        "limit_remaining": None if limit is None else max(0.0, limit - spent),
        "limit_reset": None,
        "include_byok_in_limit": False,
        "usage": spent,
        "usage_daily": spent,
        "usage_weekly": spent,
        "usage_monthly": spent,
        "byok_usage": 0,
        "byok_usage_daily": 0,
        "byok_usage_weekly": 0,
        "byok_usage_monthly": 0,
        "is_free_tier": False,
        "is_management_key": False,
        "is_provisioning_key": False,
        "rate_limit": {
            "requests": -1,
            "interval": "10s",
            "note": "This field is deprecated and safe to ignore.",
        },
        "expires_at": None,
        "creator_user_id": None,
    }


def generation_stats(
    gen_id: str,
    model: ModelSpec,
    art: Artifact,
    *,
    finish: tuple[str, str],
    streamed: bool,
    latency_ms: int,
    referer: str | None,
) -> dict[str, Any]:
    """The record ``GET /api/v1/generation?id=`` returns (reference §1.6)."""
    cost = usage(model, art)["cost"]
    return {
        "id": gen_id,
        "upstream_id": gen_id.replace("gen-", "up-"),
        "model": model.id,
        "provider_name": model.provider,
        "total_cost": cost,
        "usage": cost,
        "tokens_prompt": art.prompt_tokens,
        "tokens_completion": art.completion_tokens,
        "native_tokens_prompt": art.prompt_tokens,
        "native_tokens_completion": art.completion_tokens,
        "native_tokens_completion_images": art.image_tokens,
        "native_tokens_reasoning": 0,
        "num_media_prompt": None,
        "num_media_completion": 1 if art.payload is not None else 0,
        "finish_reason": finish[0],
        "native_finish_reason": finish[1],
        "streamed": streamed,
        "cancelled": False,
        "latency": latency_ms,
        "generation_time": latency_ms,
        "moderation_latency": None,
        "created_at": datetime.now(UTC).isoformat(),
        "is_byok": False,
        "http_referer": referer,
        "app_id": None,
        "origin": "",
    }
