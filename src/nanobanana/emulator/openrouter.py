"""OpenRouter routes (``/api/v1``): chat completions, models, generation stats.

Faithful to reference §1: a request without ``"image"`` in ``modalities`` gets a plain text
answer, asking a model for a modality it cannot output is a 404, an unknown model a 400, and
auth failures are 401s with OpenRouter's messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import openrouter_wire as wire
from . import signatures
from .delivery import Reply, finish, wait_or_disconnect
from .inputs import INVALID_JSON, check_data_url, decode_base64, loads, ratio_for_shape, shape_of
from .models import OPENROUTER_MODELS, ModelSpec
from .scenarios import Plan, ScenarioError, Spec, strip_markers
from .state import Artifact, EmulatorState, bearer_token, estimate_tokens, random_id, state_of

__all__ = ["routes"]

_MODALITIES = ("text", "image", "audio")
#: ``reasoning.effort`` values (OpenRouter's reasoning-tokens guide).
_EFFORTS = ("max", "xhigh", "high", "medium", "low", "minimal", "none")
#: The web plugin's ``engine`` values (OpenRouter's web-search guide).
_ENGINES = ("native", "exa", "firecrawl", "parallel", "perplexity")
_LIST_MODALITIES = frozenset({"text", "image", "audio", "embeddings"})
#: The most models one page of ``GET /models`` holds (reference §1.6).
_MAX_LIMIT = 1000
_FLAKY_RETRY = 0.05


#: Variants accepted on any model id (OpenRouter's "routing variants"). Catalog variants
#: (``:free``, ``:extended``...) are models of their own, valid only when ``/models`` lists them.
ROUTING_VARIANTS = ("nitro", "floor", "exacto", "online")


@dataclass(frozen=True)
class ChatRequest:
    model: ModelSpec
    modalities: tuple[str, ...]
    ratio: str
    size: str
    prompt: str  # last user text, scenario markers removed
    texts: tuple[str, ...]
    reference_images: int
    stream: bool
    web_search: bool = False


def _texts(body: Any) -> list[str]:
    """Every text of the messages after the last assistant answer: the turn being asked, where
    scenario markers are looked for (a marker of an earlier turn is history, not a plan)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return []
    messages = body["messages"]
    answered = [
        i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"
    ]
    texts = []
    for msg in messages[answered[-1] + 1 if answered else 0 :]:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
    return texts


def _auth_error(request: Request, state: EmulatorState) -> Reply | None:
    header = request.headers.get("authorization")
    if header is None:
        return wire.error(401, "No auth credentials found")
    key = bearer_token(header)
    if key is None:
        return wire.error(401, "Missing Authentication header")
    if not state.config.key_is_valid(key):
        return wire.error(401, "User not found.")
    return None


# -- validation ---------------------------------------------------------------------------------


def _content_parts(index: int, content: Any) -> tuple[list[str], int] | Reply:
    if content is None or isinstance(content, str):
        return ([content] if content else []), 0
    if not isinstance(content, list):
        return wire.error(400, f"messages[{index}].content must be a string or an array of parts")
    texts, images = [], 0
    for j, part in enumerate(content):
        where = f"messages[{index}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str) or not url:
                return wire.error(400, f"{where}.image_url.url must be a non-empty string")
            if url.startswith("data:"):
                problem = check_data_url(url)
                if problem:
                    return wire.error(400, f"{where}: {problem}", {"error_type": "invalid_image"})
            elif not url.startswith(("https://", "http://")):
                return wire.error(
                    400,
                    f"{where}: image URL must be http(s) or a data: URL",
                    {"error_type": "image_download_failed"},
                )
            images += 1
        else:
            return wire.error(400, f"{where}: unsupported content part type {kind!r}")
    return texts, images


def _check_reasoning_details(details: Any, index: int, model: ModelSpec) -> Reply | None:
    """An assistant message's ``reasoning_details``, passed back as OpenRouter's reasoning
    guide asks ("Preserving reasoning blocks"): objects with a ``type``; a Gemini signature
    (``reasoning.encrypted``, ``google-gemini-v1``) for a model that signs must be one it made,
    else Google's own 400 comes back as a provider error."""
    if details is None:
        return None
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("type"), str) for d in details
    ):
        return wire.error(
            400, f"messages[{index}].reasoning_details must be an array of objects with a type"
        )
    for detail in details:
        if (
            model.signs_thoughts
            and detail["type"] == "reasoning.encrypted"
            and detail.get("format") == wire.GEMINI_REASONING_FORMAT
            and not signatures.verify(str(detail.get("data")), model.id)
        ):
            return wire.provider_error(
                model, 400, "Corrupted thought signature.", "INVALID_ARGUMENT"
            )
    return None


def _reference_shape(messages: list[Any]) -> tuple[int, int] | None:
    """The shape of the first data-URL image of the last message that holds one."""
    for msg in reversed(messages):
        content = msg.get("content")
        for part in content if isinstance(content, list) else ():
            ref = part.get("image_url") if isinstance(part, dict) else None
            url = ref.get("url") if isinstance(ref, dict) else ref
            if isinstance(url, str) and url.startswith("data:"):
                return shape_of(decode_base64(url.partition(",")[2]))
    return None


def _served(state: EmulatorState, model_id: str) -> ModelSpec | None:
    return OPENROUTER_MODELS.get(model_id) if state.serves(model_id) else None


def _validate(state: EmulatorState, body: dict[str, Any]) -> ChatRequest | Reply:
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        return wire.error(400, "model is required")
    model = _served(state, model_id)
    base, _, variant = model_id.rpartition(":")
    if model is None and variant in ROUTING_VARIANTS:
        model = _served(state, base)
    if model is None:
        return wire.error(400, f"{model_id} is not a valid model ID")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return wire.error(400, "messages must be a non-empty array")
    texts: list[str] = []
    prompt, references = "", 0
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            return wire.error(400, f"messages[{i}] must be an object with a role")
        parsed = _content_parts(i, msg.get("content"))
        if isinstance(parsed, Reply):
            return parsed
        if parsed[1] and msg["role"] != "user":
            # The API reference's Message type: "ContentParts are only for the user role".
            return wire.error(
                400,
                f"messages[{i}].content: image parts are only accepted in user messages",
            )
        if msg["role"] == "assistant":
            bad = _check_reasoning_details(msg.get("reasoning_details"), i, model)
            if bad:
                return bad
        texts += parsed[0]
        references += parsed[1]
        if msg["role"] == "user" and parsed[0]:
            prompt = " ".join(parsed[0])
    modalities = body.get("modalities", ["text"])
    if not isinstance(modalities, list) or not all(m in _MODALITIES for m in modalities):
        return wire.error(400, f"modalities must be an array of {', '.join(_MODALITIES)}")
    requested = tuple(modalities) or ("text",)
    if any(m not in model.outputs for m in requested):
        return wire.error(
            404,
            "No endpoints found that support the requested output modalities: "
            + ", ".join(requested),
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        return wire.error(400, "stream must be a boolean")
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            return wire.error(400, "reasoning must be an object")
        effort = reasoning.get("effort")
        # A level the model lacks is mapped to the nearest it has, not refused (the guide).
        if effort is not None and effort not in _EFFORTS:
            return wire.error(400, f"reasoning.effort must be one of {', '.join(_EFFORTS)}")
    plugins = body.get("plugins")
    if plugins is not None and (
        not isinstance(plugins, list)
        or not all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in plugins)
    ):
        return wire.error(400, "plugins must be an array of objects with an id")
    web = next((p for p in plugins or () if p["id"] == "web"), None)
    if web is not None and web.get("engine", "native") not in _ENGINES:
        return wire.error(400, f"plugins[web].engine must be one of {', '.join(_ENGINES)}")
    config = body.get("image_config") or {}
    if not isinstance(config, dict):
        return wire.error(400, "image_config must be an object")
    for key, value in config.items():
        # The OpenAPI ImageConfig: keys vary by model, each value a string, number or array.
        if isinstance(value, bool) or not isinstance(value, str | int | float | list):
            return wire.error(400, f"image_config.{key} must be a string, number or array")
    ratio, size = config.get("aspect_ratio"), config.get("image_size", "1K")
    if ratio is None and references and model.id.startswith("google/"):
        # Google's models choose the ratio from the reference (as on Gemini's own API);
        # the others draw their default, a square.
        ratio = ratio_for_shape(model.ratios, _reference_shape(messages))
    ratio = ratio or "1:1"
    if "image" in requested:
        if ratio not in model.ratios:
            return wire.error(
                400,
                f"image_config.aspect_ratio {ratio!r} is not supported by "
                f"{model.id}; supported: {', '.join(model.ratios)}",
            )
        if size not in model.sizes:
            return wire.error(
                400,
                f"image_config.image_size {size!r} is not supported by "
                f"{model.id}; supported: {', '.join(model.sizes)}",
            )
    return ChatRequest(
        model,
        requested,
        str(ratio),
        str(size),
        strip_markers(prompt),
        tuple(texts),
        references,
        stream,
        web_search=web is not None,
    )


# -- answering ----------------------------------------------------------------------------------


def _outcome(state: EmulatorState, plan: Plan) -> str:
    outcome = plan.outcome
    if outcome is None:
        return "ok"
    if outcome.name == "flaky":
        return "flaky-fail" if state.flaky_should_fail(outcome) else "ok"
    return outcome.name


def _error_outcome(name: str, outcome: Spec | None, req: ChatRequest) -> Reply | None:
    model = req.model
    if outcome is None:
        return None
    if name == "flaky-fail":
        return wire.error_for_status(outcome.integer(1, 429), model, _FLAKY_RETRY)
    if name == "quota":
        return wire.quota(model.id, outcome.number(0, 1.0))
    if name == "quota-day":
        return wire.quota_day()
    if name == "legacy-error":
        return wire.legacy_quota(model, outcome.number(0, 1.0))
    if name == "payment":
        return wire.payment()
    if name == "server-error":
        return wire.server_error(outcome.integer(0, 500), model)
    if name == "blocked-prompt":
        return wire.moderation(model, req.prompt)
    return None


async def _generate(
    state: EmulatorState, request: Request, req: ChatRequest, plan: Plan, started: float
) -> Reply:
    name = _outcome(state, plan)
    failed = _error_outcome(name, plan.outcome, req)
    if failed is not None:
        return failed
    model = req.model
    gen_id = f"gen-{int(time.time())}-{random_id()}"
    prompt_tokens = estimate_tokens(req.texts, req.reference_images)
    if name in ("error-in-200", "midstream-error"):
        status = plan.outcome.integer(0, 502) if plan.outcome else 502
        if not req.stream:
            return wire.json_reply(
                200,
                wire.error_body(
                    status,
                    "Provider returned error",
                    {"provider_name": model.provider},
                    user_id=True,
                ),
            )
        if name == "error-in-200":
            return wire.error_event(gen_id, model, status, "Provider returned error")
        art = Artifact(None, "Generating your image", prompt_tokens, 5, 0)
        inner = wire.error_inner(status, "Provider returned error")
        return wire.chat_stream(
            gen_id, model, art, token=state.splice_token, error_after_text=inner
        )

    finish = ("stop", "STOP")
    if name == "safety":
        art = Artifact(None, "", prompt_tokens, 0, 0)
        finish = ("content_filter", "IMAGE_SAFETY")
    else:
        art = await state.artifact(
            plan,
            model,
            image="image" in req.modalities and name != "text-only",
            text=model.makes_text,
            ratio=req.ratio,
            size=req.size,
            prompt=req.prompt,
            texts=req.texts,
            references=req.reference_images,
        )

    bare = plan.modifier("string-images") is not None
    build = wire.chat_stream if req.stream else wire.chat_completion
    cited = wire.citations(req.prompt) if req.web_search and art.payload is not None else None
    reply = build(
        gen_id,
        model,
        art,
        token=state.splice_token,
        finish=finish,
        bare_images=bare,
        annotations=cited,
        reasoning_details=(
            [wire.gemini_reasoning(signatures.sign(model.id, gen_id, 0))]
            if model.signs_thoughts and art.payload is not None
            else None
        ),
    )
    stats = wire.generation_stats(
        gen_id,
        model,
        art,
        finish=finish,
        streamed=req.stream,
        latency_ms=int((time.monotonic() - started) * 1000),
        referer=request.headers.get("http-referer"),
    )
    state.generations.put(gen_id, stats)
    state.charge(bearer_token(request.headers.get("authorization", "")), stats["total_cost"])
    return reply


async def chat_completions(request: Request) -> Response:
    state = state_of(request)
    started = time.monotonic()
    body = loads(await request.body())
    entry = state.record(request, "openrouter", None if body is INVALID_JSON else body)
    try:
        plan = state.plan(request, _texts(body), "openrouter")
    except ScenarioError as exc:
        return finish(entry, wire.error(400, f"emulator: {exc}"))
    entry["scenario"] = plan.texts
    if await wait_or_disconnect(request.receive, plan.latency):
        entry["status"] = 499  # the client left while we waited; nobody reads an answer
        return Response(status_code=499)
    reply = _auth_error(request, state) or await _answer(state, request, body, plan, started)
    return finish(entry, reply, plan.transport)


async def _answer(
    state: EmulatorState, request: Request, body: Any, plan: Plan, started: float
) -> Reply:
    if not isinstance(body, dict):
        return wire.error(400, "Request body must be a JSON object")
    parsed = _validate(state, body)
    if isinstance(parsed, Reply):
        return parsed
    return await _generate(state, request, parsed, plan, started)


# -- discovery ----------------------------------------------------------------------------------


async def list_models(request: Request) -> Response:
    state = state_of(request)
    entry = state.record(request, "openrouter", None)
    wanted_text = request.query_params.get("output_modalities", "text")
    models = [m for m in OPENROUTER_MODELS.values() if state.serves(m.id)]
    if wanted_text != "all":
        wanted = {m.strip() for m in wanted_text.split(",") if m.strip()}
        unknown = wanted - _LIST_MODALITIES
        if unknown or not wanted:
            reply = wire.error(
                400,
                "output_modalities must be 'all' or a comma list of "
                + ", ".join(sorted(_LIST_MODALITIES)),
            )
            return finish(entry, reply)
        models = [m for m in models if wanted & set(m.outputs)]
    try:
        offset = int(request.query_params.get("offset") or 0)
        limit = int(request.query_params.get("limit") or _MAX_LIMIT)
    except ValueError:
        offset = limit = -1
    if offset < 0 or not 1 <= limit <= _MAX_LIMIT:
        reply = wire.error(400, f"offset must be >= 0 and limit from 1 to {_MAX_LIMIT}")
        return finish(entry, reply)
    page = [wire.model_object(m) for m in models[offset : offset + limit]]
    following = None
    if offset + limit < len(models):
        rest = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit")}
        following = (
            f"/api/v1/models?{urlencode({**rest, 'offset': offset + limit, 'limit': limit})}"
        )
    body = {"data": page, "total_count": len(models), "links": {"next": following}}
    return finish(entry, wire.json_reply(200, body))


async def get_model(request: Request) -> Response:
    state = state_of(request)
    entry = state.record(request, "openrouter", None)
    model_id = f"{request.path_params['author']}/{request.path_params['slug']}"
    model = _served(state, model_id)
    if model is None:
        return finish(entry, wire.error(404, f"Model {model_id} not found"))
    return finish(entry, wire.json_reply(200, {"data": wire.model_object(model)}))


async def generation(request: Request) -> Response:
    state = state_of(request)
    entry = state.record(request, "openrouter", None)
    reply = _auth_error(request, state)
    if reply is None:
        gen_id = request.query_params.get("id")
        stats = state.generations.get(gen_id) if gen_id else None
        if not gen_id:
            reply = wire.error(400, "id is required")
        elif stats is None:
            reply = wire.error(404, f"Generation {gen_id} not found")
        else:
            reply = wire.json_reply(200, {"data": stats})
    return finish(entry, reply)


async def current_key(request: Request) -> Response:
    """``GET /api/v1/key``: the key's limit and usage; 401 for a key OpenRouter refuses."""
    state = state_of(request)
    entry = state.record(request, "openrouter", None)
    reply = _auth_error(request, state)
    if reply is None:
        key = bearer_token(request.headers["authorization"]) or ""
        reply = wire.json_reply(
            200, {"data": wire.key_info(key, state.spent(key), state.config.key_limit)}
        )
    return finish(entry, reply)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/api/v1/models", list_models, methods=["GET"]),
        Route("/api/v1/model/{author}/{slug}", get_model, methods=["GET"]),
        Route("/api/v1/generation", generation, methods=["GET"]),
        Route("/api/v1/key", current_key, methods=["GET"]),
    ]
