"""Rows to response bodies: one place that decides what a client sees of a job or an image.

Nothing secret is stored in these rows, and nothing here reads another user's data: callers
pass rows they already loaded for the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .db.models import Job, StoredImage
from .errors import ImageFileMissing
from .reports import report
from .storage import ImageStore


def image_url(image_id: str) -> str:
    return f"/api/images/{image_id}"


def image_out(img: StoredImage) -> dict[str, Any]:
    return {
        "id": img.id,
        "index": img.index,
        "url": image_url(img.id),
        # Made on first request when the row has none yet (routes/images.py).
        "thumb_url": f"{image_url(img.id)}?thumb=1",
        "mime_type": img.mime_type,
        "width": img.width,
        "height": img.height,
        "size": img.size,
        "sha256": img.sha256,
        "favourite": bool(img.favourite),
    }


def gallery_image_out(img: StoredImage, job: Job) -> dict[str, Any]:
    """An image as the gallery lists it (``schemas.GalleryImage``)."""
    return {
        **image_out(img),
        "generation_id": job.id,
        "prompt": job.prompt,
        "model": job.model,
        "provider": job.provider,
        "aspect_ratio": img.aspect_ratio,
        "image_size": img.image_size,
        "synthetic": bool(job.synthetic),
        "created_at": img.created_at.isoformat(),
    }


def _error_out(job: Job) -> dict[str, Any] | None:
    if not job.error_code:
        return None
    r = report(job.error_code, job.error_message or "", job.error_details)
    return {**r.body()["error"], "status": r.status}


def outcome_out(job: Job) -> dict[str, Any]:
    """What ran and what it cost: shared by the history record and the seed answer."""
    return {
        "provider": job.provider,
        "model": job.model,
        "provider_model": job.provider_model,
        "text": job.text,
        "usage": job.usage,
        "cost": job.cost,
        "cost_is_estimate": job.cost_is_estimate,
        "fallback": job.attempts or [],
        "failures": job.failures or [],
        "warnings": job.warnings or [],
        "grounding": job.grounding,
        "synthetic": job.synthetic,
    }


def generation_out(job: Job, images: Sequence[StoredImage]) -> dict[str, Any]:
    req = job.request or {}
    return {
        "id": job.id,
        "status": job.status,
        "kind": job.kind,
        "prompt": job.prompt,
        "negative_prompt": req.get("negative_prompt"),
        "effective_prompt": job.effective_prompt,
        "request": req,
        **outcome_out(job),
        "error": _error_out(job),
        "images": [image_out(i) for i in sorted(images, key=lambda i: i.index)],
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "timings": job.timings,
        "events_url": f"/api/generations/{job.id}/events",
        # Whether its end is POSTed to a webhook (the delivery: ``/webhook``); not the URL,
        # which may carry the receiver's own token.
        "webhook": job.webhook_url is not None,
    }


async def images_of(session: AsyncSession, job_ids: Sequence[str]) -> dict[str, list[StoredImage]]:
    out: dict[str, list[StoredImage]] = {j: [] for j in job_ids}
    if not job_ids:
        return out
    rows = await session.scalars(select(StoredImage).where(StoredImage.job_id.in_(job_ids)))
    for img in rows:
        out[img.job_id].append(img)
    return out


async def stored_bytes(store: ImageStore, image: StoredImage) -> bytes:
    """An image's bytes from the store; ``ImageFileMissing`` (saying what to fix) when the
    row is there but the file is not: a worker on another host wrote it to its own folder."""
    try:
        return await store.get(image.storage_key)
    except FileNotFoundError:
        raise ImageFileMissing(
            "The image was made and recorded, but its file is not in this service's image "
            "store. Processes on several hosts must share one: set NANOBANANA_STORAGE_URL "
            "(docs/deploy.md).",
            image_id=image.id,
            job_id=image.job_id,
        ) from None
