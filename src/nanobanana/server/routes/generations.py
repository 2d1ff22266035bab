"""Asynchronous generations and the history: create (202), read, list, delete, and events (SSE).

Every query filters on the caller's id: another user's job is a 404, exactly like a job that
does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .. import webhooks
from ..db.models import (
    ACTIVE_STATUSES,
    Job,
    StoredImage,
    WebhookDelivery,
    is_object_id,
    prompt_contains,
)
from ..deps import CurrentUser, ServicesDep, SessionDep
from ..events import CLOSED
from ..generation import create_job
from ..jobs import cancel, is_active
from ..problems import ApiError, json_response, not_found
from ..schemas import (
    GenerateIn,
    Generation,
    GenerationAccepted,
    GenerationList,
    JobStatus,
    WebhookDeliveryOut,
)
from ..services import Services
from ..uploads import delete_unreferenced
from ..views import generation_out, images_of
from .common import PromptSearch, after_cursor, encode_cursor, errors
from .generate import IdempotencyKey

router = APIRouter(prefix="/api/generations", tags=["generations"])

#: One server-sent event, as OpenAPI 3.1 describes a stream's items (``data`` is JSON text).
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "enum": [
                "queued",
                "running",
                "attempt",
                "fallback",
                "text",
                "image",
                "done",
                "status",
                "deleted",
            ],
        },
        "data": {"type": "string", "description": "A JSON object."},
        "id": {"type": "string"},
    },
    "required": ["event", "data"],
}
#: Seconds between SSE comments that keep proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0


async def owned_job(session: AsyncSession, user_id: str, job_id: str) -> Job:
    if not is_object_id(job_id):
        raise not_found("generation")
    job = await session.scalar(select(Job).where(Job.id == job_id, Job.user_id == user_id))
    if job is None:
        raise not_found("generation")
    return job


@router.post(
    "",
    status_code=202,
    response_model=GenerationAccepted,
    responses=errors(400, 401, 409, 413, 422, 429),
)
async def create_generation(
    body: GenerateIn,
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Start a generation and return at once; follow it with GET .../{id} or .../{id}/events."""
    job, replayed = await create_job(
        session, services, user, body, kind="async", idempotency_key=idempotency_key
    )
    url = f"/api/generations/{job.id}"
    headers = {"Location": url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    out = {"id": job.id, "status": job.status, "url": url, "events_url": f"{url}/events"}
    return json_response(out, 202, headers)


@router.get("", response_model=GenerationList, responses=errors(401, 422))
async def list_generations(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: PromptSearch = None,
    status: JobStatus | None = None,
) -> Response:
    """Your generations, newest first, `limit` per page."""
    stmt = select(Job).where(Job.user_id == user.id)
    if q:
        stmt = stmt.where(prompt_contains(q))
    if status:
        stmt = stmt.where(Job.status == status)
    if cursor:
        stmt = stmt.where(after_cursor(Job.created_at, Job.id, cursor))
    stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    jobs = list((await session.scalars(stmt)).all())
    more = len(jobs) > limit
    jobs = jobs[:limit]
    images = await images_of(session, [j.id for j in jobs])
    await session.commit()
    items = [generation_out(j, images[j.id]) for j in jobs]
    next_cursor = encode_cursor(jobs[-1].created_at, jobs[-1].id) if more and jobs else None
    return json_response({"items": items, "next_cursor": next_cursor})


@router.get("/{job_id}", response_model=Generation, responses=errors(401, 404))
async def get_generation(job_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """One generation: status, parameters, attempts, cost, images (URLs) or the error."""
    job = await owned_job(session, user.id, job_id)
    images = (await images_of(session, [job.id]))[job.id]
    await session.commit()
    return json_response(generation_out(job, images))


@router.get("/{job_id}/webhook", response_model=WebhookDeliveryOut, responses=errors(401, 404))
async def get_generation_webhook(
    job_id: str, user: CurrentUser, session: SessionDep
) -> WebhookDeliveryOut:
    """The delivery of the generation's final state to its webhook, with every attempt: 404
    while the generation runs, or when it has no webhook."""
    job = await owned_job(session, user.id, job_id)
    row = await session.get(WebhookDelivery, job.id)
    await session.commit()
    if row is None:
        raise not_found("webhook delivery")
    return WebhookDeliveryOut.model_validate(webhooks.delivery_out(row))


@router.post("/{job_id}/cancel", response_model=Generation, responses=errors(401, 404, 409))
async def cancel_generation(
    job_id: str, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    """Cancel a generation; it ends as `failed` with `error.code` `job_cancelled` (asking again
    answers the same).  One still queued is never sent (`may_be_billed: false`).  One running
    has its call stopped, wherever it runs: nothing more is sent (no retry, no fallback), the
    provider may bill what was (`may_be_billed: true`), and every image that had arrived is
    kept.  One that had already ended: 409 `job_finished`."""
    job = await owned_job(session, user.id, job_id)
    await session.commit()
    cancelled = job.status in ACTIVE_STATUSES and await cancel(services, job.id)
    await session.refresh(job)  # as the UPDATE (or another process) left it
    images = (await images_of(session, [job.id]))[job.id]
    await session.commit()
    out = generation_out(job, images)
    if cancelled:
        services.bus.publish(job.id, "done", out)  # followers of its events see the end
    if cancelled or job.error_code == "cancelled":
        return json_response(out)
    raise ApiError(409, "job_finished", f"The generation has already ended ({job.status}).")


@router.delete("/{job_id}", status_code=204, responses=errors(401, 404, 409))
async def delete_generation(
    job_id: str, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    """Delete a finished generation and its image files."""
    job = await owned_job(session, user.id, job_id)
    if job.status in ACTIVE_STATUSES:
        raise ApiError(409, "job_running", "The generation is still running; delete it later.")
    rows = (await session.scalars(select(StoredImage).where(StoredImage.job_id == job.id))).all()
    keys = {k for r in rows for k in (r.storage_key, r.thumb_key) if k}
    await session.execute(delete(StoredImage).where(StoredImage.job_id == job.id))
    await session.execute(delete(Job).where(Job.id == job.id))
    await session.commit()
    await delete_unreferenced(session, services, keys)
    return Response(status_code=204)


def _sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


async def _stored_state(services: Services, job_id: str) -> bytes:
    async with services.sessionmaker() as session:
        job = await session.get(Job, job_id)
        if job is None:
            return _sse("deleted", {"id": job_id})
        images = (await images_of(session, [job_id]))[job_id]
        await session.commit()
    name = "status" if job.status in ACTIVE_STATUSES else "done"
    return _sse(name, generation_out(job, images))


async def _event_stream(services: Services, job_id: str) -> AsyncIterator[bytes]:
    """The job's events (from every process when the bus is shared), then its stored state
    when they end without ``done``; with a shared bus, a job that is not active (it ended
    before, or another process's reconciliation ended it) is answered from the database."""
    bus = services.bus
    async with bus.subscribe(job_id) as sub:
        if sub is not None:
            history, queue = sub
            for ev in history:
                yield _sse(ev["event"], ev["data"], ev["id"])
                if ev["event"] == "done":
                    return
            ended = bus.shared and not await is_active(services, job_id)
            while not ended:
                try:
                    ev = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if bus.shared and not await is_active(services, job_id):
                        break
                    yield b": keep-alive\n\n"
                    continue
                if ev is CLOSED:
                    break
                yield _sse(ev["event"], ev["data"], ev["id"])
                if ev["event"] == "done":
                    return
    yield await _stored_state(services, job_id)


@router.get(
    "/{job_id}/events",
    responses={
        200: {
            "description": "Server-sent events: `queued`, `running`, `attempt`, `fallback`, "
            "`image`, then `done` with the generation (for a job running in another process "
            "without a shared Redis, one `status` event).",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **errors(401, 404),
    },
    response_class=StreamingResponse,
)
async def generation_events(
    job_id: str, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> StreamingResponse:
    """Follow a generation as it runs (ends with a `done` event)."""
    await owned_job(session, user.id, job_id)
    await session.commit()
    return StreamingResponse(
        _event_stream(services, job_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
