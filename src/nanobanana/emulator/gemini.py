"""Gemini API routes (under both ``/v1`` and ``/v1beta``): generate, stream, models.

Faithful to reference §2: the key comes from ``x-goog-api-key`` (or ``?key=``), a missing key is
403 PERMISSION_DENIED and a bad one 400 API_KEY_INVALID; ``candidateCount`` > 1 is refused;
field names are accepted in lowerCamel or snake_case and base64 in either alphabet, padded or
not, as proto3 JSON allows; unknown fields are refused as the real parser refuses them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pybase64
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import gemini_wire as wire
from . import signatures
from .delivery import Reply, finish, wait_or_disconnect
from .inputs import INVALID_JSON, decode_base64, loads, ratio_for_shape, shape_of, sniff_image
from .models import GEMINI_MODELS, ModelSpec
from .scenarios import Plan, ScenarioError, strip_markers
from .state import Artifact, EmulatorState, estimate_tokens, random_id, state_of

__all__ = ["routes"]

_VERSIONS = ("v1", "v1beta")
_METHODS = ("generateContent", "streamGenerateContent")
_MODALITIES = ("TEXT", "IMAGE", "AUDIO")
_FLAKY_RETRY = 0.05
_DEFAULT_PAGE = 50
_MAX_PAGE = 1000


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _both(*camel: str) -> frozenset[str]:
    return frozenset(camel) | frozenset(_snake(c) for c in camel)


_REQUEST_FIELDS = _both(
    "model",
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "labels",
)
_GENERATION_FIELDS = _both(
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
)
_IMAGE_CONFIG_FIELDS = _both("aspectRatio", "imageSize")
_THINKING_FIELDS = _both("thinkingLevel", "thinkingBudget", "includeThoughts")
#: The members of a ``Tool`` (google-genai types).
_TOOL_FIELDS = _both(
    "functionDeclarations",
    "retrieval",
    "googleSearchRetrieval",
    "googleSearch",
    "googleMaps",
    "codeExecution",
    "urlContext",
    "computerUse",
    "fileSearch",
    "enterpriseWebSearch",
    "mcpServers",
)
#: ``ThinkingLevel`` (google-genai types); the REST examples write them in lower case.
_THINKING_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")


@dataclass(frozen=True)
class GenerateRequest:
    model: ModelSpec
    name: str  # as requested (model version echoed back)
    modalities: tuple[str, ...]  # lower case
    ratio: str
    size: str
    prompt: str
    texts: tuple[str, ...]
    reference_images: int
    google_search: bool = False


def _pick(obj: dict[str, Any], camel: str) -> Any:
    return obj[camel] if camel in obj else obj.get(_snake(camel))


def _object(value: Any, known: Iterable[str], where: str) -> dict[str, Any] | Reply:
    """A message field as the API reads it: an object (absent: empty) with no unknown member."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return wire.error(400, f"Invalid value at '{where}': expected an object")
    return _unknown(value, known, where) or value


def _unknown(obj: dict[str, Any], known: Iterable[str], where: str) -> Reply | None:
    extra = next((k for k in obj if k not in known), None)
    if extra is None:
        return None
    at = f" at '{where}'" if where else ""
    return wire.error(
        400, f'Invalid JSON payload received. Unknown name "{extra}"{at}: Cannot find field.'
    )


def _texts(body: Any) -> list[str]:
    """Every text of the contents after the last model turn: the turn being asked, where
    scenario markers are looked for (a marker of an earlier turn is history, not a plan)."""
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
        return []
    contents = body["contents"]
    answered = [
        i for i, c in enumerate(contents) if isinstance(c, dict) and c.get("role") == "model"
    ]
    return [
        part["text"]
        for content in contents[answered[-1] + 1 if answered else 0 :]
        if isinstance(content, dict) and isinstance(content.get("parts"), list)
        for part in content["parts"]
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]


def _auth_error(request: Request, state: EmulatorState) -> Reply | None:
    key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
    if not key:
        return wire.api_key_missing()
    if not state.config.key_is_valid(key):
        return wire.api_key_invalid()
    return None


# -- validation ---------------------------------------------------------------------------------


def _check_part(part: Any, where: str) -> tuple[str | None, int] | Reply:
    """(text or None, reference images) of one part, or the 400 a bad part earns."""
    if not isinstance(part, dict):
        return wire.error(400, f"Invalid value at '{where}': expected an object")
    if isinstance(part.get("text"), str):
        return part["text"], 0
    inline = _pick(part, "inlineData")
    if isinstance(inline, dict):
        mime, data = _pick(inline, "mimeType"), inline.get("data")
        if not isinstance(data, str) or not data:
            return wire.error(
                400,
                f"* GenerateContentRequest.{where}.inline_data.data: "
                "required field is not specified",
            )
        try:
            raw = decode_base64(data)
        except ValueError:
            return wire.error(
                400,
                f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), "
                f'Base64 decoding failed for "{data[:40]}"',
            )
        if not isinstance(mime, str) or not mime.startswith("image/"):
            return wire.error(400, f"Unsupported MIME type: {mime}")
        if sniff_image(raw) is None:
            return wire.error(
                400,
                "Unable to process input image. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
            )
        return None, 1
    if isinstance(_pick(part, "fileData"), dict):
        return None, 1
    return wire.error(
        400,
        f"* GenerateContentRequest.{where}.data: required oneof field 'data' "
        "must have one initialized field",
    )


_SIGNATURE_HELP = (
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior "
    "for more details."
)


def _check_signature(part: dict[str, Any], where: str) -> str | Reply | None:
    """A part's ``thoughtSignature`` (proto bytes: base64 in JSON), or the 400 a bad one earns."""
    signature = _pick(part, "thoughtSignature")
    if signature is None or signature in signatures.PLACEHOLDERS:
        return signature
    try:
        if not isinstance(signature, str):
            raise ValueError(signature)
        decode_base64(signature)
    except ValueError:
        return wire.error(
            400,
            f"Invalid value at '{where}.thought_signature' (TYPE_BYTES), "
            f'Base64 decoding failed for "{str(signature)[:40]}"',
        )
    return signature


def _check_model_turn(parts: list[Any], i: int, name: str) -> Reply | None:
    """An earlier model turn sent back to a model that signs: every image part with the
    signature it came with, and no signature altered (signatures.py)."""
    for j, part in enumerate(parts):
        signature = _check_signature(part, f"contents[{i}].parts[{j}]")
        if isinstance(signature, Reply):
            return signature
        if signature is None:
            if isinstance(_pick(part, "inlineData"), dict):
                return wire.error(
                    400,
                    f"Image part is missing a thought_signature in content position {i}, "
                    f"part position {j}. {_SIGNATURE_HELP}",
                )
        elif not signatures.verify(signature, name):
            return wire.error(400, "Corrupted thought signature.")
    return None


def _check_contents(
    contents: Any, model: ModelSpec, name: str
) -> tuple[list[str], str, int] | Reply:
    if not isinstance(contents, list) or not contents:
        return wire.error(400, "* GenerateContentRequest.contents: contents is not specified")
    texts: list[str] = []
    prompt, images = "", 0
    for i, content in enumerate(contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            return wire.error(
                400,
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.",
            )
        mine = []
        for j, part in enumerate(parts):
            checked = _check_part(part, f"contents[{i}].parts[{j}]")
            if isinstance(checked, Reply):
                return checked
            if checked[0] is not None:
                mine.append(checked[0])
            images += checked[1]
        role = content.get("role", "user")
        if role == "model" and model.signs_thoughts:
            bad = _check_model_turn(parts, i, name)
            if bad:
                return bad
        texts += mine
        if role == "user" and mine:
            prompt = " ".join(mine)
    return texts, prompt, images


def _reference_shape(contents: list[Any]) -> tuple[int, int] | None:
    """The shape of the first image in the last turn that holds one (already checked)."""
    for content in reversed(contents):
        for part in content.get("parts") or ():
            inline = _pick(part, "inlineData")
            if isinstance(inline, dict):
                return shape_of(decode_base64(inline["data"]))
    return None


def _check_modalities(config: dict[str, Any], model: ModelSpec) -> tuple[str, ...] | Reply:
    requested = _pick(config, "responseModalities")
    if requested is None:
        return ("text", "image") if model.makes_images else ("text",)
    if not isinstance(requested, list):
        return wire.error(
            400, "Invalid value at 'generation_config.response_modalities': expected a list"
        )
    modalities = []
    for i, item in enumerate(requested):
        if not isinstance(item, str) or item.upper() not in _MODALITIES:
            return wire.error(
                400,
                f"Invalid value at 'generation_config.response_modalities[{i}]' "
                f"(type.googleapis.com/google.ai.generativelanguage.v1beta."
                f'GenerationConfig.Modality), "{item}"',
            )
        modalities.append(item.lower())
    if not modalities:
        return ("text", "image") if model.makes_images else ("text",)
    if any(m not in model.outputs for m in modalities):
        return wire.error(
            400, "Model does not support the requested response modalities: " + ",".join(modalities)
        )
    return tuple(modalities)


def _check_tools(tools: Any, name: str, model: ModelSpec) -> bool | Reply:
    """Whether the request asks for Google Search; a 400 for a malformed ``tools``."""
    if tools is None:
        return False
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return wire.error(400, "Invalid value at 'tools': expected a list of Tool objects")
    for i, tool in enumerate(tools):
        checked = _object(tool, _TOOL_FIELDS, f"tools[{i}]")
        if isinstance(checked, Reply):
            return checked
    search = any(_pick(tool, "googleSearch") is not None for tool in tools)
    if search and not model.google_search:
        return wire.error(400, f"Search Grounding is not supported for models/{name}.")
    return search


def _check_thinking(value: Any, name: str, model: ModelSpec) -> Reply | None:
    thinking = _object(value, _THINKING_FIELDS, "generation_config.thinking_config")
    if isinstance(thinking, Reply):
        return thinking
    level = _pick(thinking, "thinkingLevel")
    if level is None:
        return None
    if not isinstance(level, str) or level.upper() not in _THINKING_LEVELS:
        return wire.error(
            400,
            "Invalid value at 'generation_config.thinking_config.thinking_level' "
            f"(type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingLevel), {level!r}",
        )
    allowed = model.thinking_levels
    if allowed is not None and level.lower() not in allowed:
        return wire.error(
            400,
            f"Thinking level {level.lower()} is not supported for models/{name}. "
            f"Supported levels: {', '.join(allowed)}.",
        )
    return None


def _validate(body: dict[str, Any], name: str, model: ModelSpec) -> GenerateRequest | Reply:
    bad = _unknown(body, _REQUEST_FIELDS, "")
    if bad:
        return bad
    checked = _check_contents(body.get("contents"), model, name)
    if isinstance(checked, Reply):
        return checked
    texts, prompt, images = checked
    search = _check_tools(body.get("tools"), name, model)
    if isinstance(search, Reply):
        return search
    config = _object(_pick(body, "generationConfig"), _GENERATION_FIELDS, "generation_config")
    if isinstance(config, Reply):
        return config
    count = _pick(config, "candidateCount")
    if isinstance(count, int) and count > 1:
        return wire.error(400, f"Multiple candidates is not enabled for models/{name}")
    modalities = _check_modalities(config, model)
    if isinstance(modalities, Reply):
        return modalities
    bad = _check_thinking(_pick(config, "thinkingConfig"), name, model)
    if bad:
        return bad
    image_config = _object(
        _pick(config, "imageConfig"), _IMAGE_CONFIG_FIELDS, "generation_config.image_config"
    )
    if isinstance(image_config, Reply):
        return image_config
    ratio = _pick(image_config, "aspectRatio")
    if not ratio and images:
        ratio = ratio_for_shape(model.ratios, _reference_shape(body["contents"]))
    ratio = ratio or "1:1"
    size = _pick(image_config, "imageSize") or "1K"
    if "image" in modalities:
        if ratio not in model.ratios:
            return wire.error(
                400,
                f"Unsupported aspect ratio: {ratio}. Supported ratios for "
                f"models/{name}: {', '.join(model.ratios)}",
            )
        if size not in model.sizes:
            return wire.error(
                400,
                f"Unsupported image size: {size}. Supported sizes for "
                f"models/{name}: {', '.join(model.sizes)}",
            )
    return GenerateRequest(
        model,
        name,
        modalities,
        str(ratio),
        str(size),
        strip_markers(prompt),
        tuple(texts),
        images,
        google_search=search,
    )


# -- answering ----------------------------------------------------------------------------------


def _error_outcome(state: EmulatorState, plan: Plan, model: str) -> tuple[str, Reply | None]:
    outcome = plan.outcome
    if outcome is None:
        return "ok", None
    name = outcome.name
    if name == "flaky":
        if not state.flaky_should_fail(outcome):
            return "ok", None
        return name, wire.error_for_status(outcome.integer(1, 429), model, _FLAKY_RETRY)
    if name in ("quota", "legacy-error"):
        return name, wire.quota(model, outcome.number(0, 1.0))
    if name == "quota-day":
        return name, wire.quota_day(model)
    if name == "payment":
        return name, wire.billing()
    if name == "server-error":
        return name, wire.server_error(outcome.integer(0, 500))
    return name, None


async def _generate(
    state: EmulatorState, req: GenerateRequest, plan: Plan, *, stream: bool, sse: bool
) -> Reply:
    name, failed = _error_outcome(state, plan, req.name)
    if failed is not None:
        return failed
    model, token = req.model, state.splice_token
    text_tokens = estimate_tokens(req.texts)
    prompt_tokens = estimate_tokens(req.texts, req.reference_images)
    if name in ("error-in-200", "midstream-error"):
        status = plan.outcome.integer(0, 500) if plan.outcome else 500
        inner = wire.error_body(status, wire.server_message(status))
        if not stream:
            return wire.json_reply(inner)
        lead = Artifact(None, "Generating your image", prompt_tokens, 5, 0)
        chunks = [] if name == "error-in-200" else _chunks(lead, req, token, text_tokens)
        return wire.stream_response(chunks, None, token, sse=sse, trailing_error=inner)

    if name in ("safety", "blocked-prompt"):
        art = Artifact(None, "", prompt_tokens, 0, 0)
    else:
        art = await state.artifact(
            plan,
            model,
            image="image" in req.modalities and name != "text-only",
            text="text" in req.modalities,
            ratio=req.ratio,
            size=req.size,
            prompt=req.prompt,
            texts=req.texts,
            references=req.reference_images,
        )
    response_id = random_id(22)
    chunks = wire.response_chunks(
        art,
        model_version=req.name,
        response_id=response_id,
        token=token,
        prompt_text_tokens=text_tokens,
        outcome=name,
        split=stream,
        grounding=wire.grounding_metadata(req.prompt, response_id) if req.google_search else None,
        signed=model.signs_thoughts,
    )
    if stream:
        return wire.stream_response(chunks, art.payload, token, sse=sse)
    return wire.generate_response(chunks, art.payload, token)


def _chunks(
    art: Artifact, req: GenerateRequest, token: str, text_tokens: int
) -> list[dict[str, Any]]:
    return wire.response_chunks(
        art,
        model_version=req.name,
        response_id=random_id(22),
        token=token,
        prompt_text_tokens=text_tokens,
        split=True,
    )


async def _model_action(request: Request, state: EmulatorState) -> Response:
    body = loads(await request.body())
    entry = state.record(request, "gemini", None if body is INVALID_JSON else body)
    name, _, method = request.path_params["target"].partition(":")
    if method not in _METHODS:
        return finish(entry, wire.error(404, f"Method not found: {method or '(none)'}"))
    try:
        plan = state.plan(request, _texts(body), "gemini")
    except ScenarioError as exc:
        return finish(entry, wire.error(400, f"emulator: {exc}"))
    entry["scenario"] = plan.texts
    if await wait_or_disconnect(request.receive, plan.latency):
        entry["status"] = 499
        return Response(status_code=499)
    reply = _auth_error(request, state) or await _answer(state, request, body, plan, name, method)
    return finish(entry, reply, plan.transport)


def _served(state: EmulatorState, name: str) -> ModelSpec | None:
    return GEMINI_MODELS.get(name) if state.serves(name) else None


async def _answer(
    state: EmulatorState, request: Request, body: Any, plan: Plan, name: str, method: str
) -> Reply:
    model = _served(state, name)
    if model is None:
        version = request.url.path.split("/")[1]
        return wire.error(
            404,
            f"models/{name} is not found for API version {version}, or is not supported for "
            f"{method}. Call ListModels to see the list of available models and their "
            "supported methods.",
        )
    if not isinstance(body, dict):
        return wire.error(400, "Invalid JSON payload received. Expected an object.")
    parsed = _validate(body, name, model)
    if isinstance(parsed, Reply):
        return parsed
    stream = method == "streamGenerateContent"
    sse = request.query_params.get("alt") == "sse"
    return await _generate(state, parsed, plan, stream=stream, sse=sse)


async def model_resource(request: Request) -> Response:
    state = state_of(request)
    if request.method == "POST":
        return await _model_action(request, state)
    entry = state.record(request, "gemini", None)
    reply = _auth_error(request, state)
    if reply is None:
        name = request.path_params["target"]
        model = _served(state, name)
        version = request.url.path.split("/")[1]
        if model is None:
            reply = wire.error(404, f"Model is not found: models/{name} for api version {version}")
        else:
            reply = wire.json_reply(wire.model_object(model))
    return finish(entry, reply)


async def list_models(request: Request) -> Response:
    state = state_of(request)
    entry = state.record(request, "gemini", None)
    reply = _auth_error(request, state) or _page(state, request)
    return finish(entry, reply)


def _page(state: EmulatorState, request: Request) -> Reply:
    params = request.query_params
    try:
        size = int(params.get("pageSize", _DEFAULT_PAGE))
        start = (
            int(pybase64.urlsafe_b64decode(params["pageToken"]).decode())
            if params.get("pageToken")
            else 0
        )
    except ValueError:
        return wire.error(400, "Invalid pageSize or pageToken")
    size = _DEFAULT_PAGE if size <= 0 else min(size, _MAX_PAGE)
    models = [m for m in GEMINI_MODELS.values() if state.serves(m.id)]
    if not 0 <= start <= len(models):
        return wire.error(400, "Invalid pageToken")
    body: dict[str, Any] = {"models": [wire.model_object(m) for m in models[start : start + size]]}
    if start + size < len(models):
        body["nextPageToken"] = pybase64.urlsafe_b64encode(str(start + size).encode()).decode()
    return wire.json_reply(body)


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = []
    for version in _VERSIONS:
        found.append(Route(f"/{version}/models", list_models, methods=["GET"]))
        found.append(
            Route(f"/{version}/models/{{target:path}}", model_resource, methods=["GET", "POST"])
        )
    return found
