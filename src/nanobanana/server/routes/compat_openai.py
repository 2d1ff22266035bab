"""OpenAI-compatible Images API: ``POST /v1/images/generations``, ``POST /v1/images/edits``
and ``GET /v1/models``.

An OpenAI client works against the service with only its base URL (``http://<host>/v1``) and
key (a personal token) changed.  Every call is a job in the caller's history, with the caller's
stored keys and the service's fallback.  The mapping of ``size``, ``quality``, ``model`` and
``response_format`` is in ``compat/openai_images.py``.  The two image routes also answer under
``/api/v1/images/...`` for clients that use the OpenRouter base URL for everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from ...catalog import ModelChoice, ModelSpec
from ...client import MAX_PROMPT_CHARS, MAX_SEED
from ...imaging import b64encode
from ..compat.errors import Problem, ProblemError, bad_request
from ..compat.models import check_query, openai_models
from ..compat.openai_images import (
    MAX_IMAGES,
    SIZE_PATTERN,
    SIZE_WARNING_HEADER,
    ImagesCall,
    ImagesRequest,
    Quality,
    ResponseFormat,
    catalog_model,
    images_response,
    plan,
)
from ..compat.openrouter_request import VISIBLE, clean_text
from ..compat.schemas import ImagesResponse, OpenAIError, OpenAIModels, error_responses
from ..compat.splice import SplicedResponse
from ..db.models import User
from ..deps import CurrentUser, ServicesDep
from ..schemas import GenerateIn
from ..services import Services
from ..uploads import too_large
from .common import public_root
from .compat_common import (
    IdempotencyKey,
    OpenAIRoute,
    answered_outcome,
    generate_in,
    job_headers,
    json_bytes_response,
    submit_call,
)

router = APIRouter(tags=["OpenAI-compatible"], route_class=OpenAIRoute)

_RESPONSES = error_responses(OpenAIError, 400, 401, 402, 408, 409, 413, 422, 429, 502, 503)


async def _run(
    request: Request,
    services: Services,
    user: User,
    requested: str | None,
    provider_hint: str | None,
    make_call: Callable[[ModelSpec], ImagesCall],
    references: list[str],
    idempotency_key: str | None,
) -> Response:

    def build(choice: ModelChoice, provider: str) -> tuple[GenerateIn, ImagesCall]:
        call = make_call(choice.spec)
        request = generate_in(
            prompt=call.prompt,
            num_images=call.n,
            provider=provider,
            # As the caller spelled it, so that the job warns about an old spelling.
            model=requested or choice.name,
            aspect_ratio=call.aspect_ratio,
            image_size=call.image_size,
            seed=call.seed,
            images=references,
        )
        return request, call

    spec, call, job, replayed = await submit_call(
        services,
        user,
        model=requested,
        provider_hint=provider_hint,
        kind="openai",
        idempotency_key=idempotency_key,
        build=build,
    )
    notes = [(SIZE_WARNING_HEADER, call.size_note)] if call.size_note else []
    headers = job_headers(job.id, replayed, notes)
    outcome = await answered_outcome(services, job.id, spec.id, replayed, headers)
    data = images_response(
        outcome,
        call.response_format,
        public_root(request, services.settings),
        input_image_tokens=len(references) * (spec.pricing.input_image_tokens or 0),
    )
    return SplicedResponse(data, 200, headers)


async def generations(
    body: ImagesRequest,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Generate images from a prompt: `{created, data: [{b64_json} | {url}], usage}`."""
    return await _run(
        request,
        services,
        user,
        catalog_model(body.model),
        body.provider,
        lambda spec: plan(
            spec,
            prompt=clean_text(body.prompt),
            n=body.n,
            size=body.size,
            quality=body.quality,
            response_format=body.response_format,
            seed=body.seed,
        ),
        [],
        idempotency_key,
    )


FileList = Annotated[
    list[UploadFile] | None, File(description="The image(s) to edit: PNG, JPEG or WEBP.")
]


async def edits(
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    prompt: Annotated[str, Form(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=VISIBLE)],
    image: FileList = None,
    images: Annotated[
        list[UploadFile] | None,
        File(alias="image[]", description="The same, as OpenAI's SDKs send several."),
    ] = None,
    mask: Annotated[UploadFile | None, File(description="Not supported.")] = None,
    model: Annotated[str | None, Form()] = None,
    n: Annotated[int | None, Form(ge=1, le=MAX_IMAGES)] = None,
    size: Annotated[str | None, Form(pattern=SIZE_PATTERN)] = None,
    quality: Annotated[Quality | None, Form()] = None,
    response_format: Annotated[ResponseFormat | None, Form()] = None,
    provider: Annotated[Literal["openrouter", "google"] | None, Form()] = None,
    seed: Annotated[int | None, Form(ge=0, le=MAX_SEED)] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Edit or combine images with a prompt (multipart `image` / `image[]` files)."""
    if mask is not None:
        raise bad_request("Masks are not supported: describe the change in the prompt.", "mask")
    files = [*(image or []), *(images or [])]
    if not files:
        raise bad_request("Send at least one image file (field `image` or `image[]`).", "images")
    references = [await _data_url(f, services.settings.max_upload_bytes) for f in files]
    return await _run(
        request,
        services,
        user,
        catalog_model(model),
        provider,
        lambda spec: plan(
            spec,
            prompt=clean_text(prompt),
            n=n,
            size=size,
            quality=quality,
            response_format=response_format,
            seed=seed,
        ),
        references,
        idempotency_key,
    )


async def _data_url(upload: UploadFile, limit: int) -> str:
    """A file as a data URL; the generation checks it like any reference (format, pixels)."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    if not data:
        raise ProblemError(
            Problem(400, "invalid_image", "An image file is empty.", field_name="images")
        )
    return f"data:application/octet-stream;base64,{b64encode(data)}"


for prefix, shown in (("/v1", True), ("/api/v1", False)):
    router.add_api_route(
        f"{prefix}/images/generations",
        generations,
        methods=["POST"],
        response_model=ImagesResponse,
        responses=_RESPONSES,
        include_in_schema=shown,
    )
    router.add_api_route(
        f"{prefix}/images/edits",
        edits,
        methods=["POST"],
        response_model=ImagesResponse,
        responses=_RESPONSES,
        include_in_schema=shown,
    )


@router.get(
    "/v1/models", response_model=OpenAIModels, responses=error_responses(OpenAIError, 400, 401)
)
async def models(request: Request, user: CurrentUser, services: ServicesDep) -> Response:
    """The catalog as OpenAI's model list (the ids `images.generate` takes)."""
    check_query(request.query_params.keys(), frozenset())
    return json_bytes_response(orjson.dumps(openai_models(services.catalog)))
