"""Gemini API wire format: the bodies the emulator sends (reference §2.3-§2.6).

Pure functions from facts to ``Reply`` objects.  As for OpenRouter, image payloads are spliced
into pre-serialised JSON rather than passed through an encoder.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import orjson

from . import signatures
from .delivery import Reply, splice
from .images import Payload
from .models import ModelSpec
from .state import Artifact

__all__ = [
    "error",
    "error_body",
    "error_for_status",
    "generate_response",
    "model_object",
    "stream_response",
]

JSON = "application/json; charset=UTF-8"
SSE_END = b"\r\n\r\n"
STATUS_NAMES: Mapping[int, str] = MappingProxyType(
    {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        408: "DEADLINE_EXCEEDED",
        409: "ABORTED",
        429: "RESOURCE_EXHAUSTED",
        499: "CANCELLED",
        500: "INTERNAL",
        501: "UNIMPLEMENTED",
        502: "UNAVAILABLE",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
)
_RATE_DOCS = "https://ai.google.dev/gemini-api/docs/rate-limits"
_TROUBLESHOOT = "https://developers.generativeai.google/guide/troubleshooting"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_HELP = "type.googleapis.com/google.rpc.Help"


def duration(seconds: float) -> str:
    """A protobuf JSON duration: ``1s``, ``0.05s``, ``58.93s``."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:.9f}".rstrip("0") + "s"


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, [("content-type", JSON)], [orjson.dumps(obj)])


def error_body(status: int, message: str, details: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        inner["details"] = list(details)
    return {"error": inner}


def error(status: int, message: str, details: Sequence[dict[str, Any]] = ()) -> Reply:
    """``{"error":{"code","message","status","details"?}}`` (reference §2.5)."""
    body = orjson.dumps(error_body(status, message, details), option=orjson.OPT_INDENT_2)
    return Reply(status, [("content-type", JSON)], [body])


def api_key_missing() -> Reply:
    return error(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )


def api_key_invalid() -> Reply:
    info = {
        "@type": _ERROR_INFO,
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    return error(400, "API key not valid. Please pass a valid API key.", [info])


def _quota_failure(model: str, quota_id: str, metric: str, value: str) -> dict[str, Any]:
    return {
        "@type": _QUOTA_FAILURE,
        "violations": [
            {
                "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": value,
            }
        ],
    }


def quota(model: str, seconds: float) -> Reply:
    """A per-minute 429 with ``RetryInfo`` and "Please retry in N s." (reference §2.5)."""
    metric = "generate_content_free_tier_requests"
    message = (
        "You exceeded your current quota, please check your plan and billing details. "
        f"For more information on this error, head to: {_RATE_DOCS}.\n"
        f"* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}, "
        f"limit: 10, model: {model}\n"
        f"Please retry in {duration(seconds)[:-1]}s."
    )
    details = [
        _quota_failure(model, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", metric, "10"),
        {
            "@type": _HELP,
            "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_DOCS}],
        },
        {"@type": _RETRY_INFO, "retryDelay": duration(seconds)},
    ]
    return error(429, message, details)


def quota_day(model: str) -> Reply:
    """A per-day 429: ``PerDay`` quota id and no ``RetryInfo`` (retrying today is pointless)."""
    metric = "generate_content_free_tier_requests"
    message = (
        "You exceeded your current quota, please check your plan and billing details. "
        f"For more information on this error, head to: {_RATE_DOCS}.\n"
        f"* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}, "
        f"limit: 100, model: {model}"
    )
    details = [
        _quota_failure(model, "GenerateRequestsPerDayPerProjectPerModel-FreeTier", metric, "100"),
        {
            "@type": _HELP,
            "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_DOCS}],
        },
    ]
    return error(429, message, details)


def billing() -> Reply:
    info = {
        "@type": _ERROR_INFO,
        "reason": "BILLING_DISABLED",
        "domain": "googleapis.com",
        "metadata": {
            "service": "generativelanguage.googleapis.com",
            "consumer": "projects/000000000000",
        },
    }
    message = (
        "This API method requires billing to be enabled. Please enable billing on project "
        "#000000000000 by visiting https://console.developers.google.com/billing/enable"
        "?project=000000000000 then retry."
    )
    return error(403, message, [info])


def server_message(status: int) -> str:
    messages = {
        500: f"An internal error has occurred. Please retry or report in {_TROUBLESHOOT}",
        502: "The service is temporarily unavailable (bad gateway). Please try again later.",
        503: "The model is overloaded. Please try again later.",
        504: "The request timed out. Please try again.",
    }
    return messages.get(status, f"Emulated error {status}")


def server_error(status: int) -> Reply:
    return error(status, server_message(status))


def error_for_status(status: int, model: str, retry_after: float) -> Reply:
    """An error of any status in Google's shape (the ``flaky`` scenario)."""
    if status == 429:
        return quota(model, retry_after)
    if status in (500, 502, 503, 504):
        return server_error(status)
    return error(status, f"Emulated error {status}")


# -- success bodies -----------------------------------------------------------------------------


def usage_metadata(art: Artifact, prompt_text_tokens: int) -> dict[str, Any]:
    prompt_details = [{"modality": "TEXT", "tokenCount": prompt_text_tokens}]
    if art.prompt_tokens > prompt_text_tokens:
        prompt_details.append(
            {"modality": "IMAGE", "tokenCount": art.prompt_tokens - prompt_text_tokens}
        )
    meta: dict[str, Any] = {
        "promptTokenCount": art.prompt_tokens,
        "totalTokenCount": art.prompt_tokens + art.completion_tokens,
        "promptTokensDetails": prompt_details,
    }
    details = []
    if art.image_tokens:
        details.append({"modality": "IMAGE", "tokenCount": art.image_tokens})
    if art.text_tokens:
        details.append({"modality": "TEXT", "tokenCount": art.text_tokens})
    if details:
        meta["candidatesTokenCount"] = art.completion_tokens
        meta["candidatesTokensDetails"] = details
    return meta


def _inline(payload: Payload, token: str) -> dict[str, Any]:
    return {"inlineData": {"mimeType": payload.mime, "data": token}}


def _candidate(
    parts: list[dict[str, Any]] | None,
    finish: str | None,
    finish_message: str | None = None,
    *,
    grounding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content: dict[str, Any] = {"role": "model"}
    if parts:
        content["parts"] = parts
    cand: dict[str, Any] = {"content": content}
    if finish:
        cand["finishReason"] = finish
    if finish_message:
        cand["finishMessage"] = finish_message
    if grounding:
        cand["groundingMetadata"] = grounding
    cand["index"] = 0
    return cand


SAFETY_MESSAGE = (
    "Unable to show the generated image. The image was filtered out because it violated "
    "Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. "
    "Try rephrasing the prompt."
)


def grounding_metadata(prompt: str, response_id: str) -> dict[str, Any]:
    """What a search-grounded candidate carries (``GroundingMetadata``): the query, two pages
    behind Google's redirect links, and the search suggestions as HTML (the query escaped)."""
    query = " ".join(prompt.split())[:120] or "image"
    chips = f'<div class="container"><a class="chip">{html.escape(query)}</a></div>'
    return {
        "webSearchQueries": [query],
        "groundingChunks": [
            {
                "web": {
                    "uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
                    f"{response_id}{n}",
                    "title": title,
                    "domain": title,
                }
            }
            for n, title in enumerate(("example.com", "example.org"))
        ],
        "searchEntryPoint": {"renderedContent": f"<style>.chip{{color:#1f1f1f}}</style>{chips}"},
    }


def response_chunks(
    art: Artifact,
    *,
    model_version: str,
    response_id: str,
    token: str,
    prompt_text_tokens: int,
    outcome: str = "ok",
    split: bool = False,
    grounding: dict[str, Any] | None = None,
    signed: bool = False,
) -> list[dict[str, Any]]:
    """The GenerateContentResponse object(s): one, or text chunk(s) then the image (``split``).

    ``signed`` (Gemini 3 image models): the first text part and every image part carry a
    ``thoughtSignature``, as Google's image-generation guide describes the model's answer.
    """
    meta = {"modelVersion": model_version, "responseId": response_id}
    usage = usage_metadata(art, prompt_text_tokens)
    if outcome == "blocked-prompt":
        return [
            {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": usage,
                **meta,
            }
        ]
    if outcome == "safety":
        cand = _candidate(None, "IMAGE_SAFETY", SAFETY_MESSAGE)
        return [{"candidates": [cand], "usageMetadata": usage, **meta}]
    text_part: list[dict[str, Any]] = [{"text": art.text}] if art.text else []
    image_part = [_inline(art.payload, token)] if art.payload is not None else []
    if signed:
        for index, part in enumerate(text_part + image_part):
            part["thoughtSignature"] = signatures.sign(model_version, response_id, index)
    if not split or not (text_part and image_part):
        cand = _candidate(text_part + image_part, "STOP", grounding=grounding)
        return [{"candidates": [cand], "usageMetadata": usage, **meta}]
    first = {
        "candidates": [_candidate(text_part, None)],
        "usageMetadata": {
            "promptTokenCount": art.prompt_tokens,
            "totalTokenCount": art.prompt_tokens,
        },
        **meta,
    }
    last = {
        "candidates": [_candidate(image_part, "STOP", grounding=grounding)],
        "usageMetadata": usage,
        **meta,
    }
    return [first, last]


def generate_response(chunks: list[dict[str, Any]], payload: Payload | None, token: str) -> Reply:
    """A non-streaming ``generateContent`` answer."""
    body = orjson.dumps(chunks[0])
    pieces = splice(body, token, payload.b64 if payload is not None else None)
    return Reply(200, [("content-type", JSON)], pieces)


def stream_response(
    chunks: list[dict[str, Any]],
    payload: Payload | None,
    token: str,
    *,
    sse: bool,
    trailing_error: dict[str, Any] | None = None,
) -> Reply:
    """``streamGenerateContent``: SSE events (``alt=sse``, no [DONE]) or a JSON array."""
    events = [orjson.dumps(c) for c in chunks]
    if trailing_error is not None:
        events.append(orjson.dumps(trailing_error))
    if sse:
        raw = b"".join(b"data: " + e + SSE_END for e in events)
        ctype = "text/event-stream"
    else:
        raw = b"[" + b",\r\n".join(events) + b"]"
        ctype = JSON
    pieces = splice(raw, token, payload.b64 if payload is not None else None)
    return Reply(200, [("content-type", ctype)], pieces, stream=True)


# -- discovery ----------------------------------------------------------------------------------


def model_object(spec: ModelSpec) -> dict[str, Any]:
    """One ``Model`` resource (reference §2.6)."""
    methods = ["generateContent", "countTokens", "batchGenerateContent"]
    return {
        "name": f"models/{spec.id}",
        "version": "001",
        "displayName": spec.name,
        "description": spec.description,
        "inputTokenLimit": spec.context_length,
        "outputTokenLimit": spec.output_limit,
        "supportedGenerationMethods": methods,
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2.0,
        "thinking": not spec.makes_images,
    }
