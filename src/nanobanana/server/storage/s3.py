"""Content-addressed images in an S3-compatible bucket: ``NANOBANANA_STORAGE_URL=s3://bucket/
prefix``, with ``NANOBANANA_S3_ENDPOINT_URL`` for stores other than AWS (SeaweedFS, MinIO, R2...)
and the standard ``AWS_*`` variables for credentials and region.

Every process of the service (web and worker, on any host) reads and writes the same objects,
under the same keys as the local store (``ab/abcdef….png``, made from the content's SHA-256,
never from anything a user sent).  Writing the same bytes twice writes the same object, so a
retried landing is harmless.  The client is obstore (Rust's ``object_store``: async, retries
with backoff, multipart uploads for large bodies).
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...files import Pieces
from .local import check_key, content_key

if TYPE_CHECKING:  # obstore's typed dictionaries exist for the type checker only
    from obstore.store import ClientConfig, S3Config

__all__ = ["S3ImageStore", "parse_storage_url"]

#: S3's bucket naming rules (which S3-compatible stores share).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: Larger bodies go up in parts (as a stream of the pieces), smaller ones in one PUT.
MULTIPART_BYTES = 8 * 1024 * 1024
#: A key no content has: writing and removing it checks the bucket and the credentials.
_PROBE = f"00/{'0' * 64}.png"


def parse_storage_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``; ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            "NANOBANANA_STORAGE_URL must be s3://bucket or s3://bucket/prefix (the bucket must "
            "exist; set NANOBANANA_S3_ENDPOINT_URL for a store other than AWS S3)"
        )
    if not _BUCKET.match(parts.netloc):
        raise ValueError(
            f"NANOBANANA_STORAGE_URL: {parts.netloc!r} is not a bucket name (3 to 63 lowercase "
            "letters, digits, dots and hyphens, starting and ending with a letter or digit)"
        )
    return parts.netloc, parts.path.strip("/")


class S3ImageStore:
    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        from obstore.store import S3Store

        bucket, prefix = parse_storage_url(url)
        config: S3Config = {}
        client: ClientConfig = {}
        if endpoint_url:
            config["endpoint"] = endpoint_url
            config["virtual_hosted_style_request"] = False
            client["allow_http"] = endpoint_url.startswith("http://")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region or endpoint_url:
            config["region"] = region or "us-east-1"
        # Credentials come from the standard AWS_* variables (read by obstore itself).
        self._store = S3Store(bucket, prefix=prefix or None, config=config, client_options=client)
        self.bucket = bucket

    async def check(self) -> None:
        """Raise (an ``OSError`` or obstore error) unless these credentials can write to and
        delete from the bucket (nothing is left behind)."""
        import obstore

        await obstore.put_async(self._store, _PROBE, b"")
        await obstore.delete_async(self._store, _PROBE)

    async def put(self, data: bytes | Pieces, *, extension: str, sha256: str | None = None) -> str:
        import obstore

        if sha256 is None:  # hashing a 4K image takes ~30 ms: off the event loop
            key = await asyncio.to_thread(content_key, data, extension)
        else:
            key = content_key(data, extension, sha256)
        pieces = Pieces.of(data)
        if len(pieces.parts) == 1:
            await obstore.put_async(self._store, key, pieces.parts[0])
        elif len(pieces) <= MULTIPART_BYTES:
            await obstore.put_async(self._store, key, bytes(pieces))
        else:
            await obstore.put_async(self._store, key, list(pieces.parts), use_multipart=True)
        return key

    async def get(self, key: str) -> bytes:
        import obstore

        result = await obstore.get_async(self._store, check_key(key))
        return bytes(await result.bytes_async())

    async def delete(self, key: str) -> None:
        import obstore

        await obstore.delete_async(self._store, check_key(key))

    async def exists(self, key: str) -> bool:
        import obstore

        try:
            await obstore.head_async(self._store, check_key(key))
        except FileNotFoundError:
            return False
        return True
