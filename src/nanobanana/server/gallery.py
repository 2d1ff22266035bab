"""The gallery: a user's images (not their generations), filtered, sorted and paged; favourites;
deleting several at once; a zip of several.

Every query is by user: an image of someone else is not found, exactly like one that does not
exist.  Deleting images keeps their generations' records (prompt, parameters, cost): what was
paid for stays accounted for, only the pictures go.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..types import file_extension
from .db.models import ACTIVE_STATUSES, Job, StoredImage, prompt_contains
from .errors import ImagesBusy, ImagesNotFound
from .services import Services
from .uploads import delete_unreferenced
from .views import stored_bytes

__all__ = [
    "ImageFilter",
    "Position",
    "Sort",
    "delete_images",
    "facets",
    "list_images",
    "owned_images",
    "set_favourite",
    "zip_images",
]

Sort = Literal["newest", "oldest"]


@dataclass(frozen=True)
class ImageFilter:
    """What a gallery page shows; every field left ``None`` shows everything."""

    q: str | None = None  #: words in the prompt
    model: str | None = None
    provider: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    favourite: bool | None = None
    synthetic: bool | None = None
    since: datetime | None = None  #: asked for at or after
    until: datetime | None = None  #: asked for before
    generation_id: str | None = None


def _of_user(user_id: str, *columns: Any) -> Select[Any]:
    """``columns`` over the user's images joined to their generations."""
    # From the user's jobs (by their index) to each job's images (by theirs): a newest-first
    # page then reads about as many rows as it shows.  (Filtered on the images' user_id too,
    # SQLite without statistics starts from the images and sorts them all.)  An image belongs
    # to its job's user: jobs.py writes both from the same job.
    return (
        select(*columns)
        .select_from(Job)
        .join(StoredImage, StoredImage.job_id == Job.id)
        .where(Job.user_id == user_id)
    )


def _query(user_id: str, f: ImageFilter) -> Select[StoredImage, Job]:
    stmt: Select[StoredImage, Job] = _of_user(user_id, StoredImage, Job)
    conditions: list[ColumnElement[bool]] = []
    if f.q:
        conditions.append(prompt_contains(f.q))
    if f.model:
        conditions.append(Job.model == f.model)
    if f.provider:
        conditions.append(Job.provider == f.provider)
    if f.aspect_ratio:
        conditions.append(StoredImage.aspect_ratio == f.aspect_ratio)
    if f.image_size:
        conditions.append(StoredImage.image_size == f.image_size)
    if f.favourite is not None:
        conditions.append(StoredImage.favourite.is_(f.favourite))
    if f.synthetic is not None:
        conditions.append(Job.synthetic.is_(f.synthetic))
    if f.since:
        conditions.append(Job.created_at >= f.since)
    if f.until:
        conditions.append(Job.created_at < f.until)
    if f.generation_id:
        conditions.append(StoredImage.job_id == f.generation_id)
    return stmt.where(*conditions)


#: Where a page ends: the generation's creation time and id, and the image's index in it.
Position = tuple[datetime, str, int]


async def list_images(
    db: AsyncSession,
    user_id: str,
    f: ImageFilter,
    *,
    sort: Sort = "newest",
    limit: int = 50,
    after: Position | None = None,
) -> tuple[list[tuple[StoredImage, Job]], Position | None]:
    """One page of ``user_id``'s images and where the next one starts (None: the last page).

    Ordered by generation (newest or oldest first), and within one by image number, so the
    images of a generation stay together in their order.  Keyset paging: a page costs the same
    at image 10 and at image 10,000."""
    stmt = _query(user_id, f)
    made, job_id, index = Job.created_at, Job.id, StoredImage.index
    if after:
        stamp, last_job, last_index = after
        same_job = and_(job_id == last_job, index > last_index)
        if sort == "newest":
            later = or_(made < stamp, and_(made == stamp, or_(job_id < last_job, same_job)))
        else:
            later = or_(made > stamp, and_(made == stamp, or_(job_id > last_job, same_job)))
        stmt = stmt.where(later)
    if sort == "newest":
        stmt = stmt.order_by(made.desc(), job_id.desc(), index.asc())
    else:
        stmt = stmt.order_by(made.asc(), job_id.asc(), index.asc())
    rows = [(img, job) for img, job in (await db.execute(stmt.limit(limit + 1))).tuples()]
    await db.commit()
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return rows, None
    img, job = rows[-1]
    return rows, (job.created_at, job.id, img.index)


async def facets(db: AsyncSession, user_id: str) -> dict[str, Any]:
    """What the filters can choose from, with how many images each: the models, providers,
    ratios and sizes among the user's images, and how many are favourites."""
    # One scan of the user's images, grouped by every facet at once: the combinations are few
    # (models x providers x ratios x sizes x 2 x 2), and they add up to each facet's counts.
    # (Five queries, one per facet, read the 10,000 rows five times: 50 ms against 12.)
    columns = {
        "models": Job.model,
        "providers": Job.provider,
        "aspect_ratios": StoredImage.aspect_ratio,
        "image_sizes": StoredImage.image_size,
    }
    flags = (StoredImage.favourite, Job.synthetic)
    stmt = _of_user(user_id, *columns.values(), *flags, func.count()).group_by(
        *columns.values(), *flags
    )
    rows = (await db.execute(stmt)).tuples().all()
    await db.commit()
    counts: dict[str, Counter[str]] = {name: Counter() for name in columns}
    total = favourites = synthetic = 0
    for *values, favourite, synth, n in rows:
        for name, value in zip(columns, values, strict=False):
            if value is not None:
                counts[name][value] += n
        total += n
        favourites += n if favourite else 0
        synthetic += n if synth else 0
    out: dict[str, Any] = {
        name: [
            {"value": v, "count": n} for v, n in sorted(c.items(), key=lambda vn: (-vn[1], vn[0]))
        ]
        for name, c in counts.items()
    }
    return {**out, "total": total, "favourites": favourites, "synthetic": synthetic}


async def owned_images(
    db: AsyncSession, user_id: str, ids: Sequence[str]
) -> list[tuple[StoredImage, Job]]:
    """``ids``' images with their generations, in the order asked; ``ImagesNotFound`` naming
    the ids that are not the user's images (none is then touched)."""
    wanted = list(dict.fromkeys(ids))
    stmt = (
        select(StoredImage, Job)
        .join(Job, Job.id == StoredImage.job_id)
        .where(StoredImage.user_id == user_id, StoredImage.id.in_(wanted))
    )
    found = {img.id: (img, job) for img, job in (await db.execute(stmt)).tuples()}
    await db.commit()
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(missing[:5])
        if len(missing) > 5:
            shown += f" and {len(missing) - 5} more"
        raise ImagesNotFound(
            f"No image of yours has the id {shown}; nothing was changed.", ids=missing[:50]
        )
    return [found[i] for i in wanted]


async def set_favourite(
    db: AsyncSession, user_id: str, ids: Sequence[str], favourite: bool
) -> list[tuple[StoredImage, Job]]:
    """Mark ``ids`` as favourites (or not); their rows as they now are."""
    rows = await owned_images(db, user_id, ids)
    await db.execute(
        update(StoredImage)
        .where(StoredImage.user_id == user_id, StoredImage.id.in_([img.id for img, _ in rows]))
        .values(favourite=favourite)
    )
    await db.commit()
    for img, _ in rows:
        img.favourite = favourite
    return rows


async def delete_images(
    db: AsyncSession, services: Services, user_id: str, ids: Sequence[str]
) -> list[str]:
    """Delete ``ids`` (all of them or, when one is not found or its generation still runs,
    none) and the files no other row uses; their generations' records stay."""
    rows = await owned_images(db, user_id, ids)
    running = sorted({job.id for _, job in rows if job.status in ACTIVE_STATUSES})
    if running:
        raise ImagesBusy(
            "Some of these images belong to a generation that is still running; nothing was "
            "deleted. Try again once it has finished.",
            generation_ids=running,
        )
    keys = {k for img, _ in rows for k in (img.storage_key, img.thumb_key) if k}
    gone = [img.id for img, _ in rows]
    await db.execute(
        delete(StoredImage).where(StoredImage.user_id == user_id, StoredImage.id.in_(gone))
    )
    await db.commit()
    await delete_unreferenced(db, services, keys)
    return gone


_UNSAFE = re.compile(r"[^a-z0-9]+")


def zip_name(img: StoredImage, job: Job) -> str:
    """A file name that sorts by time and says what the image is:
    ``20261207-101500-a-red-fox-in-the-snow-1a2b3c4d.png``."""
    words = _UNSAFE.sub("-", (job.prompt or "").lower()).strip("-")[:40].rstrip("-")
    ext = file_extension(img.mime_type)
    stamp = img.created_at.strftime("%Y%m%d-%H%M%S")
    return "-".join(p for p in (stamp, words, img.id[:8]) if p) + f".{ext}"


class _Chunks(io.RawIOBase):
    """A write-only stream that keeps what is written until it is taken: ``zipfile`` writes
    into it (with data descriptors, since it cannot seek) and the response sends each piece."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


async def zip_images(
    services: Services, rows: Sequence[tuple[StoredImage, Job]]
) -> AsyncIterator[bytes]:
    """A zip of the images, streamed one file at a time (the files are stored, not deflated:
    PNG, JPEG and WEBP are compressed already).  Each file is as stored, provenance included.
    A file missing from the store ends the stream with an error (the download fails rather than
    silently lacking an image)."""
    sink = _Chunks()
    names: set[str] = set()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for img, job in rows:
            data = await stored_bytes(services.store, img)
            name = zip_name(img, job)
            if name in names:  # two ids alike in their first 8 characters
                name = name.replace(img.id[:8], img.id)
            names.add(name)
            info = zipfile.ZipInfo(name, date_time=img.created_at.timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)
            yield sink.take()
    yield sink.take()
