"""OpenRouter's Image API: ``POST /api/v1/images``, ``GET /api/v1/images/models`` and a
model's endpoints, for OpenRouter's SDK (``images.generate``, ``images.list_models``) and any
client written against that API.  The mapping is in ``compat/openrouter_images.py``; every
call is a job in the caller's history, run with the caller's stored keys and the service's
fallback, like a chat completion.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from ...catalog import ModelChoice
from ..compat.models import openrouter_id
from ..compat.openai_images import SIZE_WARNING_HEADER
from ..compat.openrouter_images import (
    ImageCall,
    ImageRequest,
    image_endpoints,
    image_model,
    image_response,
    plan,
    route_hint,
)
from ..compat.openrouter_request import clean_text
from ..compat.schemas import (
    ImageGenerationResponse,
    ImageModelEndpoints,
    ImageModels,
    OpenRouterError,
    error_responses,
)
from ..compat.splice import SplicedResponse
from ..deps import CurrentUser, ServicesDep
from ..problems import not_found
from ..schemas import GenerateIn
from .compat_common import (
    IdempotencyKey,
    OpenRouterImagesRoute,
    answered_outcome,
    generate_in,
    job_headers,
    json_bytes_response,
    submit_call,
)

router = APIRouter(tags=["OpenRouter-compatible"], route_class=OpenRouterImagesRoute)


@router.post(
    "/api/v1/images",
    response_model=ImageGenerationResponse,
    responses=error_responses(OpenRouterError, 400, 401, 402, 408, 409, 413, 422, 429, 502, 503),
)
async def generate(
    body: ImageRequest,
    user: CurrentUser,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Generate images (OpenRouter's Image API): `{created, data: [{b64_json, media_type}],
    usage}`.  `stream: true` is answered with the whole answer, as OpenRouter answers it for
    models without native image streaming."""

    def build(choice: ModelChoice, provider: str) -> tuple[GenerateIn, ImageCall]:
        call = plan(choice.spec, body, clean_text(body.prompt))
        request = generate_in(
            prompt=call.prompt,
            num_images=call.n,
            provider=provider,
            model=body.model,  # as the caller spelled it, so that the job warns about an old one
            aspect_ratio=call.aspect_ratio,
            image_size=call.image_size,
            seed=call.seed,
            images=list(call.images),
        )
        return request, call

    spec, call, job, replayed = await submit_call(
        services,
        user,
        model=body.model,
        provider_hint=route_hint(body),
        kind="openrouter",
        idempotency_key=idempotency_key,
        build=build,
    )
    notes = [(SIZE_WARNING_HEADER, call.size_note)] if call.size_note else []
    headers = job_headers(job.id, replayed, notes)
    outcome = await answered_outcome(services, job.id, openrouter_id(spec), replayed, headers)
    return SplicedResponse(image_response(outcome), 200, headers)


@router.get(
    "/api/v1/images/models",
    response_model=ImageModels,
    responses=error_responses(OpenRouterError, 401),
)
async def models(user: CurrentUser, services: ServicesDep) -> Response:
    """The image models, with the parameters each takes (OpenRouter's capability
    descriptors: enums, ranges, booleans)."""
    data = [image_model(spec) for spec in services.catalog]
    return json_bytes_response(orjson.dumps({"data": data}))


@router.get(
    "/api/v1/images/models/{author}/{slug}/endpoints",
    response_model=ImageModelEndpoints,
    responses=error_responses(OpenRouterError, 401, 404),
)
async def endpoints(author: str, slug: str, user: CurrentUser, services: ServicesDep) -> Response:
    """The routes of this service that serve a model (OpenRouter, Google), with prices."""
    spec = services.catalog.find(f"{author}/{slug}")
    if spec is None:
        raise not_found("image model (GET /api/v1/images/models lists them)")
    return json_bytes_response(orjson.dumps(image_endpoints(spec)))
