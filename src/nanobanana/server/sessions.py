"""Editing sessions (docs/sessions.md): a tree of turns per user, each turn a job.

A turn is a job with ``session_id`` and ``parent_id`` (the turn it continues).  When it runs,
``history_of`` rebuilds the path from the first turn to its parent as the library's
``PriorTurn`` values, from the jobs' records and the stored files, by the library's rule of how
many turns go with their images (``conversation.first_whole_turn``): only those turns' files
are read.  What a provider needs to continue from a turn (``Job.continuation``) is recorded when
the turn succeeds.

Only the owner ever reads or continues a session: every lookup is by id *and* user, and a
session or turn of someone else is "not found", never "forbidden".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..conversation import HISTORY_IMAGE_TURNS, first_whole_turn
from ..errors import ReferenceImageError
from ..types import PriorTurn, ReferenceImage
from .db.models import ACTIVE_STATUSES, EditSession, Job, StoredImage, Upload, User, new_id
from .errors import SessionBusy, SessionNotFound, TurnNotContinuable
from .generation import create_job
from .schemas import TurnIn
from .services import Services
from .uploads import delete_unreferenced
from .views import images_of

#: The longest path a turn may continue (a guard against a cycle in damaged records).
MAX_PATH = 1000
_TITLE_CHARS = 80


async def create_session(
    db: AsyncSession, services: Services, user_id: str, title: str | None
) -> EditSession:
    now = services.now()
    edit = EditSession(
        id=new_id(), user_id=user_id, title=(title or "").strip(), created_at=now, updated_at=now
    )
    db.add(edit)
    await db.flush()
    return edit


async def owned_session(db: AsyncSession, user_id: str, session_id: str) -> EditSession:
    edit = await db.scalar(
        select(EditSession).where(EditSession.id == session_id, EditSession.user_id == user_id)
    )
    if edit is None:
        raise SessionNotFound("No editing session with that id.")
    return edit


async def list_sessions(db: AsyncSession, user_id: str) -> list[tuple[EditSession, int]]:
    """The user's sessions, most recently used first, with how many turns each has."""
    counts = (
        select(Job.session_id, func.count().label("n"))
        .where(Job.user_id == user_id, Job.session_id.is_not(None))
        .group_by(Job.session_id)
        .subquery()
    )
    rows = await db.execute(
        select(EditSession, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.session_id == EditSession.id)
        .where(EditSession.user_id == user_id)
        .order_by(EditSession.updated_at.desc(), EditSession.id.desc())
    )
    return [(edit, int(n)) for edit, n in rows.all()]


async def turns_of(
    db: AsyncSession, edit: EditSession
) -> tuple[list[Job], dict[str, list[StoredImage]]]:
    """Every turn of a session, oldest first, and their images."""
    jobs = list(
        (
            await db.scalars(
                select(Job)
                .where(Job.session_id == edit.id, Job.user_id == edit.user_id)
                .order_by(Job.created_at, Job.id)
            )
        ).all()
    )
    return jobs, await images_of(db, [j.id for j in jobs])


def latest_turn(turns: Sequence[Job]) -> Job | None:
    """The turn a new turn continues by default: the latest that succeeded."""
    done = [t for t in turns if t.status == "succeeded"]
    return done[-1] if done else None


async def start_turn(
    services: Services,
    user: User,
    session_id: str,
    body: TurnIn,
    *,
    idempotency_key: str | None,
) -> tuple[Job, bool]:
    """The next turn of a session as a committed job (``generation.create_job``), continuing
    ``body.parent_turn_id`` (given) or the latest turn that succeeded (not given)."""
    user_id = user.id
    async with services.sessionmaker() as db:
        edit = await owned_session(db, user_id, session_id)
        if "parent_turn_id" in body.model_fields_set:
            parent_id = body.parent_turn_id
            if parent_id is not None:
                parent = await db.scalar(
                    select(Job).where(
                        Job.id == parent_id, Job.session_id == edit.id, Job.user_id == user_id
                    )
                )
                if parent is None:
                    raise SessionNotFound("No turn with that id in this session.")
                if parent.status != "succeeded":
                    raise TurnNotContinuable(
                        f"That turn {_how(parent.status)}: only a turn that succeeded can be "
                        "continued. Continue from another turn, or send it again.",
                        turn_id=parent.id,
                        turn_status=parent.status,
                    )
        else:
            parent_id = await db.scalar(
                select(Job.id)
                .where(Job.session_id == edit.id, Job.status == "succeeded")
                .order_by(Job.created_at.desc(), Job.id.desc())
                .limit(1)
            )
        untitled = not edit.title
        earlier = await _images_sent(db, edit.id, parent_id)
        await db.commit()
        job, replayed = await create_job(
            db,
            services,
            user,
            body,
            kind="session",
            idempotency_key=idempotency_key,
            session_id=edit.id,
            parent_id=parent_id,
            earlier_images=earlier,
        )
    if not replayed:  # only a turn that was taken names and dates the session
        values: dict[str, Any] = {"updated_at": services.now()}
        if untitled:
            values["title"] = _title(body.prompt)
        stmt = update(EditSession).where(EditSession.id == session_id).values(**values)
        await services.tx.run(lambda conn: conn.execute(stmt))
    return job, replayed


async def _images_sent(db: AsyncSession, session_id: str, parent_id: str | None) -> int:
    """How many images the turns before a new one send with it (``history_of``): each of the
    last whole turns of the path to ``parent_id`` sends its references and its first image.
    For the estimate held against the spending caps."""
    count, next_id = 0, parent_id
    for _ in range(HISTORY_IMAGE_TURNS):  # the whole turns (``first_whole_turn``)
        if next_id is None:
            break
        turn = (
            await db.execute(
                select(Job.parent_id, Job.request).where(
                    Job.id == next_id, Job.session_id == session_id
                )
            )
        ).first()
        if turn is None:
            break
        count += len(turn.request.get("images") or []) + 1
        next_id = turn.parent_id
    return count


def _how(status: str) -> str:
    return "is still running" if status in ACTIVE_STATUSES else f"ended as {status}"


def _title(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1].rstrip() + "…"


async def delete_session(
    db: AsyncSession, services: Services, user_id: str, session_id: str
) -> None:
    """A session, its turns and their image files (a file another row still uses is kept)."""
    edit = await owned_session(db, user_id, session_id)
    turns, images = await turns_of(db, edit)
    if any(t.status in ACTIVE_STATUSES for t in turns):
        raise SessionBusy("A turn of this session is still running; delete it when it ends.")
    ids = [t.id for t in turns]
    keys = {k for rows in images.values() for r in rows for k in (r.storage_key, r.thumb_key) if k}
    if ids:
        await db.execute(delete(StoredImage).where(StoredImage.job_id.in_(ids)))
        await db.execute(delete(Job).where(Job.id.in_(ids)))
    await db.execute(delete(EditSession).where(EditSession.id == edit.id))
    await db.commit()
    await delete_unreferenced(db, services, keys)


async def history_of(services: Services, job: Job, user_id: str) -> tuple[PriorTurn, ...]:
    """The history a job sends: for a turn of a session, the path from the session's first
    turn to the turn's parent, the last turns whole and the older ones as text
    (``conversation.first_whole_turn``); for a drop-in call, the exchanges its client sent
    (kept with the job by ``generation.create_job``, already cut by the same rule)."""
    if job.session_id is None:
        return await _history_of_record(services, job.request.get("history") or [], user_id)
    if job.parent_id is None:
        return ()
    async with services.sessionmaker() as db:
        # The session's turns that succeeded, in one read; the path is walked in memory.
        done = {
            t.id: t
            for t in await db.scalars(
                select(Job).where(
                    Job.session_id == job.session_id,
                    Job.user_id == user_id,
                    Job.status == "succeeded",
                )
            )
        }
        path: list[Job] = []
        next_id: str | None = job.parent_id
        while next_id is not None:
            turn = done.get(next_id)
            if turn is None or len(path) >= MAX_PATH:
                raise ReferenceImageError(
                    "A turn this one continues was deleted or did not succeed; continue from "
                    "another turn.",
                    field="parent_turn_id",
                )
            path.append(turn)
            next_id = turn.parent_id
        path.reverse()
        whole = path[first_whole_turn(len(path)) :]
        images = await images_of(db, [t.id for t in path])
        upload_ids = [i for t in whole for i in t.request.get("images") or []]
        uploads = {
            u.id: u
            for u in (
                await db.scalars(
                    select(Upload).where(Upload.id.in_(upload_ids), Upload.user_id == user_id)
                )
                if upload_ids
                else []
            )
        }
        await db.commit()
    whole_ids = {t.id for t in whole}
    out = []
    for turn in path:
        drawn = sorted(images[turn.id], key=lambda i: i.index)[:1]
        refs = list(turn.request.get("images") or [])
        common: dict[str, Any] = {
            "prompt": turn.effective_prompt or turn.prompt,
            "text": turn.text or "",
            "provider": turn.provider,
            "model": turn.provider_model,
            "continuation": turn.continuation,
        }
        if turn.id not in whole_ids:
            out.append(PriorTurn(**common, images_left_out=len(refs) + len(drawn)))
            continue
        references = []
        for upload_id in refs:
            upload = uploads.get(upload_id)
            if upload is None:
                raise ReferenceImageError(
                    "A reference image of an earlier turn was deleted.", field="images"
                )
            references.append(await _reference(services, upload))
        out.append(
            PriorTurn(
                **common,
                references=tuple(references),
                images=tuple([await _reference(services, img) for img in drawn]),
            )
        )
    return tuple(out)


async def _history_of_record(
    services: Services, record: list[dict[str, Any]], user_id: str
) -> tuple[PriorTurn, ...]:
    if not record:
        return ()
    ids = [i for turn in record for i in (*turn["references"], *turn["images"])]
    async with services.sessionmaker() as db:
        uploads = {
            u.id: u
            for u in await db.scalars(
                select(Upload).where(Upload.id.in_(ids), Upload.user_id == user_id)
            )
        }
        await db.commit()

    async def load(upload_id: str) -> ReferenceImage:
        upload = uploads.get(upload_id)
        if upload is None:
            raise ReferenceImageError("An image of the conversation was deleted.", field="images")
        return await _reference(services, upload)

    return tuple(
        [
            PriorTurn(
                prompt=turn["prompt"],
                references=tuple([await load(i) for i in turn["references"]]),
                text=turn["text"],
                images=tuple([await load(i) for i in turn["images"]]),
                images_left_out=turn["images_left_out"],
                provider=turn.get("provider"),
                model=turn.get("model"),
                continuation=turn.get("continuation"),
            )
            for turn in record
        ]
    )


async def _reference(services: Services, row: Upload | StoredImage) -> ReferenceImage:
    data = await services.store.get(row.storage_key)
    return ReferenceImage(data, row.mime_type, row.width, row.height)
