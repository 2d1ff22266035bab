"""Editing sessions: POST/GET /api/sessions, GET/DELETE /api/sessions/{id} and
POST /api/sessions/{id}/turns (docs/sessions.md).  The logic is in ``server.sessions``.

A turn is a generation (a job of kind ``session``): it has its events
(``/api/generations/{id}/events``), is listed in the history, and is answered as a generation
with its place in the tree (``session_id``, ``parent_turn_id``).  Posting a turn waits for it,
like ``/api/nano-banana/generate``, and fails the same way (the failed turn stays in the
tree, and cannot be continued).  Someone else's session is 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ..db.models import EditSession, Job, StoredImage
from ..deps import CurrentUser, ServicesDep, SessionDep
from ..problems import json_response, not_found
from ..schemas import SessionIn, SessionList, SessionOut, Turn, TurnIn
from ..sessions import (
    create_session,
    delete_session,
    latest_turn,
    list_sessions,
    owned_session,
    start_turn,
    turns_of,
)
from ..views import generation_out
from .common import errors
from .generate import IdempotencyKey, job_failure, load_job

router = APIRouter(prefix="/api/sessions", tags=["editing sessions"])


def turn_out(job: Job, images: list[StoredImage]) -> dict[str, Any]:
    return {
        **generation_out(job, images),
        "session_id": job.session_id,
        "parent_turn_id": job.parent_id,
    }


def session_out(
    edit: EditSession, turns: list[Job], images: dict[str, list[StoredImage]]
) -> dict[str, Any]:
    latest = latest_turn(turns)
    return {
        "id": edit.id,
        "title": edit.title,
        "created_at": edit.created_at.isoformat(),
        "updated_at": edit.updated_at.isoformat(),
        "turns": [turn_out(t, images[t.id]) for t in turns],
        "latest_turn_id": latest.id if latest is not None else None,
    }


@router.post("", status_code=201, response_model=SessionOut, responses=errors(401, 422))
async def new_session(
    body: SessionIn, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    """Start a session; its first turn is the first `POST .../turns`."""
    edit = await create_session(session, services, user.id, body.title)
    await session.commit()
    return json_response(session_out(edit, [], {}), 201)


@router.get("", response_model=SessionList, responses=errors(401))
async def sessions(user: CurrentUser, session: SessionDep) -> Response:
    """Your sessions, the most recently used first."""
    rows = await list_sessions(session, user.id)
    await session.commit()
    items = [
        {
            "id": e.id,
            "title": e.title,
            "created_at": e.created_at.isoformat(),
            "updated_at": e.updated_at.isoformat(),
            "turn_count": n,
        }
        for e, n in rows
    ]
    return json_response({"items": items})


@router.get("/{session_id}", response_model=SessionOut, responses=errors(401, 404))
async def get_session(session_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """The session as a tree: every turn (oldest first) with its `parent_turn_id`."""
    edit = await owned_session(session, user.id, session_id)
    turns, images = await turns_of(session, edit)
    await session.commit()
    return json_response(session_out(edit, turns, images))


@router.post(
    "/{session_id}/turns",
    response_model=Turn,
    responses=errors(400, 401, 404, 409, 413, 422, 429, 503),
)
async def add_turn(
    session_id: str,
    body: TurnIn,
    user: CurrentUser,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The next turn: `prompt` (and `images`, `model`, `provider`...) continuing
    `parent_turn_id` (default: the latest turn that succeeded).  Waits for the images."""
    job, replayed = await start_turn(
        services, user, session_id, body, idempotency_key=idempotency_key
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    finished = await services.job_manager.wait(job.id)
    if finished is not None:
        done: Job | None = finished.job
        images = list(finished.images)
    else:
        done, images = await load_job(services, job.id)
    if done is None:
        raise not_found("turn")
    if done.status != "succeeded":
        err = job_failure(done)
        err.headers.update(headers)
        raise err
    return json_response(turn_out(done, images), headers=headers)


@router.delete("/{session_id}", status_code=204, responses=errors(401, 404, 409))
async def remove_session(
    session_id: str, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    """Delete a session, every turn of it and their image files."""
    await delete_session(session, services, user.id, session_id)
    return Response(status_code=204)
