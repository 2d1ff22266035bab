"""Reference image uploads: size, pixel and format limits, checked before anything is kept.

The body is read in chunks and refused with 413 as soon as it passes the limit, with or
without a Content-Length, so an oversized upload is never buffered whole.  Images are opened
with an allowlist of formats (PNG, JPEG, WEBP) and their declared pixel count is checked before
any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..imaging import ALLOWED_FORMATS, inspect_image
from ..types import ReferenceImage, file_extension
from .db.models import StoredImage, Upload, new_id
from .errors import ImageTooLarge, InvalidImage, UploadTooLarge
from .services import Services

#: Room for multipart boundaries and part headers around the file.
MULTIPART_OVERHEAD = 16 * 1024


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"The upload is larger than {limit // 1024 // 1024} MB.", limit_bytes=limit
    )


async def read_limited(stream: AsyncIterator[bytes], limit: int) -> bytes:
    buf = bytearray()
    async for chunk in stream:
        buf += chunk
        if len(buf) > limit:
            raise too_large(limit)
    return bytes(buf)


def check_image(data: bytes, max_pixels: int) -> ReferenceImage:
    """The allowed, complete image, or an ``UploadError`` that says what is wrong."""
    from PIL import Image as PILImage

    if not data:
        raise InvalidImage("The upload is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            with PILImage.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as img:
                width, height = img.size
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            raise _bomb(max_pixels) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidImage(
                "Not a PNG, JPEG or WEBP image.", allowed=["png", "jpeg", "webp"]
            ) from exc
    if width * height > max_pixels:
        raise _bomb(max_pixels)
    try:
        mime, width, height = inspect_image(data)
    except ValueError as exc:
        raise InvalidImage(
            "The image is damaged or incomplete.", allowed=["png", "jpeg", "webp"]
        ) from exc
    return ReferenceImage(data=data, mime_type=mime, width=width, height=height)


def _bomb(max_pixels: int) -> ImageTooLarge:
    return ImageTooLarge(f"The image has more than {max_pixels:,} pixels.", max_pixels=max_pixels)


async def store_upload(
    session: AsyncSession, services: Services, user_id: str, image: ReferenceImage
) -> Upload:
    """Keep a checked image (content-addressed) and add its row; the caller commits.  The file
    is written before the row is added, so no database lock is held during the write."""
    key = await services.store.put(image.data, extension=file_extension(image.mime_type))
    upload = Upload(
        id=new_id(),
        user_id=user_id,
        sha256=hashlib.sha256(image.data).hexdigest(),
        mime_type=image.mime_type,
        width=image.width,
        height=image.height,
        size=len(image.data),
        storage_key=key,
        created_at=services.now(),
    )
    session.add(upload)
    return upload


async def delete_unreferenced(session: AsyncSession, services: Services, keys: set[str]) -> None:
    """Files are content-addressed and may be shared: remove only those no row points at."""
    if not keys:
        return
    used = set(
        await session.scalars(
            select(StoredImage.storage_key).where(StoredImage.storage_key.in_(keys))
        )
    )
    used |= {
        k
        for k in await session.scalars(
            select(StoredImage.thumb_key).where(StoredImage.thumb_key.in_(keys))
        )
        if k
    }
    used |= set(
        await session.scalars(select(Upload.storage_key).where(Upload.storage_key.in_(keys)))
    )
    await session.commit()
    for key in keys - used:
        await services.store.delete(key)
