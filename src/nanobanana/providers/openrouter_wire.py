"""OpenRouter's wire format, pure: request bodies, answers, stream chunks, the model list.

No I/O here: every function takes bytes or plain data and returns our types or raises an error
from ``nanobanana.errors``; the tests drive them from JSON fixtures.  Images are decoded from the
raw body without turning their payload into a ``str`` (see ``datauri``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from ..catalog import EXTENDED_RATIOS, STANDARD_RATIOS, THINKING_LEVELS, ModelSpec, Pricing
from ..errors import AmbiguousError, InvalidResponseError, NanobananaError, UpstreamUnavailable
from ..imaging import to_data_url
from ..types import (
    Grounding,
    Image,
    ImageEvent,
    ReferenceImage,
    Source,
    TextDelta,
    Usage,
    UsageEvent,
)
from .base import FinishEvent, KeyStatus, ProviderCall, ProviderEvent, ProviderResponse
from .common import content_error, is_block_reason
from .datauri import decode_data_url, loads_with_payloads, restore
from .openrouter_errors import LABEL, PROVIDER, error_from_payload

D = TypeVar("D", dict[str, Any], list[Any])

__all__ = [
    "StreamState",
    "build_request",
    "end_of_stream",
    "parse_event",
    "parse_models",
    "parse_response",
    "parse_usage",
]


def build_request(call: ProviderCall, *, stream: bool = False) -> dict[str, Any]:
    """The JSON body of one chat-completions call that should produce one image."""
    body: dict[str, Any] = {
        "model": call.wire_model,
        "messages": _messages(call),
        # Without modalities no image comes back; image-only models refuse "text".
        "modalities": call.model.modalities,
    }
    image_config: dict[str, Any] = dict(call.image_options)
    if call.aspect_ratio:
        image_config["aspect_ratio"] = call.aspect_ratio
    if call.image_size:
        image_config["image_size"] = call.image_size
    if image_config:
        body["image_config"] = image_config
    if call.seed is not None:
        body["seed"] = call.seed
    if call.thinking:
        # OpenRouter maps reasoning.effort onto Gemini's thinkingLevel one for one.
        body["reasoning"] = {"effort": call.thinking}
    if call.google_search:
        # The web plugin with the provider's own search: Google Search for Google's models.
        body["plugins"] = [{"id": "web", "engine": "native"}]
    body["stream"] = stream
    return body


def _messages(call: ProviderCall) -> list[dict[str, Any]]:
    """The conversation: each earlier turn as a user message and the assistant's answer, then
    this call's prompt.  Image parts go in user messages only (the API reference's ``Message``
    type: "ContentParts are only for the user role"), so the images an answer drew open the
    next user message; an answer's ``reasoning_details`` go back on it unchanged when this model
    gave them ("Preserving reasoning blocks")."""
    messages: list[dict[str, Any]] = []
    drawn: tuple[ReferenceImage, ...] = ()
    for turn in call.history:
        messages.append(_user_message(turn.prompt, drawn, turn.references))
        answer: dict[str, Any] = {
            "role": "assistant",
            "content": " ".join(t for t in (turn.text, turn.left_out_note()) if t),
        }
        if turn.made_by(PROVIDER, call.wire_model):
            assert turn.continuation is not None
            details = turn.continuation.get("reasoning_details")
            if isinstance(details, list) and details and all(isinstance(d, dict) for d in details):
                answer["reasoning_details"] = details
        messages.append(answer)
        drawn = turn.images
    messages.append(_user_message(call.prompt, drawn, call.images))
    return messages


def _user_message(
    prompt: str, drawn: Iterable[ReferenceImage], references: Iterable[ReferenceImage]
) -> dict[str, Any]:
    """The model's last images, then the prompt, then the references given with it."""
    content: list[dict[str, Any]] = [_image_part(img) for img in drawn]
    content.append({"type": "text", "text": prompt})
    content.extend(_image_part(ref) for ref in references)
    return {"role": "user", "content": content}


def _image_part(ref: ReferenceImage) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": to_data_url(ref)}}


def parse_usage(usage: Any) -> Usage:
    """Token counts and the billed ``cost`` (USD, reported by OpenRouter, not estimated)."""
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("completion_tokens_details")
    image_tokens = details.get("image_tokens") if isinstance(details, dict) else None
    cost = usage.get("cost")
    return Usage(
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        total_tokens=_int(usage.get("total_tokens")),
        image_tokens=_int(image_tokens),
        cost=_float(cost),
    )


def parse_response(
    body: bytes | bytearray,
    *,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    api_key: str | None = None,
) -> ProviderResponse:
    """A 200 body -> decoded, verified images; or the error it carries (error-in-200, a block,
    a text-only answer)."""
    try:
        doc, payloads = loads_with_payloads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidResponseError(
            f"{LABEL} returned a body that is not JSON.", provider=PROVIDER, request_id=request_id
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidResponseError(
            f"{LABEL} returned JSON that is not an object.",
            provider=PROVIDER,
            request_id=request_id,
        )
    rid = request_id or _str(doc.get("id"))
    if doc.get("error"):
        raise error_from_payload(doc["error"], headers=headers, request_id=rid, api_key=api_key)
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise InvalidResponseError(
            f"{LABEL} returned an answer without choices.", provider=PROVIDER, request_id=rid
        )
    choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text, images = _content(message, payloads, 0, rid)
    finish = _str(choice.get("finish_reason"))
    native = _str(choice.get("native_finish_reason"))
    if not images:
        raise _no_image(finish, native, text, rid)
    return ProviderResponse(
        images=images,
        text=text,
        usage=parse_usage(doc.get("usage")),
        finish_reason=native or finish,
        request_id=rid,
        served_model=_str(doc.get("model")),
        grounding=parse_annotations(message.get("annotations")),
        continuation=_continuation(message.get("reasoning_details")),
    )


def _continuation(details: Any) -> dict[str, Any] | None:
    """What continues a reasoning turn: the message's ``reasoning_details``, as received."""
    if isinstance(details, list) and details:
        return {"reasoning_details": details}
    return None


@dataclass
class StreamState:
    """What a stream has said so far; ``parse_event`` updates it, ``end_of_stream`` judges it."""

    request_id: str | None = None
    served_model: str | None = None
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    text: list[str] = field(default_factory=list)
    images: int = 0
    #: ``data: [DONE]`` was received.
    done: bool = False
    #: A mid-stream error: raised by the sender after the events of the same chunk.
    error: NanobananaError | None = None
    #: Pages the web search cited (``annotations`` of the deltas).
    grounding: Grounding | None = None
    #: The deltas' ``reasoning_details``, in order.
    reasoning_details: list[Any] = field(default_factory=list)


def parse_annotations(annotations: Any) -> Grounding | None:
    """The ``url_citation`` annotations of a message (OpenRouter's web-search guide): the
    pages a web search drew on; ``None`` without any."""
    if not isinstance(annotations, list):
        return None
    sources = []
    for item in annotations:
        cite = item.get("url_citation") if isinstance(item, dict) else None
        url = _str(cite.get("url")) if isinstance(cite, dict) else None
        if isinstance(cite, dict) and url:
            sources.append(Source(url=url, title=_str(cite.get("title"))))
    return Grounding.of(sources=sources)


def parse_event(
    data: bytes, state: StreamState, *, api_key: str | None = None
) -> list[ProviderEvent]:
    """One SSE ``data`` payload -> events.  A mid-stream error is stored in ``state.error``
    (raise it after yielding the returned events)."""
    if data.strip() == b"[DONE]":
        state.done = True
        return []
    try:
        doc, payloads = loads_with_payloads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidResponseError(
            f"{LABEL} sent a stream event that is not JSON.",
            provider=PROVIDER,
            request_id=state.request_id,
        ) from exc
    if not isinstance(doc, dict):
        return []
    state.request_id = state.request_id or _str(doc.get("id"))
    state.served_model = _str(doc.get("model")) or state.served_model
    events: list[ProviderEvent] = []
    choices = doc.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if isinstance(choice, dict):
        delta = choice.get("delta") or choice.get("message") or {}
        if isinstance(delta, dict):
            text, images = _content(delta, payloads, state.images, state.request_id)
            if text:
                state.text.append(text)
                events.append(TextDelta(text))
            state.images += len(images)
            events.extend(ImageEvent(img) for img in images)
            cited = parse_annotations(delta.get("annotations"))
            state.grounding = Grounding.merge(state.grounding, cited)
            details = delta.get("reasoning_details")
            if isinstance(details, list):
                state.reasoning_details.extend(details)
        state.finish_reason = _str(choice.get("finish_reason")) or state.finish_reason
        state.native_finish_reason = (
            _str(choice.get("native_finish_reason")) or state.native_finish_reason
        )
    if isinstance(doc.get("usage"), dict):
        events.append(UsageEvent(parse_usage(doc["usage"])))
    if doc.get("error"):
        state.error = error_from_payload(doc["error"], request_id=state.request_id, api_key=api_key)
    elif state.finish_reason == "error":
        state.error = _no_image("error", state.native_finish_reason, "", state.request_id)
    return events


def end_of_stream(state: StreamState) -> FinishEvent:
    """The stream is over: a ``FinishEvent``, or the error for how it ended."""
    if state.error is not None:
        raise state.error
    if not state.done and state.finish_reason is None:
        raise AmbiguousError(
            f"{LABEL}'s stream ended before it finished (no finish reason, no [DONE]); "
            "the request may have been billed.",
            provider=PROVIDER,
            request_id=state.request_id,
        )
    if state.images == 0:
        raise _no_image(
            state.finish_reason, state.native_finish_reason, "".join(state.text), state.request_id
        )
    return FinishEvent(
        finish_reason=state.native_finish_reason or state.finish_reason,
        request_id=state.request_id,
        served_model=state.served_model,
        grounding=state.grounding,
        continuation=_continuation(state.reasoning_details),
    )


def _data_of(body: bytes | bytearray, what: str, kind: type[D]) -> D:
    """The ``data`` member of an OpenRouter ``{"data": ...}`` answer (``InvalidResponseError``
    naming ``what`` when the body is not JSON or has no ``data`` of that kind)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidResponseError(
            f"{LABEL}'s {what} is not JSON.", provider=PROVIDER, may_be_billed=False
        ) from exc
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, kind):
        raise InvalidResponseError(
            f"{LABEL}'s {what} has no data.", provider=PROVIDER, may_be_billed=False
        )
    return data


def parse_key_status(body: bytes | bytearray) -> KeyStatus:
    """``GET /key`` -> what OpenRouter says about the key: its limit, what is left, its usage.
    The ``label`` (a masked form of the key itself) is not kept."""
    data = _data_of(body, "key information", dict)
    free = data.get("is_free_tier")
    return KeyStatus(
        limit=_number(data.get("limit")),
        limit_remaining=_number(data.get("limit_remaining")),
        usage=_number(data.get("usage")),
        limit_reset=_str(data.get("limit_reset")),
        free_tier=free if isinstance(free, bool) else None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _thinking_levels(model: dict[str, Any]) -> tuple[str, ...] | None:
    """The thinking levels a listed model takes, from its ``reasoning`` object: without the
    object or its ``supported_efforts``, no effort choice (``()``); ``supported_efforts`` null,
    every level; else those it names (efforts with no Gemini thinking level, such as ``xhigh``
    or ``none``, left out)."""
    reasoning = model.get("reasoning")
    if not isinstance(reasoning, dict) or "supported_efforts" not in reasoning:
        return ()
    efforts = reasoning["supported_efforts"]
    if efforts is None:
        return None
    if not isinstance(efforts, list):
        return ()
    named = {e for e in efforts if isinstance(e, str)}
    return tuple(level for level in THINKING_LEVELS if level in named)


def parse_models(body: bytes | bytearray) -> list[ModelSpec]:
    """``GET /models?output_modalities=image`` -> discovered image models."""
    data = _data_of(body, "model list", list)
    out: list[ModelSpec] = []
    for m in data:
        if not isinstance(m, dict) or not _str(m.get("id")):
            continue
        arch = m["architecture"] if isinstance(m.get("architecture"), dict) else {}
        outputs = _modalities(arch.get("output_modalities"))
        if outputs and "image" not in outputs:
            continue  # the server ignored the filter
        inputs = _modalities(arch.get("input_modalities"))
        params = m.get("supported_parameters")
        model_id = m["id"]
        out.append(
            ModelSpec(
                id=model_id,
                name=_str(m.get("name")) or model_id,
                description=(_str(m.get("description")) or "").strip(),
                provider_ids={PROVIDER: model_id},
                # Unknown capabilities: accept what the caller asks and let the upstream refuse.
                aspect_ratios=STANDARD_RATIOS + EXTENDED_RATIOS,
                sizes=("0.5K", "1K", "2K", "4K"),
                outputs_text="text" in outputs if outputs else True,
                accepts_images="image" in inputs if inputs else True,
                gemini_sizes=model_id.startswith("google/gemini"),
                supports_seed=isinstance(params, list) and "seed" in params,
                thinking_levels=_thinking_levels(m),
                pricing=_pricing(m.get("pricing")),
                discovered=True,
            )
        )
    return out


def _content(
    msg: dict[str, Any], payloads: list[memoryview], first_index: int, request_id: str | None
) -> tuple[str, list[Image]]:
    """Text and images of a message or delta.  Images come in ``images`` as objects
    ``{"type":"image_url","image_url":{"url":...}}``, as ``{"image_url": url}`` or as bare
    data-URL strings; ``content`` may also be a list of parts or a data URL itself."""
    texts: list[str] = []
    urls: list[tuple[str, int | None]] = []
    content = msg.get("content")
    if isinstance(content, str):
        if content.startswith("data:image/"):
            urls.append((content, None))
        else:
            texts.append(restore(content, payloads))
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                url = _image_url(part)
                if url is not None:
                    urls.append((url, None))
                elif isinstance(part.get("text"), str):
                    texts.append(part["text"])
    items = msg.get("images")
    if isinstance(items, list):
        for item in items:
            url = _image_url(item)
            if url is None:
                raise InvalidResponseError(
                    f"{LABEL} returned an image entry of an unknown shape.",
                    provider=PROVIDER,
                    request_id=request_id,
                )
            idx = item.get("index") if isinstance(item, dict) else None
            urls.append((url, idx if isinstance(idx, int) and not isinstance(idx, bool) else None))
    images: list[Image] = []
    for url, idx in urls:
        index = idx if idx is not None else first_index + len(images)
        try:
            images.append(decode_data_url(url, payloads, provider=PROVIDER, index=index))
        except InvalidResponseError as exc:
            exc.request_id = exc.request_id or request_id
            raise
    return "".join(texts), images


def _image_url(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return None
    inner = item.get("image_url")
    if isinstance(inner, str):
        return inner
    if isinstance(inner, dict) and isinstance(inner.get("url"), str):
        return str(inner["url"])
    return item["url"] if isinstance(item.get("url"), str) else None


def _no_image(
    finish: str | None, native: str | None, text: str, request_id: str | None
) -> NanobananaError:
    if finish == "error":
        return UpstreamUnavailable(
            f"{LABEL}'s upstream failed during generation ({native or 'error'}); "
            "the request may have been billed.",
            provider=PROVIDER,
            upstream_code=native,
            request_id=request_id,
            may_be_billed=True,
        )
    blocked = finish == "content_filter" or is_block_reason(native)
    return content_error(
        provider=PROVIDER,
        label=LABEL,
        reason=native or finish,
        text=text,
        finish_reason=native or finish,
        blocked=blocked,
    )


def _modalities(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _pricing(p: Any) -> Pricing:
    """OpenRouter prices are USD-per-token *strings* ("0.0000003"; "-1" = variable)."""
    if not isinstance(p, dict):
        return Pricing()

    def per_mtok(name: str) -> float | None:
        value = _float(p.get(name))
        return value * 1_000_000 if value is not None and value >= 0 else None

    return Pricing(
        input_per_mtok=per_mtok("prompt"),
        output_text_per_mtok=per_mtok("completion"),
        output_image_per_mtok=per_mtok("image_output")
        if p.get("image_output") is not None
        else per_mtok("completion"),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
