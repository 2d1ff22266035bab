"""GET /api/images/{id}: a stored image (or its thumbnail), to its owner only.

The Content-Type is the one found by decoding the bytes when they were stored (only PNG, JPEG
and WEBP are ever stored), with ``nosniff``; the bytes under an id never change, so they are
cacheable for a year, privately.

Thumbnails are made on their first request, stored and recorded: a generation does not pay for
decoding every pixel of an image whose preview may never be asked for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ...imaging import thumbnail
from ..db.models import StoredImage, is_object_id
from ..deps import CurrentUser, ServicesDep, SessionDep
from ..problems import not_found
from ..services import Services
from .common import errors

log = logging.getLogger("nanobanana.server")

router = APIRouter(prefix="/api/images", tags=["images"])

_IMAGE_CONTENT = {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/webp": {"schema": {"type": "string", "format": "binary"}},
}


@router.head("/{image_id}", response_class=Response, include_in_schema=False)
@router.get(
    "/{image_id}",
    response_class=Response,
    responses={
        200: {"description": "The image bytes.", "content": _IMAGE_CONTENT},
        **errors(401, 404),
    },
)
async def get_image(
    request: Request,
    image_id: str,
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    thumb: Annotated[bool, Query(description="A small WEBP preview instead.")] = False,
) -> Response:
    """The image's bytes (`?thumb=1`: a WEBP thumbnail, at most 384 px a side); `HEAD`: the
    same headers without the bytes."""
    if not is_object_id(image_id):
        raise not_found("image")
    img = await session.scalar(
        select(StoredImage).where(StoredImage.id == image_id, StoredImage.user_id == user.id)
    )
    await session.commit()
    if img is None:
        raise not_found("image")
    key, mime = img.storage_key, img.mime_type
    if thumb:
        thumb_key = img.thumb_key or await _make_thumbnail(services, session, img)
        if thumb_key is not None:
            key, mime = thumb_key, "image/webp"
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[mime]
    headers = {
        "Cache-Control": "private, max-age=31536000, immutable",
        "ETag": f'"{img.sha256}{"-t" if key != img.storage_key else ""}"',
        "Content-Disposition": f'inline; filename="{img.id}.{ext}"',
        "X-Content-Type-Options": "nosniff",
    }
    if request.method == "HEAD" and key == img.storage_key:
        if not await services.store.exists(key):
            raise not_found("image file")
        headers["Content-Length"] = str(img.size)  # the GET's, without reading the file
        return Response(b"", media_type=mime, headers=headers)
    try:
        data = await services.store.get(key)
    except FileNotFoundError:
        raise not_found("image file") from None
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return Response(b"", media_type=mime, headers=headers)
    return Response(data, media_type=mime, headers=headers)


async def _make_thumbnail(
    services: Services, session: AsyncSession, img: StoredImage
) -> str | None:
    """Make, store and record ``img``'s thumbnail; None (the image itself is then served) when
    the stored file is missing or cannot be decoded.  Two first requests at once both make it:
    the same bytes under the same content key, the same row value."""
    try:
        data = await services.store.get(img.storage_key)
    except FileNotFoundError:
        return None
    try:
        small = await asyncio.to_thread(thumbnail, data)
    except (OSError, ValueError) as exc:
        log.warning("No thumbnail for image %s: %s", img.id, type(exc).__name__)
        return None
    key = await services.store.put(small, extension="webp")
    await session.execute(update(StoredImage).where(StoredImage.id == img.id).values(thumb_key=key))
    await session.commit()
    return key
