"""The gallery's images: list (filtered, sorted, by cursor), facets, favourites, delete and zip
(``gallery.py`` does the work); and GET /api/images/{id}: a stored image (or its thumbnail), to
its owner only.

The Content-Type is the one found by decoding the bytes when they were stored (only PNG, JPEG
and WEBP are ever stored), with ``nosniff``; the bytes under an id never change, so they are
cacheable for a year, privately.

Thumbnails are made on their first request, stored and recorded: a generation does not pay for
decoding every pixel of an image whose preview may never be asked for.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ...catalog import normalize_ratio, normalize_size
from ...imaging import thumbnail
from ...types import file_extension
from .. import gallery
from ..db.models import StoredImage, is_object_id, utcnow
from ..deps import CurrentUser, ServicesDep, SessionDep
from ..errors import ImagesNotFound
from ..problems import ApiError, json_response, not_found
from ..schemas import (
    MODEL_PATTERN,
    OBJECT_ID_PATTERN,
    RATIO_PATTERN,
    SIZE_PATTERN,
    WHEN_PATTERN,
    DeletedImages,
    FavouriteIn,
    FavouritesIn,
    GalleryFacets,
    GalleryImage,
    GalleryImages,
    GalleryPage,
    ImageIdsIn,
    ProviderName,
)
from ..services import Services
from ..views import gallery_image_out
from .common import PromptSearch, decode_cursor, encode_cursor, errors

log = logging.getLogger("nanobanana.server")

router = APIRouter(prefix="/api/images", tags=["images"])
#: An image's id in a path that takes only ids (the schema says so too).
ImageIdPath = Annotated[str, Path(pattern=OBJECT_ID_PATTERN)]

_IMAGE_CONTENT = {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/webp": {"schema": {"type": "string", "format": "binary"}},
}


def _when(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """A bound of the date filter: a day means the whole day (UTC), a time is taken as is."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            start = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        return datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422, "validation_error", f"{name} is not a real date or time: {value[:40]!r}."
        ) from None


@router.get("", response_model=GalleryPage, responses=errors(401, 422))
async def list_images(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    sort: gallery.Sort = "newest",
    q: PromptSearch = None,
    model: Annotated[str | None, Query(pattern=MODEL_PATTERN)] = None,
    provider: ProviderName | None = None,
    aspect_ratio: Annotated[str | None, Query(pattern=RATIO_PATTERN)] = None,
    image_size: Annotated[str | None, Query(pattern=SIZE_PATTERN)] = None,
    favourite: bool | None = None,
    synthetic: bool | None = None,
    since: Annotated[
        str | None,
        Query(
            pattern=WHEN_PATTERN,
            description="Asked for on or after this day (`2026-12-07`) or time (with offset).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            pattern=WHEN_PATTERN,
            description="Asked for before the end of this day, or before this time.",
        ),
    ] = None,
    generation_id: Annotated[str | None, Query(pattern=OBJECT_ID_PATTERN)] = None,
) -> Response:
    """Your images, one item per image (a generation of two is two items, next to each other),
    newest first or oldest first, `limit` per page; every filter narrows the list."""
    filters = gallery.ImageFilter(
        q=q or None,
        model=model,
        provider=provider,
        aspect_ratio=normalize_ratio(aspect_ratio) if aspect_ratio else None,
        image_size=normalize_size(image_size) if image_size else None,
        favourite=favourite,
        synthetic=synthetic,
        since=_when(since, "since"),
        until=_when(until, "until", end=True),
        generation_id=generation_id,
    )
    after = _position(cursor) if cursor else None
    page = await image_page(session, user.id, filters, sort=sort, limit=limit, after=after)
    return json_response(page)


async def image_page(
    session: AsyncSession,
    user_id: str,
    filters: gallery.ImageFilter,
    *,
    sort: gallery.Sort,
    limit: int,
    after: gallery.Position | None = None,
) -> dict[str, Any]:
    """A page of the user's images as ``GET /api/images`` answers it (the gallery page also
    sends its first page within the HTML)."""
    rows, following = await gallery.list_images(
        session, user_id, filters, sort=sort, limit=limit, after=after
    )
    items = [gallery_image_out(img, job) for img, job in rows]
    return {"items": items, "next_cursor": _cursor(following) if following else None}


def _cursor(position: gallery.Position) -> str:
    """An opaque paging cursor: where the page ended (keyset paging)."""
    made, job_id, index = position
    return encode_cursor(made, f"{job_id}.{index}")


def _position(cursor: str) -> gallery.Position:
    made, rest = decode_cursor(cursor, row_id=r"[0-9a-f]{32}\.[0-9]{1,4}")
    job_id, _, index = rest.partition(".")
    return made, job_id, int(index)


@router.get("/facets", response_model=GalleryFacets, responses=errors(401))
async def image_facets(user: CurrentUser, session: SessionDep) -> Response:
    """What the gallery's filters can choose from: the models, providers, ratios and sizes
    among your images, with how many images each."""
    return json_response(await gallery.facets(session, user.id))


@router.post("/favourite", response_model=GalleryImages, responses=errors(401, 404, 422))
async def favourite_images(body: FavouritesIn, user: CurrentUser, session: SessionDep) -> Response:
    """Mark several images as favourites (or not): all of them, or none when one is not yours."""
    rows = await gallery.set_favourite(session, user.id, body.ids, body.favourite)
    return json_response({"items": [gallery_image_out(img, job) for img, job in rows]})


@router.post("/delete", response_model=DeletedImages, responses=errors(401, 404, 409, 422))
async def delete_images(
    body: ImageIdsIn, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    """Delete several images: all of them, or none when one is not yours or its generation
    still runs (409). The generations' records (prompt, parameters, cost) are kept."""
    gone = await gallery.delete_images(session, services, user.id, body.ids)
    return json_response({"deleted": gone})


@router.post(
    "/zip",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A zip of the images, each file as stored (provenance included).",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors(401, 404, 422),
    },
)
async def zip_images(
    body: ImageIdsIn, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> StreamingResponse:
    """Several images in one zip, streamed as it is made."""
    rows = await gallery.owned_images(session, user.id, body.ids)
    name = f"nanobanana-{utcnow():%Y%m%d-%H%M%S}.zip"
    return StreamingResponse(
        gallery.zip_images(services, rows),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.patch("/{image_id:object_id}", response_model=GalleryImage, responses=errors(401, 404, 422))
async def patch_image(
    image_id: ImageIdPath, body: FavouriteIn, user: CurrentUser, session: SessionDep
) -> Response:
    """Mark one image as a favourite, or not."""
    try:
        [(img, job)] = await gallery.set_favourite(session, user.id, [image_id], body.favourite)
    except ImagesNotFound:
        raise not_found("image") from None
    return json_response(gallery_image_out(img, job))


@router.delete("/{image_id:object_id}", status_code=204, responses=errors(401, 404, 409))
async def delete_image(
    image_id: ImageIdPath, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    """Delete one image (its generation's record is kept)."""
    try:
        await gallery.delete_images(session, services, user.id, [image_id])
    except ImagesNotFound:
        raise not_found("image") from None
    return Response(status_code=204)


# Only ids match (``object_id``): PATCH /api/images/facets is a 405 naming GET alone, never a
# request about an image called "facets"; a path that holds no id is no route (404).
@router.head("/{image_id:object_id}", response_class=Response, include_in_schema=False)
@router.get(
    "/{image_id:object_id}",
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
    ext = file_extension(mime)
    headers = {
        # Never changes under its id; kept by the caller's browser alone, and only for the same
        # Authorization header or session cookie (another account signed in on that browser
        # does not get it).
        "Cache-Control": "private, max-age=31536000, immutable",
        "Vary": "Authorization, Cookie",
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
