"""The I/O shared by the compatibility routes: errors in each dialect, the provider choice,
and running a call as a job of the job service.

Every compatible call is an ordinary job (kind ``openrouter`` or ``openai``): it runs with the
caller's stored keys and the service's fallback, in the worker pool (a client that goes away
does not cancel it), and it appears in ``GET /api/generations``.

Errors: the routes use a route class whose handler catches every error the request can meet,
including those raised while dependencies are solved (a bad token, a body that does not
validate), and answers in the dialect's shape instead of the service's own.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...catalog import Catalog, ModelChoice, ModelSpec
from ...errors import NanobananaError, UnknownModelError
from ...files import Pieces
from ..compat.errors import (
    Problem,
    ProblemError,
    from_api,
    from_job,
    from_library,
    from_validation,
    openai_error,
    openrouter_error,
)
from ..compat.models import openrouter_id
from ..compat.outcome import ImagePayload, JobOutcome
from ..db.models import Job, StoredImage, User
from ..defaultscache import user_defaults
from ..generation import IDEMPOTENCY_HEADER, Exchange, create_job
from ..jobs import Finished
from ..listings import resolve
from ..problems import ApiError
from ..schemas import GenerateIn
from ..services import Services
from ..upstream import resolve_upstream
from ..views import image_url, images_of, stored_bytes

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
#: Honoured as on the service's own routes, but left out of the OpenAPI description: OpenAI's
#: and OpenRouter's APIs do not define it (docs/compat.md documents it).
IdempotencyKey = Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, include_in_schema=False)]
CAUGHT = (
    StarletteHTTPException,
    RequestValidationError,
    PydanticValidationError,
    NanobananaError,
    ProblemError,
)


# ---------------------------------------------------------------------------------- errors
def problem_of(exc: Exception) -> Problem:
    if isinstance(exc, ProblemError):
        return exc.problem
    if isinstance(exc, ApiError):
        return from_api(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        return from_api(exc.status_code, f"http_{exc.status_code}", message, None, exc.headers)
    if isinstance(exc, RequestValidationError | PydanticValidationError):
        return from_validation(exc.errors())
    assert isinstance(exc, NanobananaError)
    return from_library(exc)


def json_bytes_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="application/json")


Render = Callable[[Problem, Request], dict[str, Any]]


def dialect_answer(render: Render, request: Request, exc: Exception) -> Response:
    """``exc`` answered in a dialect's shape (``render``); an unexpected one raised again."""
    if not isinstance(exc, CAUGHT):
        raise exc
    problem = problem_of(exc)
    return json_bytes_response(
        orjson.dumps(render(problem, request)), problem.status, problem.response_headers()
    )


class DialectRoute(APIRoute):
    """Answers every error of its routes in one dialect's shape (``render``)."""

    render: Render

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        render = self.render

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except CAUGHT as exc:
                return dialect_answer(render, request, exc)

        return guarded


def with_openrouter_ids(problem: Problem, catalog: Catalog) -> Problem:
    """An unknown model's message and ``allowed`` list with the ids OpenRouter clients use
    (``google/gemini-2.5-flash-image``), not the catalog's."""
    allowed = problem.details.get("allowed")
    if problem.code != UnknownModelError.code or not isinstance(allowed, list):
        return problem
    ids = {}
    for name in allowed:
        spec = catalog.find(str(name))
        ids[str(name)] = openrouter_id(spec) if spec is not None else str(name)
    message = problem.message.replace(", ".join(ids), ", ".join(ids.values()))
    for old, new in ids.items():
        message = message.replace(repr(old), repr(new))
    details = {**problem.details, "allowed": list(ids.values())}
    return replace(problem, message=message, details=details)


def render_openrouter(problem: Problem, request: Request) -> dict[str, Any]:
    catalog = request.app.state.services.catalog
    return openrouter_error(with_openrouter_ids(problem, catalog))


def render_openrouter_images(problem: Problem, request: Request) -> dict[str, Any]:
    """OpenRouter's shape, with the Image API's parameter names (``resolution``, ``n``...)."""
    catalog = request.app.state.services.catalog
    return openrouter_error(with_openrouter_ids(problem, catalog), "openrouter_images")


def render_openai(problem: Problem, request: Request) -> dict[str, Any]:
    return openai_error(problem)


class OpenRouterRoute(DialectRoute):
    render = staticmethod(render_openrouter)


class OpenRouterImagesRoute(DialectRoute):
    render = staticmethod(render_openrouter_images)


class OpenAIRoute(DialectRoute):
    render = staticmethod(render_openai)


# ------------------------------------------------------------------------------ the target
async def choose_target(
    session: AsyncSession,
    services: Services,
    user_id: str,
    model: str | None,
    provider_hint: str | None,
) -> tuple[ModelChoice, str]:
    """(model, provider) for a call, by ``listings.resolve`` with the user's saved defaults
    and keys (with no key for the provider, the generation answers 400)."""
    defaults = await user_defaults(session, services.defaults_cache, user_id)
    upstream = await resolve_upstream(session, services, user_id)
    target = await resolve(
        services,
        upstream,
        model,
        provider_hint,
        default_model=defaults.model if defaults else None,
        default_provider=defaults.provider if defaults else None,
    )
    return target.choice, target.provider


def generate_in(**fields: Any) -> GenerateIn:
    """The service's generation request (its validation errors become 400s)."""
    return GenerateIn(**{k: v for k, v in fields.items() if v is not None})


Kept = TypeVar("Kept")


async def submit_call(
    services: Services,
    user: User,
    *,
    model: str | None,
    provider_hint: str | None,
    kind: str,
    idempotency_key: str | None,
    build: Callable[[ModelChoice, str], tuple[GenerateIn, Kept]],
    history: Sequence[Exchange] = (),
) -> tuple[ModelSpec, Kept, Job, bool]:
    """A compatible call as a job: the target chosen (``choose_target``), ``build(choice,
    provider)`` giving the generation request and what the route keeps of the call, the job
    committed; all in one session, closed before the route waits for the job.  Returns (the
    model, what ``build`` kept, the job, replayed)."""
    async with services.sessionmaker() as session:
        choice, provider = await choose_target(session, services, user.id, model, provider_hint)
        request, kept = build(choice, provider)
        job, replayed = await create_job(
            session,
            services,
            user,
            request,
            kind=kind,
            idempotency_key=idempotency_key,
            history=history,
        )
    return choice.spec, kept, job, replayed


# ----------------------------------------------------------------------------------- jobs
async def wait_outcome(services: Services, job_id: str, model: str) -> JobOutcome | None:
    """Wait for the job to end; its outcome from memory when it ran here (no re-read of the
    record or the files), else from the database."""
    finished = await services.job_manager.wait(job_id)
    if finished is not None:
        return await outcome_of(services, finished, model)
    return await load_outcome(services, job_id, model)


async def outcome_of(services: Services, finished: Finished, model: str) -> JobOutcome:
    return await _outcome(services, finished.job, finished.images, finished.data, model)


async def load_outcome(services: Services, job_id: str, model: str) -> JobOutcome | None:
    """The finished job as plain data (image bytes read only when it succeeded); None when
    the job was deleted meanwhile."""
    async with services.sessionmaker() as session:
        job = await session.get(Job, job_id)
        if job is None:
            return None
        stored = (await images_of(session, [job_id]))[job_id]
        await session.commit()
    return await _outcome(services, job, stored, None, model)


async def _outcome(
    services: Services,
    job: Job,
    stored: Sequence[StoredImage],
    data: Sequence[Pieces] | None,
    model: str,
) -> JobOutcome:
    payloads: list[ImagePayload] = []
    if job.status == "succeeded":
        known: Sequence[Pieces | None] = data if data is not None else [None] * len(stored)
        pairs = zip(stored, known, strict=True)
        for img, payload in sorted(pairs, key=lambda p: p[0].index):
            body = payload if payload is not None else await stored_bytes(services.store, img)
            payloads.append(
                ImagePayload(
                    data=body,
                    mime_type=img.mime_type,
                    width=img.width,
                    height=img.height,
                    index=img.index,
                    path=image_url(img.id),
                )
            )
    return JobOutcome(
        id=job.id,
        created=int(job.created_at.timestamp()),
        status=job.status,
        provider=job.provider,
        model=model,
        text=job.text,
        usage=job.usage,
        error_code=job.error_code,
        error_message=job.error_message,
        error_details=dict(job.error_details or {}),
        synthetic=job.synthetic,
        images=tuple(payloads),
        grounding=job.grounding,
        provider_model=job.provider_model,
        continuation=job.continuation,
    )


async def answered_outcome(
    services: Services,
    job_id: str,
    model: str,
    replayed: bool,
    headers: dict[str, str],
    content_outcomes: bool = False,
) -> JobOutcome:
    """The finished job when it has an answer (images; with ``content_outcomes``, also a
    block or a text-only reply), else its failure raised as a ``ProblemError`` carrying
    ``headers``."""
    outcome = await wait_outcome(services, job_id, model)
    if outcome is not None and (
        outcome.succeeded or (content_outcomes and outcome.content_outcome)
    ):
        return outcome
    problem = failure_problem(outcome, job_id, replayed)
    problem.headers.update(headers)
    raise ProblemError(problem)


def failure_problem(outcome: JobOutcome | None, job_id: str, replayed: bool = False) -> Problem:
    """The error answer of a job that gave no image (``replayed``: the answer of an earlier
    identical call, given again instead of paying for a new one)."""
    if outcome is None:
        return Problem(
            404, "not_found", "The generation was deleted while it ran.", details={"job_id": job_id}
        )
    if outcome.status == "succeeded":  # cannot happen: a success has at least one image
        return Problem(
            500, "internal_error", "The generation stored no image.", details={"job_id": job_id}
        )
    details = {**outcome.error_details, "job_id": outcome.id}
    problem = from_job(
        outcome.error_code or "internal_error",
        outcome.error_message or "The generation failed.",
        details,
    )
    if replayed:
        problem.message += REPLAY_NOTE.format(id=outcome.generation_id)
        problem.details["replayed"] = True
    return problem


#: Said after the message of a failure answered again to an identical call.
REPLAY_NOTE = (
    " (The answer of the identical earlier call {id}, given again instead of sending this one. "
    "To pay for a new attempt, change the request or send a new Idempotency-Key.)"
)


def job_headers(
    job_id: str, replayed: bool, extra: Sequence[tuple[str, str]] = ()
) -> dict[str, str]:
    headers = {"X-Generation-Id": f"gen-{job_id}", "X-Job-Id": job_id, **dict(extra)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return headers
