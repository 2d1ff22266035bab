"""The Gemini API's wire format, pure: requests, ``GenerateContentResponse`` -> our types, errors.

``build_request`` gives the REST JSON of a call (what the SDK sends, in canonical proto-JSON form)
for fixture tests; ``sdk_request`` gives the same call as SDK objects for sending.  Answers are
the SDK's ``GenerateContentResponse`` objects (already decoded: ``inline_data.data`` is bytes), so
fixture tests build them with ``GenerateContentResponse.model_validate_json``.

google-genai is imported inside the functions that need it: loading it costs ~0.5 s, and
importing the provider registry must stay cheap for ``nanobanana --help``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..catalog import EXTENDED_RATIOS, STANDARD_RATIOS, ModelSpec
from ..errors import (
    AmbiguousError,
    AuthenticationError,
    BlockedError,
    InvalidResponseError,
    ModelNotServedError,
    NanobananaError,
    PaymentRequiredError,
    QuotaError,
    UpstreamBadRequest,
    UpstreamUnavailable,
)
from ..imaging import b64decode, b64encode, inspect_image
from ..types import (
    Grounding,
    Image,
    ImageEvent,
    PriorTurn,
    Source,
    TextDelta,
    Usage,
    UsageEvent,
)
from .base import FinishEvent, ProviderCall, ProviderEvent, ProviderResponse
from .common import (
    content_error,
    is_block_reason,
    parse_seconds,
    retry_in_from_message,
    says_per_day,
    scrub,
)

if TYPE_CHECKING:
    from google.genai import errors as genai_errors
    from google.genai import types as genai_types

__all__ = [
    "GeminiStreamState",
    "build_request",
    "end_of_stream",
    "error_from_api",
    "estimate_cost",
    "parse_chunk",
    "parse_models",
    "parse_response",
    "parse_usage",
    "sdk_request",
]

PROVIDER = "google"
LABEL = "Gemini"


# ================================================================================== requests
def response_modalities(call: ProviderCall) -> list[str]:
    return ["TEXT", "IMAGE"] if call.model.outputs_text else ["IMAGE"]


#: The placeholder signature Google's Gemini 3 guide allows on a model turn that did not come
#: from the model (docs/providers.md, "Conversations").
FOREIGN_SIGNATURE = "skip_thought_signature_validator"

#: One part of a content, neutral between the REST JSON and the SDK's objects: ("text", str,
#: signature) or ("image", ReferenceImage, signature); a signature is base64 text or None.
_Part = tuple[str, Any, str | None]


def _contents(call: ProviderCall) -> list[tuple[str, list[_Part]]]:
    """(role, parts) of every turn: the history, then this call's prompt (text part first)."""
    out: list[tuple[str, list[_Part]]] = []
    for turn in call.history:
        user: list[_Part] = [("text", turn.prompt, None)]
        user.extend(("image", ref, None) for ref in turn.references)
        out.append(("user", user))
        out.append(("model", _model_parts(turn, call.wire_model)))
    current: list[_Part] = [("text", call.prompt, None)]
    current.extend(("image", ref, None) for ref in call.images)
    out.append(("user", current))
    return out


def _model_parts(turn: PriorTurn, wire_model: str) -> list[_Part]:
    """A model turn as this model answered it (every part with its signature, as received),
    or, from another model or provider, its text and images under the placeholder signature."""
    parts: list[_Part] = []
    if turn.made_by(PROVIDER, wire_model):
        assert turn.continuation is not None
        # Read with care: a drop-in client hands it back (server.compat.continuation).
        kept = turn.continuation.get("parts")
        for part in kept if isinstance(kept, list) else ():
            if not isinstance(part, dict):
                continue
            signature = _signature_or_none(part.get("thoughtSignature"))
            text, image = part.get("text"), part.get("image")
            if isinstance(text, str):
                parts.append(("text", text, signature))
            elif type(image) is int and 0 <= image < len(turn.images):
                parts.append(("image", turn.images[image], signature))
    else:
        if turn.text:
            parts.append(("text", turn.text, None))
        parts.extend(("image", img, FOREIGN_SIGNATURE) for img in turn.images)
    note = turn.left_out_note()
    if note or not parts:
        parts.append(("text", note or "[no answer]", None))
    return parts


def build_request(call: ProviderCall) -> dict[str, Any]:
    """The REST body of ``models/{model}:generateContent`` for one image (text part first)."""
    contents = []
    for role, parts in _contents(call):
        rest = []
        for kind, value, signature in parts:
            part: dict[str, Any] = (
                {"text": value}
                if kind == "text"
                else {"inlineData": {"mimeType": value.mime_type, "data": b64encode(value.data)}}
            )
            if signature is not None:
                part["thoughtSignature"] = signature
            rest.append(part)
        contents.append({"role": role, "parts": rest})
    config: dict[str, Any] = {
        "responseModalities": response_modalities(call),
        # More than one candidate is refused by the image models: n images = n calls.
        "candidateCount": 1,
    }
    image_config: dict[str, str] = {}
    if call.aspect_ratio:
        image_config["aspectRatio"] = call.aspect_ratio
    if call.image_size:
        image_config["imageSize"] = call.image_size
    if image_config:
        config["imageConfig"] = image_config
    if call.seed is not None:
        config["seed"] = call.seed
    if call.thinking:
        config["thinkingConfig"] = {"thinkingLevel": call.thinking.upper()}
    body: dict[str, Any] = {"contents": contents, "generationConfig": config}
    if call.google_search:
        body["tools"] = [{"googleSearch": {}}]
    return body


def _signature_or_none(value: Any) -> str | None:
    """A kept signature that is base64 text, else None (the part goes without one)."""
    if not isinstance(value, str) or not value:
        return None
    if value == FOREIGN_SIGNATURE:
        return value
    try:
        b64decode(value)
    except ValueError:
        return None
    return value


def _signature_bytes(signature: str | None) -> bytes | None:
    if signature is None:
        return None
    if signature == FOREIGN_SIGNATURE:
        return signature.encode()
    return b64decode(signature)


def sdk_request(
    call: ProviderCall, *, timeout_ms: int | None = None
) -> tuple[list[genai_types.Content], genai_types.GenerateContentConfig]:
    """The same call as google-genai objects: (contents, config)."""
    from google.genai import types

    contents = []
    for role, parts in _contents(call):
        sdk_parts = []
        for kind, value, signature in parts:
            part = (
                types.Part.from_text(text=value)
                if kind == "text"
                else types.Part.from_bytes(data=value.data, mime_type=value.mime_type)
            )
            if signature is not None:
                part.thought_signature = _signature_bytes(signature)
            sdk_parts.append(part)
        contents.append(types.Content(role=role, parts=sdk_parts))
    image_config = None
    if call.aspect_ratio or call.image_size:
        image_config = types.ImageConfig(aspect_ratio=call.aspect_ratio, image_size=call.image_size)
    config = types.GenerateContentConfig(
        response_modalities=response_modalities(call),
        candidate_count=1,
        image_config=image_config,
        seed=call.seed,
        thinking_config=(
            types.ThinkingConfig(thinking_level=types.ThinkingLevel(call.thinking.upper()))
            if call.thinking
            else None
        ),
        tools=[types.Tool(google_search=types.GoogleSearch())] if call.google_search else None,
        http_options=types.HttpOptions(timeout=timeout_ms) if timeout_ms else None,
    )
    return contents, config


# ================================================================================= responses
def _name(value: Any) -> str | None:
    """An SDK enum (or a plain string) -> its wire name."""
    if value is None:
        return None
    name = getattr(value, "value", value)
    return str(name) if name else None


def _image(data: bytes | None, *, index: int) -> Image:
    if not data:
        raise InvalidResponseError(f"{LABEL} returned an empty image.", provider=PROVIDER)
    try:
        mime, width, height = inspect_image(data)
    except ValueError as exc:
        raise InvalidResponseError(
            f"{LABEL} returned image data that is not a valid image ({exc}).", provider=PROVIDER
        ) from exc
    return Image(data=data, mime_type=mime, width=width, height=height, index=index)


def _parts(
    candidate: Any, first_index: int, kept: list[dict[str, Any]] | None = None
) -> tuple[str, list[Image]]:
    """Text and images of a candidate; ``thought`` parts (drafts of thinking models) skipped.

    ``kept`` receives each part as a later turn sends it back (``continuation``): the text, or
    the image by its index in the answer, with the part's thought signature as received."""
    content = getattr(candidate, "content", None)
    texts: list[str] = []
    images: list[Image] = []
    for part in getattr(content, "parts", None) or ():
        if part.thought:
            continue
        entry: dict[str, Any] | None = None
        if part.inline_data is not None:
            entry = {"image": first_index + len(images)}
            images.append(_image(part.inline_data.data, index=first_index + len(images)))
        elif part.text:
            entry = {"text": part.text}
            texts.append(part.text)
        if entry is not None and kept is not None:
            if part.thought_signature:
                entry["thoughtSignature"] = b64encode(part.thought_signature)
            kept.append(entry)
    return "".join(texts), images


def parse_grounding(meta: Any) -> Grounding | None:
    """A candidate's ``groundingMetadata`` -> what the search looked up (web and image
    searches; ``None`` when the answer reports none)."""
    if meta is None:
        return None
    sources = []
    for chunk in meta.grounding_chunks or ():
        found = chunk.web or chunk.image
        url = found and (getattr(found, "uri", None) or getattr(found, "source_uri", None))
        if url:
            sources.append(Source(url=url, title=found.title or found.domain))
    entry = meta.search_entry_point
    return Grounding.of(
        [*(meta.web_search_queries or ()), *(meta.image_search_queries or ())],
        sources,
        (entry.rendered_content if entry is not None else None) or None,
    )


def parse_usage(meta: Any, model: ModelSpec, *, image_size: str | None, images: int) -> Usage:
    """``usageMetadata`` -> ``Usage``; ``cost`` is an estimate from the catalog's prices."""
    if meta is None:
        return Usage()
    image_tokens: int | None = None
    for detail in meta.candidates_tokens_details or ():
        if _name(detail.modality) == "IMAGE" and detail.token_count is not None:
            image_tokens = (image_tokens or 0) + detail.token_count
    usage = Usage(
        input_tokens=meta.prompt_token_count,
        output_tokens=meta.candidates_token_count,
        total_tokens=meta.total_token_count,
        image_tokens=image_tokens,
    )
    usage.cost = estimate_cost(
        model,
        prompt_tokens=meta.prompt_token_count,
        output_tokens=meta.candidates_token_count,
        thought_tokens=meta.thoughts_token_count,
        image_tokens=image_tokens,
        image_size=image_size,
        images=images,
    )
    usage.cost_is_estimate = usage.cost is not None
    return usage


def estimate_cost(
    model: ModelSpec,
    *,
    prompt_tokens: int | None,
    output_tokens: int | None,
    thought_tokens: int | None = None,
    image_tokens: int | None,
    image_size: str | None = None,
    images: int = 1,
) -> float | None:
    """USD: image tokens at the image-output price, prompt tokens at the input price, other
    output (text, thoughts) at the text-output price.  ``None`` without an image price."""
    p = model.pricing
    if p.output_image_per_mtok is None:
        return None
    if image_tokens is None:  # no per-modality detail: the catalog's tokens per image
        per_image = p.image_tokens.get(image_size or "1K")
        image_tokens = per_image * images if per_image is not None else (output_tokens or 0)
    cost = image_tokens * p.output_image_per_mtok
    if prompt_tokens and p.input_per_mtok is not None:
        cost += prompt_tokens * p.input_per_mtok
    other = max((output_tokens or 0) - image_tokens, 0) + (thought_tokens or 0)
    if other and p.output_text_per_mtok is not None:
        cost += other * p.output_text_per_mtok
    return cost / 1_000_000


def _prompt_block(resp: Any) -> BlockedError | None:
    feedback = getattr(resp, "prompt_feedback", None)
    reason = _name(getattr(feedback, "block_reason", None))
    if not reason or reason == "BLOCKED_REASON_UNSPECIFIED":
        return None
    message = getattr(feedback, "block_reason_message", None) or ""
    detail = f": {message}" if message else ""
    return BlockedError(
        f"{LABEL} blocked the prompt ({reason}){detail}.",
        provider=PROVIDER,
        reason=reason,
        text=message or None,
    )


def _no_image(finish: str | None, text: str, finish_message: str | None) -> NanobananaError:
    said = text or finish_message or ""
    return content_error(
        provider=PROVIDER,
        label=LABEL,
        reason=finish,
        text=said,
        finish_reason=finish,
        blocked=is_block_reason(finish),
    )


def parse_response(
    resp: genai_types.GenerateContentResponse,
    *,
    model: ModelSpec,
    image_size: str | None = None,
) -> ProviderResponse:
    """An answer -> verified images; or a ``BlockedError`` / ``NoImageError`` saying why not."""
    blocked = _prompt_block(resp)
    if blocked is not None:
        raise blocked
    if not resp.candidates:
        raise InvalidResponseError(
            f"{LABEL} returned an answer without candidates.",
            provider=PROVIDER,
            request_id=resp.response_id,
        )
    candidate = resp.candidates[0]
    kept: list[dict[str, Any]] = []
    try:
        text, images = _parts(candidate, 0, kept)
    except InvalidResponseError as exc:
        exc.request_id = resp.response_id
        raise
    finish = _name(candidate.finish_reason)
    if not images:
        raise _no_image(finish, text, candidate.finish_message)
    return ProviderResponse(
        images=images,
        text=text,
        usage=parse_usage(resp.usage_metadata, model, image_size=image_size, images=len(images)),
        finish_reason=finish,
        request_id=resp.response_id,
        served_model=resp.model_version,
        grounding=parse_grounding(candidate.grounding_metadata),
        continuation={"parts": kept},
    )


@dataclass
class GeminiStreamState:
    """What a stream has said so far; ``parse_chunk`` updates it, ``end_of_stream`` judges it."""

    model: ModelSpec
    image_size: str | None = None
    request_id: str | None = None
    served_model: str | None = None
    finish_reason: str | None = None
    finish_message: str | None = None
    blocked: BlockedError | None = None
    text: list[str] = field(default_factory=list)
    images: int = 0
    chunks: int = 0
    usage_metadata: Any = None
    grounding: Grounding | None = None
    #: The answer's parts as a later turn sends them back (``continuation``).
    parts: list[dict[str, Any]] = field(default_factory=list)


def parse_chunk(
    chunk: genai_types.GenerateContentResponse, state: GeminiStreamState
) -> list[ProviderEvent]:
    """One streamed ``GenerateContentResponse`` -> text and image events."""
    state.chunks += 1
    state.request_id = state.request_id or chunk.response_id
    state.served_model = chunk.model_version or state.served_model
    state.blocked = state.blocked or _prompt_block(chunk)
    if chunk.usage_metadata is not None:
        state.usage_metadata = chunk.usage_metadata  # cumulative: the last one counts
    events: list[ProviderEvent] = []
    if chunk.candidates:
        candidate = chunk.candidates[0]
        text, images = _parts(candidate, state.images, state.parts)
        if text:
            state.text.append(text)
            events.append(TextDelta(text))
        state.images += len(images)
        events.extend(ImageEvent(img) for img in images)
        state.finish_reason = _name(candidate.finish_reason) or state.finish_reason
        state.finish_message = candidate.finish_message or state.finish_message
        state.grounding = Grounding.merge(
            state.grounding, parse_grounding(candidate.grounding_metadata)
        )
    return events


def end_of_stream(state: GeminiStreamState) -> list[ProviderEvent]:
    """The stream is over: usage and a ``FinishEvent``, or the error for how it ended."""
    if state.blocked is not None:
        raise state.blocked
    if state.finish_reason is None:
        raise AmbiguousError(
            f"{LABEL}'s stream ended without a finish reason; the request may have been billed.",
            provider=PROVIDER,
            request_id=state.request_id,
        )
    if state.images == 0:
        raise _no_image(state.finish_reason, "".join(state.text), state.finish_message)
    usage = parse_usage(
        state.usage_metadata, state.model, image_size=state.image_size, images=state.images
    )
    return [
        UsageEvent(usage),
        FinishEvent(
            finish_reason=state.finish_reason,
            request_id=state.request_id,
            served_model=state.served_model,
            grounding=state.grounding,
            continuation={"parts": state.parts},
        ),
    ]


# ==================================================================================== errors
def error_from_api(
    exc: genai_errors.APIError, *, api_key: str | None = None, in_band: bool = False
) -> NanobananaError:
    """google-genai's ``APIError`` (``.code``, ``.status``, ``.message``, ``.details``) ->
    our tree.  ``in_band``: the error came inside a stream that had already started."""
    code = exc.code if isinstance(exc.code, int) else None
    status = exc.status if isinstance(exc.status, str) else None
    message = scrub(str(exc.message or ""), api_key)
    body = exc.details
    err = body.get("error", body) if isinstance(body, dict) else {}
    details = [d for d in (err.get("details") or []) if isinstance(d, dict)]
    reasons = [str(d.get("reason")) for d in details if d.get("reason")]
    upstream_code = reasons[0] if reasons else status
    where = " ".join(str(x) for x in (code, status) if x is not None) or "error"
    text = f"{LABEL} error ({where}): {message}" if message else f"{LABEL} error ({where})."
    kw: dict[str, Any] = {
        "provider": PROVIDER,
        "status": code,
        "upstream_code": upstream_code,
        "may_be_billed": in_band and (code is None or code >= 500),
    }
    hint = "Check the Gemini API key (GEMINI_API_KEY or `nanobanana keys set google`)."
    if code == 400 and ("API_KEY_INVALID" in reasons or "api key not valid" in message.lower()):
        return AuthenticationError(f"{text} {hint}", **kw)
    if code in (401, 403):
        if any("BILLING" in r.upper() for r in reasons) or "billing" in message.lower():
            return PaymentRequiredError(f"{text} Enable billing for the project.", **kw)
        return AuthenticationError(f"{text} {hint}", **kw)
    if code == 429:
        delay = next(
            (d.get("retryDelay") for d in details if str(d.get("@type", "")).endswith("RetryInfo")),
            None,
        )
        quota_ids = [
            str(v.get(k, ""))
            for d in details
            if str(d.get("@type", "")).endswith("QuotaFailure")
            for v in d.get("violations") or []
            if isinstance(v, dict)
            for k in ("quotaId", "quotaMetric")
        ]
        per_day = says_per_day(*quota_ids) if quota_ids else says_per_day(message)
        retry_after = parse_seconds(delay)
        if retry_after is None:
            retry_after = retry_in_from_message(message)
        return QuotaError(text, per_day=per_day, retry_after=retry_after, **kw)
    if code is None or code == 408 or code >= 500:
        return UpstreamUnavailable(text, **kw)
    if code == 404 and status == "NOT_FOUND" and "models/" in message:
        return ModelNotServedError(text, **kw)
    if 400 <= code < 500:
        return UpstreamBadRequest(text, **kw)
    return InvalidResponseError(f"{LABEL} answered with unexpected HTTP {code}.", **kw)


# ==================================================================================== models
def parse_models(models: Iterable[genai_types.Model]) -> list[ModelSpec]:
    """The image-output models of ``GET /v1beta/models`` (name contains "image" and the model
    serves ``generateContent``; Imagen's ``predict`` models are left out)."""
    out: list[ModelSpec] = []
    for m in models:
        name = m.name or ""
        model_id = name.removeprefix("models/")
        actions = m.supported_actions or []
        if "image" not in model_id.lower() or (actions and "generateContent" not in actions):
            continue
        out.append(
            ModelSpec(
                id=model_id,
                name=m.display_name or model_id,
                description=(m.description or "").strip(),
                provider_ids={PROVIDER: model_id},
                # Unknown capabilities: accept what the caller asks and let the upstream refuse.
                aspect_ratios=STANDARD_RATIOS + EXTENDED_RATIOS,
                sizes=("0.5K", "1K", "2K", "4K"),
                discovered=True,
            )
        )
    return out
