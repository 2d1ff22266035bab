"""POST /api/uploads: a reference image for later generations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..deps import CurrentUser, ServicesDep, SessionDep
from ..problems import ApiError
from ..schemas import UploadOut
from ..uploads import MULTIPART_OVERHEAD, check_image, read_limited, store_upload, too_large
from .common import errors

router = APIRouter(prefix="/api/uploads", tags=["uploads"])

_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
                "additionalProperties": False,
            }
        },
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/webp": {"schema": {"type": "string", "format": "binary"}},
    },
}


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large(limit)
        yield chunk


async def _file_bytes(request: Request, limit: int) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_large(limit)  # refused before reading a byte
    if ctype in ("image/png", "image/jpeg", "image/webp"):
        return await read_limited(_limited(request, limit), limit)
    if ctype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the image as multipart/form-data (field `file`) or as an image/png, "
            "image/jpeg or image/webp body.",
        )
    parser = MultiPartParser(
        request.headers,
        _limited(request, limit + MULTIPART_OVERHEAD),
        max_files=1,
        max_fields=4,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(422, "invalid_multipart", exc.message) from exc
    try:
        unknown = sorted({name for name in form if name != "file"})
        if unknown:
            names = ", ".join(f"`{name}`" for name in unknown)
            raise ApiError(
                422, "validation_error", f"The form takes only a `file` field; remove {names}."
            )
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise ApiError(422, "validation_error", "The form needs a `file` field.")
        data = await part.read(limit + 1)
        if len(data) > limit:
            raise too_large(limit)
        return data
    finally:
        await form.close()


@router.post(
    "",
    status_code=201,
    response_model=UploadOut,
    responses=errors(401, 413, 422),
    openapi_extra={"requestBody": _BODY},
)
async def upload(
    request: Request, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> UploadOut:
    """Upload a reference image (PNG, JPEG or WEBP; size and pixel limits apply).  Use the
    returned `id` in `images` of a generation request."""
    limit = services.settings.max_upload_bytes
    data = await _file_bytes(request, limit)
    image = await asyncio.to_thread(check_image, data, services.settings.max_upload_pixels)
    row = await store_upload(session, services, user.id, image)
    await session.commit()
    return UploadOut.model_validate(row)
