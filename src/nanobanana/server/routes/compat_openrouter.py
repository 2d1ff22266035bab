"""OpenRouter-compatible API: ``POST /api/v1/chat/completions`` and ``GET /api/v1/models``.

An OpenRouter client works against the service with only its base URL
(``http://<host>/api/v1``) and key (a personal token from ``POST /api/tokens``) changed.  Each
call is a job in the caller's history, run with the caller's stored provider keys and the
service's fallback.  ``/v1/chat/completions`` answers too, for clients whose base URL is
``http://<host>/v1``.

Streaming starts as soon as the job is accepted: ``: OPENROUTER PROCESSING`` comments keep the
connection alive while it runs, then the chunks follow.  So a job that fails is reported the
way OpenRouter reports errors after the stream began (HTTP 200, one chunk with a top-level
``error``), which also keeps clients from retrying a call that may have been billed.  Errors
found before the job exists (bad token, bad parameters, no key) are plain JSON with their real
status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from ...catalog import ModelChoice
from ..compat.models import MAX_LIMIT, ModelQuery, openrouter_id, openrouter_models
from ..compat.openrouter_request import ChatRequest, parse_chat
from ..compat.openrouter_response import (
    KEEPALIVE,
    MEDIA_TYPE_SSE,
    completion,
    stream_error,
    stream_events,
)
from ..compat.outcome import JobOutcome
from ..compat.schemas import (
    CHAT_STREAM_EVENT,
    ChatCompletion,
    OpenRouterError,
    OpenRouterModels,
    error_responses,
)
from ..compat.splice import SplicedResponse
from ..db.models import User
from ..deps import CurrentUser, ServicesDep
from ..schemas import GenerateIn
from ..services import Services
from .compat_common import (
    IdempotencyKey,
    OpenRouterRoute,
    answered_outcome,
    failure_problem,
    generate_in,
    job_headers,
    json_bytes_response,
    load_outcome,
    outcome_of,
    submit_call,
)

router = APIRouter(tags=["OpenRouter-compatible"], route_class=OpenRouterRoute)

#: Seconds between ``: OPENROUTER PROCESSING`` comments while a streamed job runs.
KEEPALIVE_SECONDS = 3.0

_CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The completion; with `stream: true`, server-sent events.",
        "content": {MEDIA_TYPE_SSE: {"schema": CHAT_STREAM_EVENT}},
    },
    **error_responses(OpenRouterError, 400, 401, 402, 404, 408, 409, 413, 422, 429, 502, 503),
}


async def chat_completions(
    body: ChatRequest,
    user: CurrentUser,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Generate an image as an OpenRouter chat completion (`message.images`), plain or
    streamed (`delta.images`).  The prompt is the last user message's text; its `image_url`
    parts (data URLs) are reference images."""
    return await answer(services, await accept(body, user, services, idempotency_key))


@dataclass(frozen=True, slots=True)
class Accepted:
    job_id: str
    #: The model's OpenRouter id, as the answer names it.
    model: str
    replayed: bool
    stream: bool


async def accept(
    body: ChatRequest, user: User, services: Services, idempotency_key: str | None
) -> Accepted:
    """The call as a job, committed and running (the first half of ``chat_completions``: a
    caller that drops the body and the user before ``answer`` holds neither while it runs)."""
    call = parse_chat(body)

    def build(choice: ModelChoice, provider: str) -> tuple[GenerateIn, None]:
        request = generate_in(
            prompt=call.prompt,
            provider=provider,
            # As the caller spelled it, so that the job warns about an old spelling.
            model=call.model or choice.name,
            aspect_ratio=call.aspect_ratio,
            image_size=call.image_size,
            seed=call.seed,
            thinking=call.thinking,
            google_search=call.google_search,
            image_options=call.image_options,
            images=list(call.images),
        )
        return request, None

    spec, _, job, replayed = await submit_call(
        services,
        user,
        model=call.model,
        provider_hint=call.provider,
        kind="openrouter",
        idempotency_key=idempotency_key,
        build=build,
        history=call.history,
    )
    return Accepted(job.id, openrouter_id(spec), replayed, call.stream)


async def answer(services: Services, accepted: Accepted) -> Response:
    """The completion, or its stream, once the job has ended (the second half)."""
    job_id, model, replayed = accepted.job_id, accepted.model, accepted.replayed
    headers = job_headers(job_id, replayed)
    if accepted.stream:
        headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return StreamingResponse(
            _stream(services, job_id, model, replayed), media_type=MEDIA_TYPE_SSE, headers=headers
        )
    outcome = await answered_outcome(
        services, job_id, model, replayed, headers, content_outcomes=True
    )
    return SplicedResponse(completion(outcome), 200, headers)


async def _stream(
    services: Services, job_id: str, model: str, replayed: bool
) -> AsyncIterator[bytes]:
    yield KEEPALIVE
    waiter = asyncio.ensure_future(services.job_manager.wait(job_id))
    try:
        while not waiter.done():
            done, _ = await asyncio.wait({waiter}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield KEEPALIVE
    finally:
        # Only the waiting stops: the job itself belongs to the pool and runs on.
        waiter.cancel()
    finished = waiter.result()
    outcome: JobOutcome | None
    if finished is not None:
        outcome = await outcome_of(services, finished, model)
    else:
        outcome = await load_outcome(services, job_id, model)
    if outcome is not None and (outcome.succeeded or outcome.content_outcome):
        for event in stream_events(outcome):
            yield event
        return
    problem = failure_problem(outcome, job_id, replayed)
    shell = outcome or JobOutcome(
        id=job_id, created=int(time.time()), status="deleted", provider=None, model=model
    )
    yield stream_error(shell, problem)


router.add_api_route(
    "/api/v1/chat/completions",
    chat_completions,
    methods=["POST"],
    response_model=ChatCompletion,
    responses=_CHAT_RESPONSES,
)
# The same for clients configured with a base URL ending in /v1 (hidden: one documented path).
router.add_api_route(
    "/v1/chat/completions",
    chat_completions,
    methods=["POST"],
    response_model=ChatCompletion,
    include_in_schema=False,
)


@router.get(
    "/api/v1/models",
    response_model=OpenRouterModels,
    responses=error_responses(OpenRouterError, 400, 401),
)
async def models(
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    output_modalities: Annotated[
        str | None,
        Query(
            description="Comma list of `text`, `image`, `audio`, `embeddings`, or `all`. "
            "Default `text` (as on OpenRouter): image tools ask for `image`."
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, description="Models to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Models per page.")] = MAX_LIMIT,
) -> Response:
    """The catalog in OpenRouter's Model shape, paged (`total_count`, `links.next`).

    Also filtered by `input_modalities` and `supported_parameters` (models that have all of
    them), `model_authors` and `q`; OpenRouter's other filters are accepted and ignored."""
    query = ModelQuery.parse(request.query_params)
    page = openrouter_models(services.catalog, query, request.url.path, request.query_params)
    return json_bytes_response(orjson.dumps(page))
