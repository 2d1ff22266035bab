"""OpenRouter chat-completions answers built from a finished job (reference §1.3, §1.4).

Non-streaming: one ``chat.completion`` with ``choices[0].message.images`` as
``[{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}]`` and ``usage``
with ``cost``.  Streaming: ``: OPENROUTER PROCESSING`` comments while the job runs, then a text
delta (if the model said something), one chunk per image with ``delta.images``, a last chunk
with the finish reason and ``usage``, and ``data: [DONE]``.  A job that failed after the stream
began ends it the OpenRouter way: one chunk with a top-level ``error`` and
``finish_reason: "error"``, then nothing.

A content outcome (the model ran and refused, or answered with text only) is what OpenRouter
sends for it: a normal completion without images, ``finish_reason`` ``content_filter`` (with
the upstream reason, e.g. ``IMAGE_SAFETY``, as ``native_finish_reason``) or ``stop``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import continuation
from .errors import Problem, openrouter_error
from .outcome import JobOutcome
from .splice import SplicedBody, Splicer

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
MEDIA_TYPE_SSE = "text/event-stream"

PROVIDER_LABELS = {"openrouter": "OpenRouter", "google": "Google AI Studio"}
#: The ``provider`` of images made by the built-in emulator in demo mode.
SYNTHETIC_LABEL = "nanobanana demo emulator (synthetic images)"


def provider_label(outcome: JobOutcome) -> str:
    if outcome.synthetic:
        return SYNTHETIC_LABEL
    return PROVIDER_LABELS.get(outcome.provider or "", outcome.provider or "unknown")


def finish_reasons(outcome: JobOutcome) -> tuple[str, str | None]:
    """(finish_reason, native_finish_reason)."""
    if outcome.content_outcome:
        native = outcome.error_details.get("finish_reason") or outcome.error_details.get("reason")
        if outcome.error_code == "content_blocked":
            return "content_filter", str(native or "SAFETY")
        return "stop", str(native or "STOP")
    return "stop", "STOP"


def message_text(outcome: JobOutcome) -> str:
    if outcome.content_outcome:
        return str(outcome.error_details.get("text") or "")
    return outcome.text or ""


def usage(outcome: JobOutcome) -> dict[str, Any]:
    prompt = outcome.usage_int("input_tokens") or 0
    completion = outcome.usage_int("output_tokens") or 0
    total = outcome.usage_int("total_tokens") or prompt + completion
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "cost": outcome.cost,
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0},
        "cost_details": {"upstream_inference_cost": None},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "image_tokens": outcome.usage_int("image_tokens") or 0,
        },
    }


def _envelope(outcome: JobOutcome, obj: str) -> dict[str, Any]:
    return {
        "id": outcome.generation_id,
        "provider": provider_label(outcome),
        "model": outcome.model,
        "object": obj,
        "created": outcome.created,
        "system_fingerprint": None,
    }


def citations(outcome: JobOutcome) -> list[dict[str, Any]]:
    """The pages a grounded job drew on, as OpenRouter's web search cites them
    (``url_citation``; OpenAI's type requires the positions, which are 0: the answer is an
    image, not a text that quotes them)."""
    sources = (outcome.grounding or {}).get("sources") or []
    return [
        {
            "type": "url_citation",
            "url_citation": {
                "url": s["url"],
                "title": s.get("title") or s["url"],
                "start_index": 0,
                "end_index": 0,
            },
        }
        for s in sources
        if s.get("url")
    ]


def reasoning_details(outcome: JobOutcome) -> list[dict[str, Any]] | None:
    """What continues the conversation from this answer, for the client to send back
    (``continuation``); None when there is nothing to continue."""
    if not (
        outcome.images and outcome.continuation and outcome.provider and outcome.provider_model
    ):
        return None
    return [continuation.entry(outcome.provider, outcome.provider_model, outcome.continuation)]


def completion(outcome: JobOutcome) -> SplicedBody:
    """The JSON body of a non-streaming answer (a succeeded job or a content outcome)."""
    splicer = Splicer()
    finish, native = finish_reasons(outcome)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": message_text(outcome),
        "refusal": None,
        "reasoning": None,
    }
    details = reasoning_details(outcome)
    if details:
        message["reasoning_details"] = details
    if outcome.images:
        message["images"] = [
            {"type": "image_url", "image_url": {"url": splicer.data_url(img.mime_type, img.data)}}
            for img in outcome.images
        ]
    cited = citations(outcome)
    if cited:
        message["annotations"] = cited
    doc = _envelope(outcome, "chat.completion")
    doc["choices"] = [
        {
            "logprobs": None,
            "finish_reason": finish,
            "native_finish_reason": native,
            "index": 0,
            "message": message,
        }
    ]
    doc["usage"] = usage(outcome)
    return splicer.render(doc)


def _event(splicer: Splicer, doc: dict[str, Any]) -> bytes:
    return b"".join((b"data: ", splicer.dumps(doc), b"\n\n"))


def _chunk(
    outcome: JobOutcome, delta: dict[str, Any], finish: str | None = None, native: str | None = None
) -> dict[str, Any]:
    doc = _envelope(outcome, "chat.completion.chunk")
    doc["choices"] = [
        {
            "index": 0,
            "delta": delta,
            "finish_reason": finish,
            "native_finish_reason": native,
            "logprobs": None,
        }
    ]
    return doc


def stream_events(outcome: JobOutcome) -> Iterator[bytes]:
    """The SSE events after the keep-alives: text, images, finish with usage, ``[DONE]``."""
    text = message_text(outcome)
    if text or not outcome.images:
        yield _event(Splicer(), _chunk(outcome, {"role": "assistant", "content": text}))
    for pos, img in enumerate(outcome.images):
        splicer = Splicer()  # one per event: each image is encoded only when it is sent
        image = {
            "type": "image_url",
            "image_url": {"url": splicer.data_url(img.mime_type, img.data)},
            "index": pos,
        }
        delta: dict[str, Any] = {"role": "assistant", "content": "", "images": [image]}
        details = reasoning_details(outcome) if pos == 0 else None
        if details:
            delta["reasoning_details"] = details
        yield _event(splicer, _chunk(outcome, delta))
    finish, native = finish_reasons(outcome)
    cited = citations(outcome)
    last = _chunk(
        outcome, {"content": "", **({"annotations": cited} if cited else {})}, finish, native
    )
    last["usage"] = usage(outcome)
    yield _event(Splicer(), last)
    yield DONE


def stream_error(outcome: JobOutcome, problem: Problem) -> bytes:
    """The mid-stream error event: top-level ``error``, ``finish_reason: "error"``; the stream
    ends after it."""
    doc = _envelope(outcome, "chat.completion.chunk")
    doc["error"] = openrouter_error(problem)["error"]
    doc["choices"] = [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    return _event(Splicer(), doc)
