"""``nanobanana copy-data``: move from the embedded default (one data folder: SQLite and the
image files) to what several processes share (PostgreSQL, and an S3 bucket for the images).

Every row is copied as it is (ids, password hashes, encrypted provider keys, history), into a
database that the migrations bring to the current schema first and that must hold no account
yet, so a copy never mixes two services.  Jobs that were still queued or running lose their
owner (a process of the old service), so the first process to start on the new database ends
them as ``interrupted``, as a restart would have.  Images go to the bucket under the same
content keys, so the copied rows point at them unchanged.  The source is only read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, union
from sqlalchemy.engine import make_url

from .db.engine import create_engine
from .db.migrate import upgrade_database
from .db.models import ACTIVE_STATUSES, Base, Job, StoredImage, Upload, User
from .runtime import open_store
from .security import StartupError
from .settings import Settings
from .storage import LocalImageStore

__all__ = ["Copied", "copy_data"]

#: Rows per INSERT.
BATCH = 500
#: Tables that describe the old service's processes, not its data.
_SKIPPED = {"workers"}


@dataclass
class Copied:
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    #: Image files a row names but the data folder no longer has.
    missing: list[str] = field(default_factory=list)


async def copy_data(
    source: Settings,
    database_url: str,
    storage_url: str | None = None,
    s3_endpoint_url: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Copied:
    """Copy ``source``'s database into ``database_url`` and, with ``storage_url``, its image
    files into that bucket.  ``StartupError`` (nothing written) when the target is not new."""
    _check_source(source.resolved_database_url)
    store = await open_store(storage_url, s3_endpoint_url)
    src = create_engine(source.resolved_database_url)
    dst = create_engine(database_url)
    done = Copied()
    try:
        await upgrade_database(src)
        await upgrade_database(dst)
        async with dst.connect() as conn:
            if await conn.scalar(select(func.count()).select_from(User)):
                raise StartupError(
                    "The target database already has accounts: copy into a new, empty database."
                )
        for table in Base.metadata.sorted_tables:  # parents before children
            if table.name in _SKIPPED:
                continue
            count = 0
            async with src.connect() as read, dst.begin() as write:
                result = await read.stream(select(table))
                async for part in result.mappings().partitions(BATCH):
                    rows = [_moved(table.name, dict(r)) for r in part]
                    await write.execute(insert(table), rows)
                    count += len(rows)
            done.rows[table.name] = count
            say(f"{table.name}: {count} row(s)")
        if store is not None:
            local = LocalImageStore(source.images_dir)
            async with src.connect() as read:
                keys = (await read.execute(_file_keys())).scalars().all()
            for key in sorted(k for k in keys if k):
                try:
                    data = await local.get(key)
                except FileNotFoundError:
                    done.missing.append(key)
                    continue
                await store.put(data, extension=key.rsplit(".", 1)[1])
                done.files += 1
            say(f"image files: {done.files} copied, {len(done.missing)} missing")
    finally:
        await src.dispose()
        await dst.dispose()
    return done


def _check_source(database_url: str) -> None:
    """A SQLite source must exist: opening a missing file would create an empty database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and not os.path.isfile(url.database or ""):
        raise StartupError(
            f"No database to copy at {url.database}: name the data folder with --data-dir "
            "(or NANOBANANA_DATABASE_URL, if the service used another)."
        )


def _moved(table: str, row: dict[str, Any]) -> dict[str, Any]:
    if table == Job.__tablename__ and row["status"] in ACTIVE_STATUSES:
        row["owner"] = None  # ended as interrupted by the first process on the new database
    return row


def _file_keys() -> Any:
    return union(
        select(StoredImage.storage_key),
        select(StoredImage.thumb_key),
        select(Upload.storage_key),
    )
