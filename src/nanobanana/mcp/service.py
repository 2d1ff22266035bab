"""The backend of the service's ``/mcp``: each tool call is a job of the caller, with their
keys, defaults, fallback, rate limit and history, through the service layer (no HTTP here).

Images are the service's stored images: a result links each by its download URL
(``GET /api/images/{id}``, with the same bearer token), and an earlier result is named by its
``generation_id`` (the job's id; ``<id>#2`` for its second image); an upload id or a data URL
works too, as for the service's API, which fetches no URL for a client.  A call the client cancels
cancels its job if it has not been sent yet; one already sent runs to its end and is kept
(``get_generation`` finds it), since the provider bills it either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from sqlalchemy import select

from ..catalog import ModelSpec
from ..errors import MissingKeyError, ValidationError
from ..imaging import to_data_url
from ..request import GenerationRequest
from ..server.db.models import ACTIVE_STATUSES, Job, StoredImage, Upload, User
from ..server.events import CLOSED
from ..server.generation import submit_job
from ..server.jobs import cancel_queued
from ..server.reports import missing_key_message, report
from ..server.schemas import GenerateIn, TurnIn
from ..server.services import Services
from ..server.sessions import create_session, start_turn
from ..server.views import image_url, images_of, stored_bytes
from ..types import ReferenceImage
from .results import Failure, Outcome, SavedImage, advice, failed_images
from .tools import LATEST, Progress

__all__ = ["ServiceBackend"]

#: A generation id (a job's), optionally with the image wanted (``<id>#2``).
_ID = re.compile(r"(?P<id>[0-9a-f]{32})(?:#(?P<k>\d+))?")

REFERENCES_HELP = (
    "the generation_id of an earlier result of yours (<id>#2 for its second image), an upload "
    "id from POST /api/uploads, or a data:image/...;base64 URL"
)


class ServiceBackend:
    """The tools for ``user`` of the service; ``base_url`` makes the download links."""

    references_help = REFERENCES_HELP

    def __init__(self, services: Services, user: User, base_url: str) -> None:
        self.services = services
        self.user = user
        self.base_url = base_url.rstrip("/")

    # ------------------------------------------------------------------------ tools
    async def generate(
        self, request: GenerationRequest, references: list[str], progress: Progress
    ) -> Outcome:
        body = GenerateIn(**_fields(request), images=await self._references(references))
        job, _ = await submit_job(self.services, self.user, body, kind="mcp", idempotency_key=None)
        return await self._follow(job.id, progress)

    async def turn(
        self,
        request: GenerationRequest,
        references: list[str],
        session_id: str | None,
        parent_id: str | None,
        progress: Progress,
    ) -> Outcome:
        fields: dict[str, Any] = _fields(request)
        fields["images"] = await self._references(references)
        if parent_id != LATEST:
            fields["parent_turn_id"] = parent_id
        body = TurnIn(**fields)
        if session_id is None:
            async with self.services.sessionmaker() as db:
                session_id = (await create_session(db, self.services, self.user.id, None)).id
                await db.commit()
        job, _ = await start_turn(self.services, self.user, session_id, body, idempotency_key=None)
        return await self._follow(job.id, progress)

    async def generation(self, generation_id: str) -> Outcome:
        job, images = await self._owned(generation_id)
        if job.status in ACTIVE_STATUSES:  # still running: its end
            return await self._follow(job.id, _quiet)
        return await self._outcome(job, images)

    async def models(self) -> list[ModelSpec]:
        return list(self.services.catalog)

    def missing_key_advice(self, exc: MissingKeyError) -> str:
        return f"{missing_key_message(exc.provider)} The settings page is {self.base_url}/settings."

    # ------------------------------------------------------------------------ helpers
    async def _follow(self, job_id: str, progress: Progress) -> Outcome:
        """Tell the job's progress until it ends; its outcome.  Cancelled meanwhile: the job
        too, if it is still queued."""
        teller = asyncio.create_task(self._tell(job_id, progress))
        try:
            await self.services.job_manager.wait(job_id)
        except asyncio.CancelledError:
            await asyncio.shield(cancel_queued(self.services, job_id))
            raise
        finally:
            teller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await teller
        job, images = await self._owned(job_id)
        if job.status != "succeeded":
            raise ToolError(_failure(job))
        return await self._outcome(job, images)

    async def _tell(self, job_id: str, progress: Progress) -> None:
        async with self.services.bus.subscribe(job_id) as sub:
            if sub is None:
                return
            history, queue = sub
            for event in history:
                await _progress(event, progress)
            while (event := await queue.get()) is not CLOSED and event["event"] != "done":
                await _progress(event, progress)

    async def _owned(self, generation_id: str) -> tuple[Job, list[StoredImage]]:
        found = await self._find(generation_id)
        if found is None:
            raise ValidationError(
                f"You have no generation {generation_id!r}: pass a generation_id an earlier "
                "result returned.",
                field="generation_id",
            )
        return found

    async def _find(self, generation_id: str) -> tuple[Job, list[StoredImage]] | None:
        """The caller's generation of that id and its images (``None``: none of theirs)."""
        match = _ID.fullmatch(generation_id.strip())
        if match is None:
            return None
        async with self.services.sessionmaker() as db:
            job = await db.scalar(
                select(Job).where(Job.id == match["id"], Job.user_id == self.user.id)
            )
            images = (await images_of(db, [job.id]))[job.id] if job is not None else []
            await db.commit()
        return (job, images) if job is not None else None

    async def _uploaded(self, upload_id: str) -> bool:
        async with self.services.sessionmaker() as db:
            found = await db.scalar(
                select(Upload.id).where(Upload.id == upload_id, Upload.user_id == self.user.id)
            )
            await db.commit()
        return found is not None

    async def _references(self, items: list[str]) -> list[str]:
        """What the service takes as references (``generation.decode_references``): data URLs
        and upload ids as they are, an earlier result's image as its bytes (a data URL).  The
        service fetches no URL and reads no file for a client (no server-side request
        forgery): those are refused here with what to send instead."""
        out = []
        for pos, item in enumerate(items, 1):
            text = item.strip()
            match = _ID.fullmatch(text)
            if text.startswith("data:"):
                out.append(text)
                continue
            if match is None:
                raise ValidationError(
                    f"Reference image {pos} is not one this service takes: pass the "
                    "generation_id of an earlier result, an upload id (POST /api/uploads) or a "
                    "data:image/...;base64 URL. The service fetches no URL and reads no file; "
                    "file paths work with the stdio server, `nanobanana mcp`.",
                    field="images",
                )
            found = await self._find(match["id"])
            if found is None:
                if match["k"] is None and await self._uploaded(match["id"]):
                    out.append(match["id"])
                    continue
                raise ValidationError(
                    f"Reference image {pos}: you have no generation or upload {text!r}.",
                    field="images",
                )
            job, images = found
            k = int(match["k"] or 1)
            chosen = [i for i in images if i.index == k - 1]
            if not chosen:
                raise ValidationError(
                    f"Generation {job.id} has no image {k} (it has {len(images)}).",
                    field="images",
                )
            image = chosen[0]
            data = await stored_bytes(self.services.store, image)
            ref = ReferenceImage(data, image.mime_type, image.width, image.height)
            out.append(to_data_url(ref))
        return out

    async def _outcome(self, job: Job, images: list[StoredImage]) -> Outcome:
        saved = []
        for image in sorted(images, key=lambda i: i.index):
            url = f"{self.base_url}{image_url(image.id)}"
            saved.append(
                SavedImage(
                    index=image.index,
                    uri=url,
                    location=url,
                    mime_type=image.mime_type,
                    width=image.width,
                    height=image.height,
                    size=image.size,
                    data=await stored_bytes(self.services.store, image),
                )
            )
        record = job.request or {}
        return Outcome(
            generation_id=job.id,
            prompt=job.prompt,
            model=job.model or "",
            provider=job.provider or "",
            images=saved,
            text=job.text or "",
            aspect_ratio=record.get("aspect_ratio"),
            image_size=record.get("image_size"),
            cost=job.cost,
            cost_is_estimate=bool(job.cost_is_estimate),
            warnings=[
                *(str(w) for w in job.warnings or []),
                *failed_images(
                    (f.get("index", 0), f.get("error"))
                    for f in job.failures or []
                    if isinstance(f, dict)
                ),
            ],
            synthetic=bool(job.synthetic),
            session_id=job.session_id,
            parent_id=job.parent_id,
        )


def _fields(request: GenerationRequest) -> dict[str, Any]:
    """A request's fields by the service's names (``GenerateIn``), those given only."""
    fields = {
        "prompt": request.prompt,
        "num_images": request.n,
        "negative_prompt": request.negative_prompt,
        "provider": request.provider,
        "model": request.model,
        "aspect_ratio": request.aspect_ratio,
        "image_size": request.image_size,
        "seed": request.seed,
    }
    return {k: v for k, v in fields.items() if v is not None}


async def _quiet(message: str, image_arrived: bool) -> None:
    return None


async def _progress(event: dict[str, Any], progress: Progress) -> None:
    data = event.get("data") or {}
    if event["event"] == "image":
        await progress(
            f"image {data.get('index', 0) + 1} arrived ({data.get('width')}x{data.get('height')})",
            True,
        )
    elif event["event"] == "fallback":
        await progress(f"{data.get('from')} failed; trying {data.get('to')}", False)
    elif event["event"] == "running":
        await progress("running", False)


def _failure(job: Job) -> str:
    """Why the job gave no image, and what to do about it."""
    details = dict(job.error_details or {})
    code = job.error_code or "internal_error"
    said = report(code, job.error_message or "", details)
    if code == "cancelled":
        return f"{said.message} (generation {job.id})."
    wait = details.get("retry_after")
    return advice(
        Failure(
            code=code,
            message=said.message,
            provider=details.get("provider"),
            retry_after=float(wait) if wait else None,
            per_day=bool(details.get("per_day")),
            reason=details.get("reason"),
            text=details.get("text"),
            temporary=said.status == 503 and not details.get("may_be_billed"),
            providers_tried=frozenset(
                str(a["provider"]) for a in job.attempts or [] if isinstance(a, dict)
            ),
        )
    )
