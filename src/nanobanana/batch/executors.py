"""Who runs a batch row: the library in this process, or a nanobanana server as an async job.

Both take a row (and how many of its images are still missing) and give back verified images
and what they cost, or raise a ``NanobananaError``.  The runner does the rest (order, budget,
manifest, files), so the two modes cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..catalog import DEFAULT_MODEL, Catalog
from ..types import Image, ImageEvent, StreamEvent

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..references import ReferenceInput
    from ..remote import ServerClient
    from .rows import BatchRow

__all__ = ["Executor", "LocalExecutor", "RowOutcome", "ServerExecutor"]


@dataclass
class RowOutcome:
    images: list[Image]
    cost: float | None = None
    cost_is_estimate: bool = False
    provider: str | None = None
    model: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: One message per requested image that did not come back (partial success).
    failures: list[str] = field(default_factory=list)
    job_id: str | None = None


class Executor(Protocol):
    #: Where rows run, for the report ("local" or the server URL).
    where: str

    def estimate(self, row: BatchRow, n: int) -> float | None:
        """Expected USD for ``n`` images of ``row``, if the price is known (budget reservation)."""
        ...

    async def run(
        self,
        row: BatchRow,
        n: int,
        *,
        job_id: str | None,
        idempotency_key: str,
        on_submitted: Callable[[str], None],
        on_image: Callable[[Image], Awaitable[None]] | None = None,
    ) -> RowOutcome:
        """Generate ``n`` images for ``row``.  ``job_id`` resumes a job submitted earlier.
        ``on_image``: called with each image as it arrives, before the rest are done (a server
        keeps a job's images itself, so a server executor need not call it)."""
        ...

    async def aclose(self) -> None: ...


def catalog_price(
    catalog: Catalog, row: BatchRow, n: int, default_model: str | None = None
) -> float | None:
    """The catalog's price for ``n`` images of ``row`` (the prompt and reference images each
    call sends included), if it has one."""
    req = row.request
    spec = catalog.find(req.model or default_model or DEFAULT_MODEL)
    if spec is None:
        return None
    return spec.pricing.request_cost(
        req.image_size,
        n=n,
        prompt=req.prompt + (req.negative_prompt or ""),
        input_images=len(req.images),
    )


class LocalExecutor:
    """Rows run through an ``AsyncClient``: the caller's keys, retries and fallback."""

    where = "local"

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    def estimate(self, row: BatchRow, n: int) -> float | None:
        return catalog_price(self.client.catalog, row, n, self.client.default_model)

    async def run(
        self,
        row: BatchRow,
        n: int,
        *,
        job_id: str | None,
        idempotency_key: str,
        on_submitted: Callable[[str], None],
        on_image: Callable[[Image], Awaitable[None]] | None = None,
    ) -> RowOutcome:
        async def arrived(event: StreamEvent) -> None:
            if on_image is not None and isinstance(event, ImageEvent):
                await on_image(event.image)

        result = await self.client.run(row.request.with_(n=n), on_event=arrived)
        return RowOutcome(
            images=result.images,
            # Synthetic images (the built-in emulator) cost nothing, whatever it reports.
            cost=0.0 if result.synthetic else result.usage.cost,
            cost_is_estimate=result.usage.cost_is_estimate,
            provider=result.provider,
            model=result.model,
            warnings=list(result.warnings),
            failures=[f.error for f in result.failures],
        )

    async def aclose(self) -> None:
        await self.client.aclose()


class ServerExecutor:
    """Rows run as jobs on a nanobanana server: its stored keys, fallback, gallery and ledger.

    Reference images are sent inline as data URLs: the server cannot read this machine's files.
    """

    def __init__(self, server: ServerClient) -> None:
        self.server = server
        self.where = server.base_url
        self.catalog = Catalog()

    def estimate(self, row: BatchRow, n: int) -> float | None:
        return catalog_price(self.catalog, row, n)

    async def run(
        self,
        row: BatchRow,
        n: int,
        *,
        job_id: str | None,
        idempotency_key: str,
        on_submitted: Callable[[str], None],
        on_image: Callable[[Image], Awaitable[None]] | None = None,
    ) -> RowOutcome:
        if job_id is None:
            inline = await _inline_images(row.request.images)
            request = row.request.with_(n=n, images=tuple(inline))
            job = await self.server.create_generation(request, idempotency_key=idempotency_key)
            job_id = job.id
            on_submitted(job_id)
        job = await self.server.wait(job_id)
        images = await self.server.fetch_images(job)
        return RowOutcome(
            images=images,
            cost=job.cost,
            provider=job.provider,
            model=job.model,
            warnings=list(job.warnings),
            failures=job.failures,
            job_id=job_id,
        )

    async def aclose(self) -> None:
        await self.server.aclose()


async def _inline_images(images: Iterable[ReferenceInput]) -> list[str]:
    from ..imaging import to_data_url
    from ..references import resolve_reference

    # The server takes data URLs (or its own upload ids), not paths or remote URLs: files are
    # read and URLs fetched here, with the library's checks on size and format.
    return [
        item
        if isinstance(item, str) and item.startswith("data:")
        else to_data_url(await resolve_reference(item))
        for item in images
    ]
