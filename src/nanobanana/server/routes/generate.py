"""The seed API: POST /api/nano-banana/generate (synchronous) and GET /api/nano-banana/models.

The synchronous endpoint creates a job and waits for it.  If the client goes away meanwhile,
the job still finishes and is kept (it runs in the worker pool, not in this request).

Status codes: 200 with the images; 400 ``missing_api_key``; 422 bad parameters (``field``,
``allowed``) and ``content_blocked`` / ``no_image`` (the model ran but gave no image: the
request, not the service, is at fault; ``reason`` and the model's ``text`` are included);
429 ``quota_exceeded`` with ``Retry-After`` when the quota ran out and no fallback could run;
503 ``upstream_failed`` (``reason`` says how); 409 while an idempotent twin still runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from ...files import Pieces
from ...providers import INFOS, PROVIDERS
from ..compat.splice import SplicedBody, SplicedResponse, Splicer
from ..db.models import Job, StoredImage, User
from ..deps import CurrentUser, ServicesDep, SessionDep
from ..generation import IDEMPOTENCY_HEADER, submit_job
from ..problems import ApiError, job_error, not_found
from ..schemas import GenerateIn, ModelOut, ModelsOut, ProviderName, SeedResponse
from ..services import Services
from ..storage import ImageStore
from ..upstream import resolve_upstream
from ..views import image_url, images_of, outcome_out, stored_bytes
from .common import errors

router = APIRouter(prefix="/api/nano-banana", tags=["seed API"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        description="Retry safely: the same key (1-255 printable ASCII characters; others get "
        "400) and body within 24 h answer with the first result, with no second upstream "
        "call; another body: 422; while the first still runs: 409.",
    ),
]


@router.post(
    "/generate",
    response_model=SeedResponse,
    responses=errors(400, 401, 409, 413, 422, 429, 503),
)
async def generate(
    body: GenerateIn,
    user: CurrentUser,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Generate images and wait for them: `{images: [base64...], prompt, model, ...}`."""
    return await answer(services, await accept(body, user, services, idempotency_key))


@dataclass(frozen=True, slots=True)
class Accepted:
    job_id: str
    replayed: bool


async def accept(
    body: GenerateIn, user: User, services: Services, idempotency_key: str | None
) -> Accepted:
    """The request as a job, committed and running (the first half of ``generate``: a
    caller that drops the body and the user before ``answer`` holds neither while it runs)."""
    job, replayed = await submit_job(
        services, user, body, kind="seed", idempotency_key=idempotency_key
    )
    return Accepted(job.id, replayed)


async def answer(services: Services, accepted: Accepted) -> Response:
    """The answer once the job has ended (the second half of ``generate``)."""
    job_id = accepted.job_id
    headers = {"Idempotent-Replayed": "true"} if accepted.replayed else {}
    finished = await services.job_manager.wait(job_id)
    if finished is not None:  # ran here: the record, rows and bytes are in memory
        done: Job | None = finished.job
        images = finished.images
        data: list[Pieces] | None = finished.data
    else:  # a replay, or deleted meanwhile: from the database and the store
        done, images = await load_job(services, job_id)
        data = None
    if done is None:  # deleted by another request meanwhile
        raise not_found("generation")
    if done.status != "succeeded":
        err = job_failure(done)
        err.headers.update(headers)
        raise err
    body_out = await seed_response(done, images, services.store, data)
    return SplicedResponse(body_out, 200, headers)


@router.get("/models", response_model=ModelsOut, responses=errors(401, 422))
async def models(
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    provider: Annotated[ProviderName | None, Query(description="Only this provider.")] = None,
) -> ModelsOut:
    """The model catalog, one entry per model and provider route (OpenRouter first, the
    recommended route)."""
    upstream = await resolve_upstream(session, services, user.id)
    await session.commit()
    out = []
    for name in PROVIDERS:
        if provider is not None and name != provider:
            continue
        for spec in services.catalog:
            if name not in spec.provider_ids:
                continue
            d = spec.to_dict()
            out.append(
                ModelOut(
                    id=spec.id,
                    name=spec.name,
                    provider=name,  # type: ignore[arg-type]
                    provider_model=spec.provider_ids[name],
                    description=spec.description,
                    requires_api_key=True,
                    recommended=spec.recommended and INFOS[name].recommended,
                    available=upstream.has(name),
                    aspect_ratios=d["aspect_ratios"],
                    sizes=d["sizes"],
                    outputs_text=spec.outputs_text,
                    accepts_images=spec.accepts_images,
                    max_input_images=spec.max_input_images,
                    supports_seed=spec.supports_seed,
                    thinking_levels=d["thinking_levels"],
                    google_search=spec.can_search_google,
                    price_per_image=d["price_per_image"],
                    aliases=d["aliases"],
                    shutdown=d["shutdown"],
                    replaced_by=spec.replaced_by,
                    discovered=spec.discovered,
                )
            )
    return ModelsOut(models=out)


async def load_job(services: Services, job_id: str) -> tuple[Job | None, list[StoredImage]]:
    async with services.sessionmaker() as session:
        job = await session.get(Job, job_id, populate_existing=True)
        images = (await images_of(session, [job_id]))[job_id]
        await session.commit()
    return job, images


def job_failure(job: Job) -> ApiError:
    """The error answer of a job that did not succeed (the same on a replay)."""
    code = job.error_code or "internal_error"
    return job_error(
        code,
        job.error_message or "The generation failed.",
        job.error_details,
        job_id=job.id,
        fallback=job.attempts or [],
    )


async def seed_response(
    job: Job,
    images: Sequence[StoredImage],
    store: ImageStore,
    data: Sequence[Pieces] | None = None,
) -> SplicedBody:
    """The JSON body of POST /api/nano-banana/generate for a finished, successful job.

    ``data``: the stored bytes of ``images`` (same order) when the caller has them in memory;
    else they are read from the store.  The base64 images are spliced into the encoded
    envelope (``Splicer``): no ``str`` of each image and no pass through the JSON encoder (a
    4K image is ~20 MB of base64)."""
    known: Sequence[Pieces | None] = data if data is not None else [None] * len(images)
    pairs = sorted(zip(images, known, strict=True), key=lambda p: p[0].index)
    ordered = [img for img, _ in pairs]
    splicer = Splicer()
    encoded = [
        splicer.b64(payload if payload is not None else await stored_bytes(store, img))
        for img, payload in pairs
    ]
    return splicer.render(
        {
            "id": job.id,
            "images": encoded,
            "mime_types": [img.mime_type for img in ordered],
            "image_urls": [image_url(img.id) for img in ordered],
            "prompt": job.prompt,
            **outcome_out(job),
        }
    )
