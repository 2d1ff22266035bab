"""From a generate request to a committed job: validation, references, idempotency.

Everything that can be checked is checked before a job exists (model, provider, ratio, size,
references, a key for the provider), so a bad request stores nothing and costs nothing.

Idempotency (``Idempotency-Key`` header, per user, at most 255 printable ASCII characters):
the same key with the same body within the window (24 h by default,
``NANOBANANA_IDEMPOTENCY_WINDOW_SECONDS``) answers with the first request's result and makes
no second upstream call; the same key with another body is a 422; while the first request still
runs, a 409.  After the window the key runs anew.  The unique index on (user, key) settles
concurrent first requests: one job is created, the others see it.

Blind retries (drop-in calls, without a key): some clients resend a failed call by themselves,
whatever the answer says (OpenRouter's SDK retries every 5xx for up to an hour and ignores
``x-should-retry: false``).  When the same user's latest call with the same body (same
``request_hash``) in the last ``NANOBANANA_RETRY_REPLAY_SECONDS`` ended in a failure that may
have been billed (``reports.may_have_billed``), the call is answered with that job instead of
paying again.  A new ``Idempotency-Key``, or any change to the body, runs anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..catalog import ModelSpec
from ..errors import MissingKeyError, ReferenceImageError
from ..imaging import reference_from_data_url
from ..request import GenerationRequest, image_options_for
from ..types import ReferenceImage
from . import budgets, listings, webhooks
from .db.models import ACTIVE_STATUSES, Job, Upload, User, new_id
from .defaultscache import user_defaults
from .errors import (
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    RateLimited,
)
from .reports import may_have_billed
from .schemas import GenerateIn
from .services import Services
from .tasks import QUEUED
from .uploads import store_upload
from .upstream import Upstream, resolve_upstream

IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_JOB_COLUMNS = tuple(Job.__table__.columns)


@dataclass(frozen=True)
class Exchange:
    """An earlier exchange of a conversation a drop-in client sends with its prompt: the user's
    message and the assistant's answer (``compat.openrouter_request``).  Kept with the job
    (its images stored as uploads) and sent upstream as the call's history."""

    prompt: str
    #: The images the user sent with it, as ``data:`` URLs, in order.
    images: tuple[str, ...] = ()
    #: The answer: its text, and its images as ``data:`` URLs.
    text: str = ""
    drawn: tuple[str, ...] = ()
    #: Images of the exchange not sent again: not ``data:`` URLs (never fetched), or older
    #: than the history keeps (``conversation.first_whole_turn``).
    left_out: int = 0
    #: Who answered and what continues from the answer, when the client sent back what this
    #: service gave it (``compat.continuation``).
    provider: str | None = None
    model: str | None = None
    continuation: dict[str, Any] | None = None


@dataclass
class Prepared:
    request: dict[str, Any]
    #: The keys the job runs with (resolved once, handed to the job in memory).
    upstream: Upstream
    #: The model's canonical id, with its variant (``gemini-2.5-flash-image:free``).
    model: str
    #: Each reference, in order: an upload id, or a decoded data URL still to be stored.
    references: list[str | ReferenceImage] = field(default_factory=list)
    #: What it should cost in USD (every image, with the prompt and input images each call
    #: sends, at the catalog's prices), if known: held against the spending caps while it
    #: runs (``budgets``).
    estimate: float | None = None
    #: Where its final state is POSTed (``webhooks``): the request's, else the user's default.
    webhook_url: str | None = None


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.match(value):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1-255 printable ASCII characters.")
    return value


#: Fields added after idempotency keys were first stored: left out of the hash at their
#: default, so that a request retried across an upgrade is still the same request.
_ADDED_LATER = ("thinking", "google_search", "image_options", "webhook_url")


def request_hash(body: GenerateIn, kind: str) -> str:
    fields = body.model_dump(mode="json")
    for name in _ADDED_LATER:
        if fields[name] == GenerateIn.model_fields[name].get_default(call_default_factory=True):
            del fields[name]
    data = {"kind": kind, "body": fields}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _supported(
    spec: ModelSpec, ratio: str | None, size: str | None
) -> tuple[str | None, str | None]:
    """Saved defaults that this model cannot do are dropped rather than refused."""
    from ..catalog import normalize_ratio, normalize_size

    r = normalize_ratio(ratio) if ratio else None
    s = normalize_size(size) if size else None
    return (r if r in spec.aspect_ratios else None, s if s in spec.sizes else None)


async def prepare(
    session: AsyncSession,
    services: Services,
    user: User,
    body: GenerateIn,
    references: list[str | ReferenceImage],
    history_images: int = 0,
) -> Prepared:
    """Validate a request against the catalog, the user's keys and uploads (raises 4xx).
    ``references``: ``body.images`` after ``decode_references``; ``history_images``: how many
    images the conversation before the prompt sends (estimated as input)."""
    catalog = services.catalog
    defaults = await user_defaults(session, services.defaults_cache, user.id)
    upstream = await resolve_upstream(session, services, user.id)
    target = await listings.resolve(
        services,
        upstream,
        body.model,
        body.provider if "provider" in body.model_fields_set else None,
        default_model=defaults.model if defaults else None,
        default_provider=defaults.provider if defaults else None,
    )
    choice, provider, spec = target.choice, target.provider, target.spec
    d_ratio, d_size = _supported(
        spec, defaults.aspect_ratio if defaults else None, defaults.image_size if defaults else None
    )
    if body.images:
        d_ratio = None  # an edit keeps its input's shape (the library picks the ratio)
    ratio, size = catalog.validate(
        spec,
        aspect_ratio=body.aspect_ratio or d_ratio,
        image_size=body.image_size or d_size,
        n_images=len(body.images),
    )
    thinking = catalog.validate_thinking(spec, body.thinking)
    google_search = catalog.validate_google_search(spec, body.google_search)
    image_options = image_options_for(provider, body.image_options)
    if not upstream.has(provider):
        raise MissingKeyError(provider)
    webhook_url = body.webhook_url or (defaults.webhook_url if defaults else None)
    if body.webhook_url:
        webhooks.check_url(body.webhook_url, services.settings.webhook_allow_hosts)
    await _check_owned(session, user, references)
    # The model as the caller spelled it (a saved default counts as spelled): the generation
    # resolves it again and warns about an old spelling in its answer; a variant is kept.
    model = target.named or choice.name
    request = GenerationRequest(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        n=body.num_images,
        provider=provider,
        model=model,
        aspect_ratio=ratio,
        image_size=size,
        seed=body.seed,
        thinking=thinking,
        google_search=google_search,
        image_options=image_options,
    )
    record = {**request.record(), "images": []}  # upload ids, once the references are stored
    # Demo mode's synthetic images come from the built-in emulator: they cost nothing.
    estimate = (
        0.0
        if upstream.synthetic
        else spec.pricing.request_cost(
            size,
            n=body.num_images,
            prompt=body.prompt + (body.negative_prompt or ""),
            input_images=len(references) + history_images,
        )
    )
    return Prepared(
        request=record,
        upstream=upstream,
        model=choice.name,
        references=references,
        estimate=estimate,
        webhook_url=webhook_url,
    )


def _cut_short(grant: budgets.Grant, asked: int) -> str:
    assert grant.limit is not None
    left_out = asked - grant.images
    were = "was" if left_out == 1 else "were"
    return f"{left_out} of the {asked} images asked for {were} not made. {grant.limit.message}"


def _with_history(digest: str, history: Sequence[Exchange]) -> str:
    """A request hash that also covers the conversation before the prompt: the same prompt
    after another exchange is another request."""
    h = hashlib.sha256(digest.encode())
    for exchange in history:
        for part in (exchange.prompt, *exchange.images, exchange.text, *exchange.drawn):
            h.update(b"\x00" + part.encode("utf-8", "surrogatepass"))
        h.update(b"\x01%d" % exchange.left_out)
        said = (exchange.provider, exchange.model, exchange.continuation)
        h.update(b"\x02" + orjson.dumps(said, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def _decode_history(
    history: Sequence[Exchange],
) -> list[tuple[list[ReferenceImage], list[ReferenceImage]]]:
    """Each exchange's images decoded and checked, as references are (CPU work: a thread)."""
    return [
        (
            [reference_from_data_url(u) for u in exchange.images],
            [reference_from_data_url(u) for u in exchange.drawn],
        )
        for exchange in history
    ]


def decode_references(items: list[str]) -> list[str | ReferenceImage]:
    """Data URLs decoded and checked, upload ids kept; anything else refused.  CPU work and no
    database: callers run it in a thread before taking any lock."""
    out: list[str | ReferenceImage] = []
    for pos, item in enumerate(items, 1):
        if item.startswith("data:"):
            out.append(reference_from_data_url(item))
        elif _UPLOAD_ID.match(item):
            out.append(item)
        else:
            # Paths and URLs are refused: the service never reads files or fetches URLs for a
            # client (that would be a local file read or a server-side request forgery).
            raise ReferenceImageError(
                f"Reference image {pos} must be a data:image/...;base64 URL or an upload id "
                "from POST /api/uploads.",
                field="images",
            )
    return out


async def _check_owned(
    session: AsyncSession, user: User, references: list[str | ReferenceImage]
) -> None:
    ids = [r for r in references if isinstance(r, str)]
    if not ids:  # most prompts have no reference: no query
        return
    owned = set(
        await session.scalars(
            select(Upload.id).where(Upload.id.in_(ids), Upload.user_id == user.id)
        )
    )
    for pos, ref in enumerate(references, 1):
        if isinstance(ref, str) and ref not in owned:
            raise ReferenceImageError(
                f"Reference image {pos}: no upload with that id.", field="images"
            )


async def _check_rate(services: Services, user_id: str, *, count: bool) -> None:
    """At most ``generations_per_minute`` new generations per user.  Only accepted ones
    count: a request is checked on arrival (a flood is refused before any work) and counted
    once its job row is in (``count``), in the same step as a second check, so concurrent
    requests cannot slip past the limit.  Requests refused as invalid, and duplicates that
    lose an idempotency race or are answered by a replay, never count."""
    limiter = services.generation_limiter
    wait = await (limiter.take(user_id) if count else limiter.retry_after(user_id))
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(f"Too many generations; try again in {seconds} s.", retry_after=seconds)


async def find_replay(
    session: AsyncSession, services: Services, user_id: str, key: str, digest: str
) -> Job | None:
    """The job an idempotent retry should answer with, or None to run anew."""
    job = await session.scalar(
        select(Job).where(Job.user_id == user_id, Job.idempotency_key == key)
    )
    if job is None:
        return None
    window = timedelta(seconds=services.settings.idempotency_window_seconds)
    if job.created_at + window < services.now():
        job.idempotency_key = None  # expired: the key is free again
        await session.flush()
        return None
    if job.request_hash != digest:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body; use a new key."
        )
    if job.status in ACTIVE_STATUSES:
        raise IdempotencyInFlight(
            "A request with this Idempotency-Key is still running; retry in a moment.",
            retry_after=1,
            job_id=job.id,
        )
    return job


#: Job kinds whose calls come from clients that may retry by themselves (the drop-in faces).
BLIND_RETRY_KINDS = frozenset({"openrouter", "openai"})


async def find_blind_retry(
    session: AsyncSession, services: Services, user_id: str, digest: str
) -> Job | None:
    """The job a blind retry should answer with: the user's latest job with this body within
    the window, if it failed in a way that may have been billed; else None (run anew)."""
    window = services.settings.retry_replay_seconds
    if window <= 0:
        return None
    since = services.now() - timedelta(seconds=window)
    # The columns it decides on first: the same body sent again (a benchmark, a client that
    # polls with one prompt) usually finds a job that succeeded, and loading that whole record
    # cost more than the rest of the intake.
    row = (
        await session.execute(
            select(Job.id, Job.status, Job.error_code, Job.error_details)
            .where(Job.user_id == user_id, Job.created_at >= since)
            .where(Job.request_hash == digest, Job.idempotency_key.is_(None))
            .order_by(Job.created_at.desc())
            .limit(1)
        )
    ).first()
    if row is None or row.status in ACTIVE_STATUSES:
        return None
    if not may_have_billed(row.status, row.error_code, row.error_details):
        return None
    return await session.get(Job, row.id)


async def submit_job(
    services: Services,
    user: User,
    body: GenerateIn,
    *,
    kind: str,
    idempotency_key: str | None,
) -> tuple[Job, bool]:
    """``create_job`` in a session of its own, closed and released before it returns: a
    route that then waits for the job holds no session meanwhile."""
    async with services.sessionmaker() as session:
        return await create_job(
            session, services, user, body, kind=kind, idempotency_key=idempotency_key
        )


async def create_job(
    session: AsyncSession,
    services: Services,
    user: User,
    body: GenerateIn,
    *,
    kind: str,
    idempotency_key: str | None,
    session_id: str | None = None,
    parent_id: str | None = None,
    history: Sequence[Exchange] = (),
    earlier_images: int = 0,
) -> tuple[Job, bool]:
    """(job, replayed).  ``session_id`` and ``parent_id`` make the job a turn of an editing
    session (``sessions.start_turn`` checked both; ``earlier_images``: how many images its
    earlier turns send with it); ``history``: the exchanges a drop-in
    client sent before its prompt (kept with the job, and part of its request hash).  A new
    job is committed and handed to the
    worker pool here (no await between the commit and the hand-over, so a request cancelled
    now cannot orphan it): as
    ``running`` when a slot is free (one transaction for the whole intake, and the job starts
    with the keys resolved here), else as ``queued``.  A replayed job is not submitted.
    ``idempotency_key``: the request's header as sent (checked here)."""
    idempotency_key = check_idempotency_key(idempotency_key)
    digest = request_hash(body, kind)
    if history:
        digest = _with_history(digest, history)
    user_id = user.id  # the session may expire ``user`` on rollback: no lazy load later
    references = await asyncio.to_thread(decode_references, body.images) if body.images else []
    earlier = await asyncio.to_thread(_decode_history, history) if history else []
    if idempotency_key is not None:
        found = await find_replay(session, services, user_id, idempotency_key, digest)
    elif kind in BLIND_RETRY_KINDS:
        found = await find_blind_retry(session, services, user_id, digest)
    else:
        found = None
    if found is not None:
        await session.commit()
        return found, True
    await _check_rate(services, user_id, count=False)
    manager = services.job_manager
    await manager.check_capacity(user_id)
    history_images = earlier_images + sum(len(refs) + len(drawn) for refs, drawn in earlier)
    prepared = await prepare(session, services, user, body, references, history_images)
    ids: list[str] = []
    if earlier or any(not isinstance(ref, str) for ref in prepared.references):
        # Release the database (on SQLite, the write lock) while files are written.
        await session.commit()
    for ref in prepared.references:
        if isinstance(ref, str):
            ids.append(ref)
        else:
            upload = await store_upload(session, services, user_id, ref)
            ids.append(upload.id)
    prepared.request["images"] = ids
    if history:
        prepared.request["history"] = [
            {
                "prompt": exchange.prompt,
                "references": [
                    (await store_upload(session, services, user_id, r)).id for r in refs
                ],
                "text": exchange.text,
                "images": [(await store_upload(session, services, user_id, r)).id for r in drawn],
                "images_left_out": exchange.left_out,
                "provider": exchange.provider,
                "model": exchange.model,
                "continuation": exchange.continuation,
            }
            for exchange, (refs, drawn) in zip(history, earlier, strict=True)
        ]
    # The asynchronous API answers 202 with a ``queued`` job whose event stream starts with
    # ``queued`` (its documented contract); the synchronous routes never show that state.
    started = kind != "async" and manager.reserve(user_id)
    now = services.now()
    job = Job(
        id=new_id(),
        user_id=user_id,
        status="running" if started else "queued",
        kind=kind,
        request=prepared.request,
        prompt=body.prompt,
        effective_prompt=None,
        provider=prepared.request["provider"],
        model=prepared.model,
        provider_model=None,
        text=None,
        attempts=[],
        failures=[],
        warnings=[],
        usage=None,
        cost=None,
        cost_is_estimate=False,
        timings=None,
        error_code=None,
        error_message=None,
        error_details=None,
        idempotency_key=idempotency_key,
        request_hash=digest,
        synthetic=False,
        created_at=now,
        started_at=now if started else None,
        finished_at=None,
        owner=QUEUED if manager.queue is not None else services.worker_id,
        attempt=0,
        session_id=session_id,
        parent_id=parent_id,
        continuation=None,
        webhook_url=prepared.webhook_url,
    )
    row = {c.key: getattr(job, c.key) for c in _JOB_COLUMNS}
    try:
        if session.in_transaction():
            await session.commit()  # the intake's reads (cache misses, idempotency)
        # The row in one step (``db.direct``): the hot path's only write at intake, with its
        # line in the spend ledger (cut short or refused there by a spending cap).
        asked = body.num_images

        def hold(conn: Connection) -> None:
            grant = budgets.reserve(
                conn,
                user_id=user_id,
                job_id=job.id,
                estimate=prepared.estimate,
                now=now,
                images=asked,
                provider=job.provider,
                model=job.model,
            )
            if grant.limit is not None:  # fewer images fit: the job makes only those
                cut = {"n": grant.images, "message": _cut_short(grant, asked)}
                row["request"] = job.request = {**prepared.request, budgets.CUT: cut}

        await manager.insert(row, hold)
        try:
            await _check_rate(services, user_id, count=True)
        except RateLimited:  # others were accepted meanwhile: this one is not

            def withdraw(conn: Connection) -> None:
                conn.execute(delete(Job).where(Job.id == job.id))
                conn.execute(budgets.drop(job.id))

            await services.tx.run(withdraw)
            raise
    except IntegrityError:
        # Another request with the same key committed first.
        if started:
            manager.release(user_id)
        await session.rollback()
        if idempotency_key is None:
            raise
        found = await find_replay(session, services, user_id, idempotency_key, digest)
        if found is None:
            raise IdempotencyInFlight("Retry in a moment.", retry_after=1) from None
        await session.commit()
        return found, True
    except BaseException:
        if started:
            manager.release(user_id)
        raise
    if manager.queue is None:
        # The pool owns the record from here (``job`` was never in the request's session).
        manager.submit(
            job, user_id, upstream=prepared.upstream if started else None, started=started
        )
    else:  # a worker runs it; its event stream starts here
        services.bus.publish(job.id, "queued", {"id": job.id, "status": "queued"})
    return job, False
