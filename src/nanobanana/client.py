"""``AsyncClient`` and ``Client``: validate -> route -> retry / fall back -> verify -> ``Result``.

One implementation: ``Client`` runs an ``AsyncClient`` on an event loop in a private thread.

A request for ``n`` images is ``n`` parallel calls (Gemini has no multi-candidate mode), each
with its own retries and fallback and one overall deadline; what succeeds is kept even when
the rest fails (``Result.failures``).  Nothing is sent before the request has been checked
against the catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypedDict, TypeVar, Unpack

from . import retry as retry_mod
from .catalog import Catalog, ModelChoice, ModelSpec, nearest_ratio
from .config import ProviderConfig
from .conversation import HISTORY_IMAGE_TURNS, AsyncSession, Session
from .discovery import Listing, ListingCache, Listings
from .errors import (
    AmbiguousError,
    ContentError,
    DeadlineExceeded,
    ModelNotServedError,
    NanobananaError,
    UnknownModelError,
    UpstreamBadRequest,
    UpstreamError,
    ValidationError,
)
from .providers import INFOS, PROVIDERS, canonical_provider, missing_key
from .providers import resolve_provider_configs as _resolve_configs
from .providers.base import FinishEvent, KeyStatus, Provider, ProviderCall
from .references import ReferenceInput, resolve_references
from .request import GenerationRequest, Target, image_options_for, resolve_target
from .types import (
    Attempt,
    AttemptEvent,
    DoneEvent,
    Grounding,
    Image,
    ImageEvent,
    ImageFailure,
    PriorTurn,
    Result,
    StreamEvent,
    TextDelta,
    Usage,
    UsageEvent,
    request_provenance,
)

if TYPE_CHECKING:
    from .transport import Transport

log = logging.getLogger(__name__)

__all__ = ["NEGATIVE_PROMPT_TEMPLATE", "AsyncClient", "Client", "GenerateOptions", "TurnOptions"]

#: How a negative prompt is folded into the prompt (no image model takes one natively).
NEGATIVE_PROMPT_TEMPLATE = "{prompt}\n\nAvoid the following in the image: {negative_prompt}."
MAX_PROMPT_CHARS = 32_000
MAX_IMAGES_PER_REQUEST = 10
MAX_SEED = 2**31 - 1
#: Seconds after a listing was fetched during which a model missing from it is not looked up
#: again (a misspelt id does not cost a listing call on every try).
LISTING_REFRESH_AFTER = 300.0
#: Default fallback chains, as the providers declare them: Google's quota errors go to OpenRouter.
DEFAULT_FALLBACKS: Mapping[str, tuple[str, ...]] = {
    name: info.quota_fallbacks for name, info in INFOS.items() if info.quota_fallbacks
}

EventCallback = Callable[[StreamEvent], Awaitable[None] | None]
P = ParamSpec("P")
R = TypeVar("R")


class TurnOptions(TypedDict, total=False):
    """The generation options a session's turn takes (``AsyncSession.send``): all of
    ``GenerateOptions`` but the images and the history, which a turn gives its own way."""

    model: str | None
    provider: str | None
    aspect_ratio: str | None
    image_size: str | None
    n: int
    negative_prompt: str | None
    seed: int | None
    thinking: str | None
    google_search: bool
    image_options: Mapping[str, Any] | None
    fallback: bool | None


class GenerateOptions(TurnOptions, total=False):
    """The keyword arguments of ``AsyncClient.generate`` that ``stream`` passes on (a test
    keeps the two the same)."""

    images: Iterable[ReferenceInput]
    history: Iterable[PriorTurn]


def fold_negative_prompt(prompt: str, negative_prompt: str | None) -> str:
    if not negative_prompt or not negative_prompt.strip():
        return prompt
    return NEGATIVE_PROMPT_TEMPLATE.format(
        prompt=prompt, negative_prompt=negative_prompt.strip().rstrip(".")
    )


@dataclass
class _Plan:
    """A validated request: what to send, and to whom, in which order."""

    prompt: str
    effective_prompt: str
    negative_prompt: str | None
    choice: ModelChoice
    chain: list[str]
    aspect_ratio: str | None
    image_size: str | None
    seed: int | None
    n: int
    references: tuple[Any, ...]
    thinking: str | None = None
    google_search: bool = False
    image_options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    history: tuple[PriorTurn, ...] = ()

    @property
    def spec(self) -> ModelSpec:
        return self.choice.spec

    def image_provenance(
        self, image: Image, provider: str, wire_model: str, usage: Usage | None, synthetic: bool
    ) -> dict[str, Any]:
        """An image's provenance as it arrives, before the rest of the request is done: the
        parameters, who served it and, once known, what it cost (nothing, when synthetic)."""
        meta = request_provenance(
            prompt=self.prompt,
            effective_prompt=self.effective_prompt,
            negative_prompt=self.negative_prompt,
            model=self.spec.id,
            provider=provider,
            provider_model=wire_model,
            aspect_ratio=self.aspect_ratio,
            image_size=self.image_size,
            seed=self.seed,
            synthetic=synthetic,
            thinking=self.thinking,
            google_search=self.google_search,
            image_options=self.image_options,
        )
        meta["index"] = image.index
        if synthetic:
            meta["cost"], meta["cost_is_estimate"] = None, False
        elif usage is not None:
            meta["cost"], meta["cost_is_estimate"] = usage.cost, usage.cost_is_estimate
        return meta


@dataclass
class _ImageOutcome:
    index: int
    image: Image | None = None
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    provider: str | None = None
    wire_model: str | None = None
    finish_reason: str | None = None
    request_id: str | None = None
    grounding: Grounding | None = None
    attempts: list[Attempt] = field(default_factory=list)
    error: NanobananaError | None = None


def _explain_variant(exc: Exception, choice: ModelChoice, wire: str) -> None:
    """OpenRouter refuses a variant a model does not list as an unknown model id; say so."""
    if (
        choice.variant is not None
        and isinstance(exc, UpstreamBadRequest)
        and "not a valid model" in exc.message
    ):
        base = wire.rpartition(":")[0]
        exc.message += (
            f". OpenRouter does not offer {base} with the ':{choice.variant}' variant; name "
            f"the model without ':{choice.variant}' to use it as it is listed (and priced)."
        )


_Guard = AsyncGenerator[None, None]


async def _closed_with_loop(client: AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client._close_providers()


class AsyncClient:
    """Generate images through OpenRouter or Google, with validation, retries and fallback.

    Keys: explicit ``api_keys``/``*_api_key`` -> environment -> the keys file.  ``provider`` and
    ``model`` are defaults, applied by ``nanobanana.request.resolve_target`` (the provider when
    it serves the model; without one, the first provider with a key).  ``fallbacks`` maps a
    provider to those tried when it fails without running the request (default Google ->
    OpenRouter); ``fallback=False`` turns it off.  ``session`` (an ``aiohttp.ClientSession``) or
    ``transport`` (``nanobanana.transport``) choose how the providers send.

    A model the catalog does not know is looked up in the providers' listings (``discover``):
    first the ones kept from earlier runs (``listing_cache``, default the user's cache folder;
    in memory only for a ``synthetic`` client), then, unless one was fetched in the last
    ``LISTING_REFRESH_AFTER`` seconds, a fresh one.  ``listings`` shares what is known between
    clients (a service passes one to all of its own).  A model the catalog knows never waits
    for a listing.
    """

    def __init__(
        self,
        *,
        openrouter_api_key: str | None = None,
        google_api_key: str | None = None,
        api_keys: Mapping[str, str | None] | None = None,
        openrouter_base_url: str | None = None,
        gemini_base_url: str | None = None,
        base_urls: Mapping[str, str | None] | None = None,
        provider: str | None = None,
        model: str | None = None,
        fallback: bool = True,
        fallbacks: Mapping[str, tuple[str, ...]] | None = None,
        retry: retry_mod.RetryPolicy = retry_mod.DEFAULT_POLICY,
        deadline: float = retry_mod.DEFAULT_DEADLINE,
        read_timeout: float = retry_mod.DEFAULT_READ_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        referer: str | None = None,
        title: str | None = "nanobanana",
        env: Mapping[str, str] | None = None,
        use_keys_file: bool = True,
        catalog: Catalog | None = None,
        session: Any = None,
        transport: Transport | None = None,
        synthetic: bool = False,
        providers: Mapping[str, Provider] | None = None,
        discover: bool = True,
        listing_cache: ListingCache | None = None,
        listings: Listings | None = None,
    ) -> None:
        named = {
            "openrouter_api_key": openrouter_api_key,
            "google_api_key": google_api_key,
            "openrouter_base_url": openrouter_base_url,
            "gemini_base_url": gemini_base_url,
        }
        keys = dict(api_keys or {})
        urls = dict(base_urls or {})
        for name, info in INFOS.items():
            if named.get(info.key_argument):
                keys[name] = named[info.key_argument]
            if named.get(info.base_url_argument):
                urls[name] = named[info.base_url_argument]
        self.configs: dict[str, ProviderConfig] = _resolve_configs(
            api_keys=keys,
            base_urls=urls,
            env=env,
            use_keys_file=use_keys_file,
            headers=headers,
            referer=referer,
            title=title,
        )
        self.default_provider = canonical_provider(provider) if provider else None
        self.default_model = model
        self.fallback = fallback
        self.fallbacks = dict(DEFAULT_FALLBACKS if fallbacks is None else fallbacks)
        self.retry = retry
        self.deadline = deadline
        self.read_timeout = read_timeout
        self.catalog = catalog or Catalog()
        self.synthetic = synthetic
        self.discover = discover
        self._listing_cache = listing_cache
        self._shared_listings = listings
        #: Whether the kept listings were brought in (once, at the first generation).
        self._kept_in = False
        self._env = env
        self._session = session
        self._transport = transport
        self._providers: dict[str, Provider] = dict(providers or {})
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        #: Closes the providers when the event loop that made them shuts down (see ``_provider``).
        self._loop_guard: tuple[weakref.ref[asyncio.AbstractEventLoop], _Guard] | None = None

    # ------------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the providers' connections (the client stays usable: a later call reopens)."""
        await self._close_providers()
        if self._loop_guard is not None:
            guard, self._loop_guard = self._loop_guard[1], None
            await guard.aclose()

    async def _close_providers(self) -> None:
        for p in list(self._providers.values()):
            await p.aclose()
        self._providers.clear()

    def has_key(self, provider: str) -> bool:
        return bool(self.configs[provider].api_key)

    def available_providers(self) -> list[str]:
        return [p for p in PROVIDERS if self.has_key(p)]

    def can_list(self, provider: str) -> bool:
        """Whether ``provider``'s models can be listed: with a key, or without one where its
        listing is public (``ProviderInfo.lists_without_key``)."""
        return self.has_key(provider) or INFOS[provider].lists_without_key

    async def _provider(self, name: str, *, listing: bool = False) -> Provider:
        """``name``'s provider (a key is needed, except to list a public listing)."""
        if not self.has_key(name) and not (listing and INFOS[name].lists_without_key):
            raise missing_key(name)
        if name not in self._providers:
            from .providers import create_provider

            await self._close_with_loop()
            if name not in self._providers:  # another call of this client may have made it
                self._providers[name] = create_provider(
                    self.configs[name], session=self._session, transport=self._transport
                )
        return self._providers[name]

    async def _close_with_loop(self) -> None:
        """Like ``OpenAI()``, a client needs no ``async with``: its connections are closed when
        the event loop shuts down.  ``asyncio.run`` closes the async generators still open on
        its loop; this one, started here, closes the providers then."""
        loop = asyncio.get_running_loop()
        if self._loop_guard is not None and self._loop_guard[0]() is loop:
            return
        guard = _closed_with_loop(self)
        await anext(guard)
        self._loop_guard = (weakref.ref(loop), guard)

    # ------------------------------------------------------------------------ planning
    async def _plan(self, request: GenerationRequest) -> _Plan:
        prompt, n, seed = request.prompt, request.n, request.seed
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValidationError(
                "The prompt is empty: describe the image you want.", field="prompt"
            )
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValidationError(
                f"The prompt has {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}.",
                field="prompt",
            )
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES_PER_REQUEST:
            raise ValidationError(
                f"n must be an integer from 1 to {MAX_IMAGES_PER_REQUEST}; got {n!r}.", field="n"
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
        ):
            raise ValidationError(f"seed must be an integer from 0 to {MAX_SEED}.", field="seed")

        def target() -> Target:
            return resolve_target(
                self.catalog,
                request.model,
                request.provider,
                default_model=self.default_model,
                default_provider=self.default_provider,
                has_key=self.has_key,
            )

        await self._bring_kept_in()
        try:
            chosen = target()
        except UnknownModelError:
            if not await self._discover(request.model or self.default_model or ""):
                raise
            chosen = target()
        choice, first, spec = chosen.choice, chosen.provider, chosen.spec
        warnings: list[str] = [choice.note] if choice.note else []
        if not self.has_key(first):
            raise missing_key(first)
        ratio, size = self.catalog.validate(
            spec,
            aspect_ratio=request.aspect_ratio,
            image_size=request.image_size,
            n_images=len(request.images),
        )
        thinking = self.catalog.validate_thinking(spec, request.thinking)
        google_search = self.catalog.validate_google_search(spec, request.google_search)
        image_options = image_options_for(first, request.image_options)
        refs = await resolve_references(request.images)
        if ratio is None and refs:
            # No ratio asked for: an edit keeps its input's shape.  Gemini's models do so by
            # themselves; others draw a square unless told, so the ratio is always sent.
            ratio = nearest_ratio(spec.aspect_ratios, refs[0].width, refs[0].height)
        self.catalog.validate(spec, aspect_ratio=ratio, image_size=size, n_images=len(refs))
        chain = [first]
        # A variant is OpenRouter's alone: no other provider can stand in for ":free".
        fallback = self.fallback if request.fallback is None else request.fallback
        if choice.variant is None and fallback:
            for alt in self.fallbacks.get(first, ()):
                # A provider that cannot carry the options would drop them unseen: not tried.
                takes_options = INFOS[alt].image_options or not image_options
                if (
                    alt in spec.provider_ids
                    and self.has_key(alt)
                    and alt not in chain
                    and takes_options
                ):
                    chain.append(alt)
        shutdown = spec.shutdown_note()
        if shutdown:
            warnings.append(shutdown)
        if seed is not None and not spec.supports_seed:
            warnings.append(
                f"{spec.id} does not document a seed: it was sent, but the same seed may not "
                "give the same image."
            )
        return _Plan(
            prompt=prompt,
            effective_prompt=fold_negative_prompt(prompt, request.negative_prompt),
            negative_prompt=request.negative_prompt or None,
            choice=choice,
            chain=chain,
            aspect_ratio=ratio,
            image_size=size,
            seed=seed,
            n=n,
            references=refs,
            warnings=warnings,
            thinking=thinking,
            google_search=google_search,
            image_options=image_options,
            history=_checked_history(request.history),
        )

    # ------------------------------------------------------------------------ calling
    async def _emit(self, cb: EventCallback | None, event: StreamEvent) -> None:
        if cb is None:
            return
        out = cb(event)
        if out is not None:
            await out

    async def _one_image(
        self, plan: _Plan, index: int, *, streaming: bool, on_event: EventCallback | None
    ) -> _ImageOutcome:
        outcome = _ImageOutcome(index=index)
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + self.deadline
        in_flight = False
        try:
            async with asyncio.timeout_at(deadline_at):
                for pos, name in enumerate(plan.chain):
                    attempt_no = 0
                    while True:
                        attempt_no += 1
                        wire = plan.choice.wire_id(name)
                        call = ProviderCall(
                            model=plan.spec,
                            wire_model=wire,
                            prompt=plan.effective_prompt,
                            aspect_ratio=plan.aspect_ratio,
                            image_size=plan.image_size,
                            images=plan.references,
                            seed=plan.seed,
                            thinking=plan.thinking,
                            google_search=plan.google_search,
                            image_options=plan.image_options,
                            read_timeout=self.read_timeout,
                            history=plan.history,
                        )
                        started = time.monotonic()
                        emitted = [False]
                        in_flight = True
                        try:
                            await self._call(
                                plan, call, name, outcome, streaming, on_event, emitted
                            )
                        except (UpstreamError, ContentError) as exc:
                            in_flight = False
                            att = _attempt(name, wire, index, exc, started)
                            outcome.attempts.append(att)
                            await self._emit(on_event, AttemptEvent(att))
                            if emitted[0] or isinstance(exc, ContentError):
                                raise
                            if retry_mod.should_retry(exc, attempt_no, self.retry):
                                delay = retry_mod.retry_delay(exc, attempt_no, self.retry)
                                if loop.time() + delay < deadline_at:
                                    await self._sleep(delay)
                                    continue
                            if pos + 1 < len(plan.chain) and retry_mod.should_fall_back(exc):
                                break
                            _explain_variant(exc, plan.choice, wire)
                            raise
                        in_flight = False
                        att = Attempt(
                            provider=name,
                            model=wire,
                            status="ok",
                            index=index,
                            request_id=outcome.request_id,
                            duration_s=time.monotonic() - started,
                        )
                        outcome.attempts.append(att)
                        await self._emit(on_event, AttemptEvent(att))
                        return outcome
        except TimeoutError:
            err = DeadlineExceeded(
                f"No image within the {self.deadline:.0f} s deadline.",
                provider=plan.chain[0],
                may_be_billed=in_flight,
            )
            if in_flight:
                outcome.attempts.append(
                    Attempt(
                        provider=outcome.provider or plan.chain[0],
                        model=outcome.wire_model or plan.spec.id,
                        status="error",
                        index=index,
                        error=err.message,
                        error_code=err.code,
                        may_be_billed=True,
                    )
                )
            outcome.error = err
        except NanobananaError as exc:
            outcome.error = exc
        return outcome

    async def _call(
        self,
        plan: _Plan,
        call: ProviderCall,
        name: str,
        outcome: _ImageOutcome,
        streaming: bool,
        on_event: EventCallback | None,
        emitted: list[bool],
    ) -> None:
        provider = await self._provider(name)
        outcome.provider, outcome.wire_model = name, call.wire_model
        if not streaming:
            resp = await provider.generate(call)
            if not resp.images:
                raise ContentError("The provider returned no image.", provider=name)
            image = resp.images[0]
            image.index = outcome.index
            outcome.image, outcome.text, outcome.usage = image, resp.text, resp.usage
            outcome.finish_reason = resp.finish_reason
            outcome.request_id = resp.request_id
            outcome.grounding = resp.grounding
            image.continuation = resp.continuation
            image.metadata = plan.image_provenance(
                image, name, call.wire_model, resp.usage, self.synthetic
            )
            await self._emit(on_event, ImageEvent(image))
            return
        texts: list[str] = []
        async for ev in provider.stream(call):
            if isinstance(ev, TextDelta):
                texts.append(ev.text)
                ev.index = outcome.index
                emitted[0] = True
                await self._emit(on_event, ev)
            elif isinstance(ev, ImageEvent):
                if outcome.image is None:
                    ev.image.index = outcome.index
                    # The usage comes at the end of the stream, after the image.
                    ev.image.metadata = plan.image_provenance(
                        ev.image, name, call.wire_model, None, self.synthetic
                    )
                    outcome.image = ev.image
                    emitted[0] = True
                    await self._emit(on_event, ev)
            elif isinstance(ev, UsageEvent):
                outcome.usage = ev.usage
                await self._emit(on_event, ev)
            elif isinstance(ev, FinishEvent):
                outcome.finish_reason = ev.finish_reason
                outcome.request_id = ev.request_id
                outcome.grounding = ev.grounding
                if outcome.image is not None:
                    outcome.image.continuation = ev.continuation
        outcome.text = "".join(texts)
        if outcome.image is None:
            raise ContentError("The provider returned no image.", provider=name, text=outcome.text)

    # ------------------------------------------------------------------------ public API
    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        provider: str | None = None,
        aspect_ratio: str | None = None,
        image_size: str | None = None,
        n: int = 1,
        negative_prompt: str | None = None,
        images: Iterable[ReferenceInput] = (),
        seed: int | None = None,
        thinking: str | None = None,
        google_search: bool = False,
        image_options: Mapping[str, Any] | None = None,
        fallback: bool | None = None,
        history: Iterable[PriorTurn] = (),
        on_event: EventCallback | None = None,
        stream: bool = False,
    ) -> Result:
        """Generate ``n`` images; raise if none came back, else return what did.

        ``history`` continues a conversation (earlier turns, oldest first); a ``Session``
        keeps it for you (``client.session()``)."""
        request = GenerationRequest(
            prompt=prompt,
            model=model,
            provider=provider,
            aspect_ratio=aspect_ratio,
            image_size=image_size,
            n=n,
            negative_prompt=negative_prompt,
            images=tuple(images),
            seed=seed,
            thinking=thinking,
            google_search=google_search,
            image_options=image_options or {},
            fallback=fallback,
            history=tuple(history),
        )
        return await self.run(request, on_event=on_event, stream=stream)

    async def run(
        self,
        request: GenerationRequest,
        *,
        on_event: EventCallback | None = None,
        stream: bool = False,
    ) -> Result:
        """``generate`` for a request already made: what the CLI, batch runs, ComfyUI and the
        service's jobs call."""
        started = time.monotonic()
        plan = await self._plan(request)
        try:
            return await self._execute(plan, on_event, stream, started)
        except ModelNotServedError as exc:
            retry = await self._replan_for_listing(plan, exc)
            if retry is None:
                raise
            refused = exc.attempts  # the refused call stays part of the record
        try:
            result = await self._execute(retry, on_event, stream, started)
        except NanobananaError as again:
            again.attempts = [*refused, *again.attempts]
            raise
        result.attempts[:0] = refused
        return result

    async def _execute(
        self, plan: _Plan, on_event: EventCallback | None, stream: bool, started: float
    ) -> Result:
        first_image_at: list[float] = []

        async def tracking(ev: StreamEvent) -> None:
            if isinstance(ev, ImageEvent) and not first_image_at:
                first_image_at.append(time.monotonic() - started)
            await self._emit(on_event, ev)

        if plan.n == 1:  # most calls: no task and gathering future per call
            outcomes = [await self._one_image(plan, 0, streaming=stream, on_event=tracking)]
        else:
            outcomes = await asyncio.gather(
                *(
                    self._one_image(plan, i, streaming=stream, on_event=tracking)
                    for i in range(plan.n)
                )
            )
        result = self._assemble(plan, outcomes, started, first_image_at)
        await self._emit(on_event, DoneEvent(result))
        return result

    async def stream(
        self,
        prompt: str,
        **options: Unpack[GenerateOptions],
    ) -> AsyncGenerator[StreamEvent, None]:
        """Like ``generate``, as events: text deltas, images, usage, attempts, then ``done``.

        Errors (no image at all) are raised from the iterator after the events that came."""
        queue: asyncio.Queue[StreamEvent | BaseException | None] = asyncio.Queue()

        async def push(ev: StreamEvent) -> None:
            if not isinstance(ev, DoneEvent):
                await queue.put(ev)

        async def run() -> None:
            try:
                result = await self.generate(prompt, on_event=push, stream=True, **options)
                await queue.put(DoneEvent(result))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
                await queue.put(exc)
            finally:
                await queue.put(None)

        task = asyncio.create_task(run())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def session(
        self, *, image_turns: int = HISTORY_IMAGE_TURNS, **defaults: Unpack[TurnOptions]
    ) -> AsyncSession:
        """A conversation: ``send`` prompts that build on the turns before them, ``branch``
        from any turn (docs/sessions.md).  ``defaults`` apply to every turn."""
        return AsyncSession(self, image_turns=image_turns, **defaults)

    async def check_key(self, provider: str) -> KeyStatus:
        """Check ``provider``'s key with a free call that authenticates it; raises
        ``AuthenticationError`` when the provider refuses it (``MissingKeyError`` when unset)."""
        name = canonical_provider(provider)
        if not self.has_key(name):
            raise missing_key(name)
        return await (await self._provider(name)).key_status()

    async def models(self, provider: str | None = None, *, live: bool = True) -> list[ModelSpec]:
        """The catalog, merged with live discovery from every provider that can list
        (``can_list``: a key, or a public listing); the listing is kept, so the models it found
        are usable by id in later runs too."""
        names = [canonical_provider(provider)] if provider else list(PROVIDERS)
        if live:
            for name in names:
                if self.can_list(name):
                    await self._list(name)  # merged: new models, and the ids listed now
        return [s for s in self.catalog if any(p in s.provider_ids for p in names)]

    # ------------------------------------------------------------------------ discovery
    @functools.cached_property
    def listings(self) -> Listings | None:
        """The listings this client knows (set up on first use: a client that never meets an
        unknown model never looks for its cache folder).  A synthetic client keeps them in
        memory only: an emulator on a new port each run would leave a file behind each time."""
        if not self.discover:
            return None
        if self._shared_listings is not None:
            return self._shared_listings
        if self._listing_cache is not None:
            return Listings(self._listing_cache)
        return Listings(None if self.synthetic else ListingCache.default(self._env))

    def _listing_url(self, name: str) -> str:
        return INFOS[name].url(self.configs[name])

    async def _list(self, name: str) -> None:
        """``name``'s listing, fetched now, kept, and merged into the catalog."""
        discovered = await (await self._provider(name, listing=True)).list_models()
        if self.listings is not None:
            await self.listings.keep(name, self._listing_url(name), discovered)
        self.catalog.merge_discovered(name, discovered)

    async def _kept(self, listings: Listings, name: str) -> Listing | None:
        """``name``'s newest kept listing, merged into the catalog."""
        listing = await listings.kept(name, self._listing_url(name))
        if listing is not None:
            self.catalog.merge_discovered(name, listing.models)
        return listing

    async def refresh_listings(self, max_age: float = LISTING_REFRESH_AFTER) -> None:
        """Bring every kept listing into the catalog, and fetch those of the providers that can
        list (``can_list``) that are older than ``max_age`` seconds (a service calls this in
        the background, so that no generation waits for a listing)."""
        if self.listings is not None:
            await self._refresh(await self._kept_all(self.listings), max_age)

    async def _kept_all(self, listings: Listings) -> dict[str, Listing | None]:
        """Every provider's kept listing (one another client fetched with its key counts too),
        merged into the catalog."""
        return {name: await self._kept(listings, name) for name in PROVIDERS}

    async def _refresh(self, kept: dict[str, Listing | None], max_age: float) -> None:
        """Fetch, at the same time, the listings of the providers that can list (a key, or
        a public listing) that are older than ``max_age`` (or missing)."""
        stale = [
            name
            for name, listing in kept.items()
            if self.can_list(name) and (listing is None or listing.age() >= max_age)
        ]
        await asyncio.gather(*(self._try_list(name) for name in stale))

    async def find_model(self, model: str) -> ModelSpec | None:
        """The catalog's entry for ``model`` (an id, alias or provider id), looked up in the
        providers' listings when the catalog does not know it; ``None`` when none has it."""
        spec = self.catalog.find(model)
        if spec is None and await self._discover(model):
            spec = self.catalog.find(model)
        return spec

    async def _bring_kept_in(self) -> None:
        """At the first generation, the kept listings into the catalog (files only, no
        call): each model is sent by the id its provider lists.  A client given shared
        ``listings`` leaves that to their owner (a service refreshes them in the background)."""
        if self._kept_in:
            return
        self._kept_in = True
        if self.listings is not None and self._shared_listings is None:
            await self._kept_all(self.listings)

    async def _replan_for_listing(self, plan: _Plan, exc: ModelNotServedError) -> _Plan | None:
        """After a provider refused the model id it was sent: its listing (fetched again
        unless it is fresh) may serve the model under another id, a preview id retired for
        the GA one.  The same plan with that id, and a warning saying so (its references are
        not read again); ``None`` if there is none (or the id had a variant: what OpenRouter
        refused then is the variant, ``:free`` on a model that has none)."""
        name = exc.provider
        if (
            self.listings is None
            or name is None
            or not self.has_key(name)
            or plan.choice.variant is not None
        ):
            return None
        sent = plan.choice.wire_id(name)
        listing = await self.listings.kept(name, self._listing_url(name))
        if listing is None or listing.age() >= LISTING_REFRESH_AFTER:
            await self._try_list(name)
        spec = self.catalog.get(plan.spec.id)  # the entry as the listing left it
        now = spec.provider_ids.get(name, sent)
        if now == sent:
            return None
        warning = (
            f"{name} no longer serves {sent!r}; sent {now!r}, the id its model listing has now."
        )
        choice = dataclasses.replace(plan.choice, spec=spec)
        return dataclasses.replace(plan, choice=choice, warnings=[*plan.warnings, warning])

    async def _discover(self, model: str) -> bool:
        """Whether ``model``, unknown to the catalog, is in a provider's listing: the kept
        listings first, then fresh ones from the providers that can list (not more often
        than every ``LISTING_REFRESH_AFTER`` seconds).  A provider that cannot list is
        passed over: the built-in catalog is then all there is."""
        listings = self.listings
        if listings is None or not model.strip():
            return False
        kept = await self._kept_all(listings)
        if self.catalog.find(model) is None:
            await self._refresh(kept, LISTING_REFRESH_AFTER)
        return self.catalog.find(model) is not None

    async def _try_list(self, name: str) -> None:
        try:
            await self._list(name)
        except NanobananaError as exc:
            log.info("Could not list %s's models (%s); using the catalog.", name, exc.code)

    # ------------------------------------------------------------------------ result
    def _assemble(
        self,
        plan: _Plan,
        outcomes: list[_ImageOutcome],
        started: float,
        first_image_at: list[float],
    ) -> Result:
        outcomes = sorted(outcomes, key=lambda o: o.index)
        attempts = [a for o in outcomes for a in o.attempts]
        good = [o for o in outcomes if o.image is not None]
        if not good:
            errors = [o.error for o in outcomes if o.error is not None]
            err = _most_telling(errors)
            err.attempts = attempts
            raise err
        usage = Usage()
        for o in outcomes:
            usage = usage + o.usage
        if self.synthetic:
            # The emulator reports made-up prices; synthetic images cost nothing.
            usage.cost, usage.cost_is_estimate = None, False
        lead = good[0]
        provider = lead.provider or plan.chain[0]
        warnings = list(plan.warnings)
        used = {o.provider for o in good}
        if len(used) > 1:
            warnings.append(
                f"Images came from several providers: {', '.join(sorted(map(str, used)))}."
            )
        if any(a.provider != plan.chain[0] for a in attempts if a.status == "ok"):
            warnings.append(f"{plan.chain[0]} failed; the image came from the fallback provider.")
        expected = None
        if plan.aspect_ratio or not plan.references:
            expected = plan.spec.expected_pixels(plan.aspect_ratio, plan.image_size)
        for o in good:
            img = o.image
            assert img is not None
            if expected and (img.width, img.height) != expected:
                warnings.append(
                    f"Image {o.index + 1} is {img.width}x{img.height}; "
                    f"{plan.aspect_ratio or '1:1'} at {plan.image_size or '1K'} should be "
                    f"{expected[0]}x{expected[1]}."
                )
        failures = [
            ImageFailure(index=o.index, error=str(o.error), error_code=o.error.code)
            for o in outcomes
            if o.image is None and o.error is not None
        ]
        grounding: Grounding | None = None
        for o in good:
            grounding = Grounding.merge(grounding, o.grounding)
        result = Result(
            images=[o.image for o in good if o.image is not None],
            text="\n".join(o.text for o in good if o.text),
            prompt=plan.prompt,
            effective_prompt=plan.effective_prompt,
            model=plan.spec.id,
            provider=provider,
            provider_model=lead.wire_model or plan.choice.wire_id(provider),
            usage=usage,
            aspect_ratio=plan.aspect_ratio,
            image_size=plan.image_size,
            seed=plan.seed,
            negative_prompt=plan.negative_prompt,
            thinking=plan.thinking,
            google_search=plan.google_search,
            grounding=grounding,
            image_options=plan.image_options,
            finish_reason=lead.finish_reason,
            attempts=attempts,
            failures=failures,
            warnings=warnings,
            elapsed_s=time.monotonic() - started,
            first_image_s=first_image_at[0] if first_image_at else None,
            synthetic=self.synthetic,
        )
        meta = result.provenance()
        for img in result.images:
            img.metadata = {**meta, "index": img.index}
        return result


def _checked_history(history: Iterable[PriorTurn]) -> tuple[PriorTurn, ...]:
    turns = tuple(history)
    for turn in turns:
        if not isinstance(turn, PriorTurn):
            raise ValidationError(
                f"history holds {type(turn).__name__}, not PriorTurn: pass the earlier turns "
                "as nanobanana.PriorTurn values (a Session builds them).",
                field="history",
            )
    return turns


def _attempt(provider: str, wire: str, index: int, exc: NanobananaError, started: float) -> Attempt:
    status: Any = "error"
    if isinstance(exc, ContentError):
        status = "blocked" if exc.code == "content_blocked" else "no_image"
    return Attempt(
        provider=provider,
        model=wire,
        status=status,
        index=index,
        error=str(exc),
        error_code=exc.code,
        http_status=getattr(exc, "status", None),
        request_id=getattr(exc, "request_id", None),
        duration_s=time.monotonic() - started,
        may_be_billed=bool(getattr(exc, "may_be_billed", isinstance(exc, ContentError))),
    )


def _most_telling(errors: list[NanobananaError]) -> NanobananaError:
    """With several failed images, report the content outcome, then the last provider's error."""
    for kind in (ContentError, AmbiguousError):
        for e in errors:
            if isinstance(e, kind):
                return e
    return errors[-1] if errors else NanobananaError("No image was produced.")


# ----------------------------------------------------------------------------- sync facade
class _LoopThread:
    """An event loop in a daemon thread, so the sync client shares the async implementation."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nanobanana", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any]) -> Any:
        fut: Any = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def _close(thread: _LoopThread, client: AsyncClient) -> None:
    if thread.loop.is_closed():
        return
    try:
        thread.run(client.aclose())
    finally:
        thread.stop()


def _parameters_of(
    source: Callable[Concatenate[Any, P], Any],
) -> Callable[[Callable[..., R]], Callable[Concatenate[Any, P], R]]:
    """Give a ``Client`` method the parameters of the ``AsyncClient`` method it runs: one
    signature, which type checkers enforce on both, ``help()`` shows, and a call is checked
    against (a misspelt argument is a ``TypeError`` naming the ``Client`` method)."""
    signature = inspect.signature(source)

    def wrap(fn: Callable[..., R]) -> Callable[Concatenate[Any, P], R]:
        name = f"Client.{fn.__name__}"

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> R:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{name}(): {exc}") from None
            return fn(*args, **kwargs)

        checked.__signature__ = signature.replace(  # type: ignore[attr-defined]
            return_annotation=inspect.signature(fn).return_annotation
        )
        if not fn.__doc__:
            checked.__doc__ = source.__doc__
        return checked

    return wrap


class Client:
    """The blocking twin of ``AsyncClient``: same arguments, same methods, same results.

    It needs no ``with``: its event loop thread and connections are closed by ``close()``, at
    the end of a ``with`` block, or when the program exits."""

    @_parameters_of(AsyncClient.__init__)
    def __init__(self, **kwargs: Any) -> None:
        self._thread = _LoopThread()

        async def make() -> AsyncClient:
            return AsyncClient(**kwargs)

        self._async: AsyncClient = self._thread.run(make())
        # Closed when collected or at exit, if not before: no "Unclosed client session".
        self._closer = weakref.finalize(self, _close, self._thread, self._async)

    @property
    def aio(self) -> AsyncClient:
        return self._async

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and the event loop thread (once; later calls do nothing)."""
        self._closer()

    @_parameters_of(AsyncClient.generate)
    def generate(self, *args: Any, **kwargs: Any) -> Result:
        result: Result = self._thread.run(self._async.generate(*args, **kwargs))
        return result

    @_parameters_of(AsyncClient.run)
    def run(self, *args: Any, **kwargs: Any) -> Result:
        result: Result = self._thread.run(self._async.run(*args, **kwargs))
        return result

    @_parameters_of(AsyncClient.models)
    def models(self, *args: Any, **kwargs: Any) -> list[ModelSpec]:
        out: list[ModelSpec] = self._thread.run(self._async.models(*args, **kwargs))
        return out

    def session(
        self, *, image_turns: int = HISTORY_IMAGE_TURNS, **defaults: Unpack[TurnOptions]
    ) -> Session:
        """``AsyncClient.session``, blocking."""
        return Session(self._thread, self._async.session(image_turns=image_turns, **defaults))

    @_parameters_of(AsyncClient.check_key)
    def check_key(self, *args: Any, **kwargs: Any) -> KeyStatus:
        status: KeyStatus = self._thread.run(self._async.check_key(*args, **kwargs))
        return status

    def stream(self, prompt: str, **options: Unpack[GenerateOptions]) -> Iterator[StreamEvent]:
        """Like ``generate``, as events: text deltas, images, usage, attempts, then ``done``."""
        agen = self._async.stream(prompt, **options)
        try:
            while True:
                try:
                    yield self._thread.run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._thread.run(agen.aclose())
