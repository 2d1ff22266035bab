"""OpenRouter: ``POST {base}/chat/completions`` with ``modalities``, over aiohttp by default.

The encoding is pure and tested from fixtures (``build_request``, ``parse_response``,
``parse_event`` / ``end_of_stream`` for SSE chunks, ``parse_models``): it lives in
``openrouter_wire`` and is re-exported here.  ``OpenRouterProvider`` only sends.

aiohttp was chosen by measurement (a 20 MB answer: ~5 ms and one buffer, against httpx's
buffering and reference cycles).  It is reached through ``nanobanana.transport``, so that a
one-shot process can send with the standard library instead and skip aiohttp's import.
``Accept-Encoding: identity`` because base64 barely compresses (ratio ~0.76) while gzip costs
~470 ms per 20 MB on the server and again here.  The hot path never turns an image payload
into a ``str``: the data-URL payloads are cut out of the raw body and decoded from
``memoryview`` slices (see ``datauri``).
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING

import orjson

from .. import __version__
from ..catalog import ModelSpec
from ..config import ProviderConfig
from ..errors import (
    AmbiguousError,
    ConnectError,
    InvalidResponseError,
    NanobananaError,
    UpstreamError,
)
from ..types import ImageEvent, TextDelta, UsageEvent
from .base import (
    FinishEvent,
    KeyStatus,
    ProviderCall,
    ProviderEvent,
    ProviderInfo,
    ProviderResponse,
)
from .common import forget_request
from .openrouter_errors import LABEL, PROVIDER, error_from_status
from .openrouter_wire import (
    StreamState,
    build_request,
    end_of_stream,
    parse_event,
    parse_key_status,
    parse_models,
    parse_response,
)
from .sse import MAX_LINE_BYTES, LineTooLongError, SSEDecoder, iter_sse_data

if TYPE_CHECKING:
    import aiohttp

    from ..transport import Failure, Response, Transport

INFO = ProviderInfo(
    name=PROVIDER,
    label=LABEL,
    key_env_vars=("OPENROUTER_API_KEY",),
    key_argument="openrouter_api_key",
    key_hint="From openrouter.ai/keys. Serves Gemini and the other image models.",
    key_placeholder="sk-or-v1-…",
    base_url="https://openrouter.ai/api/v1",
    base_url_env_var="OPENROUTER_BASE_URL",
    base_url_argument="openrouter_base_url",
    recommended=True,
    # Its image_config takes keys that vary by model ("Provider-specific image configuration
    # options", the OpenAPI ImageConfig): Recraft's style, Sourceful's font_inputs, ...
    image_options=True,
    # GET /models is public: the docs list models with a bare curl, no Authorization header.
    lists_without_key=True,
    emulator_key="sk-or-v1-emulator",
)
#: Largest answer accepted; past it the connection is closed (a 4K PNG is ~30 MB of base64).
DEFAULT_MAX_RESPONSE_BYTES = 128 * 1024 * 1024
#: Error bodies are small; anything past this is not read.
MAX_ERROR_BODY_BYTES = 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Image calls are slow (10-60 s) and cheap to hold: allow many at once.
DEFAULT_CONNECTION_LIMIT = 1000
LIST_MODELS_READ_TIMEOUT = 60.0
#: Request bodies below this are copied to their exact size before sending (see ``_post``).
SMALL_BODY = 64 * 1024


class OpenRouterProvider:
    """Sends calls to OpenRouter through a transport: aiohttp on one ``ClientSession``
    (injected, or created on first use), unless another ``transport`` is given."""

    name = PROVIDER
    info = INFO
    accepts_transport = True

    def __init__(
        self,
        config: ProviderConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        transport: Transport | None = None,
    ) -> None:
        self.config = config
        self.max_response_bytes = max_response_bytes
        self.max_line_bytes = max_line_bytes
        self.connect_timeout = connect_timeout
        if transport is None:
            from ..transport import AiohttpTransport

            transport = AiohttpTransport(session, connection_limit=connection_limit)
        self.transport: Transport = transport
        self.url = INFO.url(config)
        self._chat_url = f"{self.url}/chat/completions"
        self._models_url = f"{self.url}/models"
        self._key_url = f"{self.url}/key"

    def __repr__(self) -> str:
        return f"OpenRouterProvider(url={self.url!r})"

    # ------------------------------------------------------------------------ plumbing
    def _headers(self, accept: str, *, auth: bool = True) -> dict[str, str]:
        h = {
            "Accept": accept,
            # base64 does not compress; gzip would only cost time at both ends.
            "Accept-Encoding": "identity",
            "Content-Type": "application/json",
            "User-Agent": f"nanobanana/{__version__}",
        }
        if self.config.referer:
            h["HTTP-Referer"] = self.config.referer
        if self.config.title:
            h["X-OpenRouter-Title"] = self.config.title
            h["X-Title"] = self.config.title
        h.update(self.config.headers)
        if auth:
            h["Authorization"] = f"Bearer {self._key()}"
        return h

    def _key(self) -> str:
        if not self.config.api_key:
            raise INFO.missing_key()
        return self.config.api_key

    async def _read(self, resp: Response, cap: int, *, truncate: bool = False) -> bytes | bytearray:
        """The body, refusing (and closing the connection) past ``cap`` bytes.

        With a ``Content-Length`` the body is copied, as it arrives, into one buffer of that
        size: a list of chunks joined at the end would hold the body twice for a moment (40 MB
        for a 4K image's 20 MB answer).  A compressed answer (sent although ``identity`` was
        asked for) announces its compressed length: it is read piece by piece."""
        length = resp.content_length
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if length is not None and encoding != "identity":
            length = None
        if length is not None and length > cap and not truncate:
            resp.close()
            raise self._too_large(cap, resp)
        if length is not None and length <= cap:
            buf = bytearray(length)
            view = memoryview(buf)
            total = 0
            async for chunk, _ in resp.content.iter_chunks():
                end = total + len(chunk)
                if end > length:  # more than announced (aiohttp refuses this itself)
                    raise InvalidResponseError(
                        f"{LABEL}'s answer is longer than its Content-Length.",
                        provider=PROVIDER,
                        status=resp.status,
                    )
                view[total:end] = chunk
                total = end
            view.release()
            if total < length:
                del buf[total:]
            return buf  # bytearray: read like bytes, never copied again
        chunks: list[bytes] = []
        total = 0
        async for chunk, _ in resp.content.iter_chunks():
            total += len(chunk)
            if total > cap:
                resp.close()
                if truncate:
                    chunks.append(chunk[: cap - (total - len(chunk))])
                    break
                raise self._too_large(cap, resp)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, cap: int, resp: Response) -> InvalidResponseError:
        return InvalidResponseError(
            f"{LABEL}'s answer exceeds the {_size(cap)} limit; it was not read.",
            provider=PROVIDER,
            status=resp.status,
            request_id=resp.headers.get("X-Generation-Id"),
        )

    async def _error(self, resp: Response) -> NanobananaError:
        try:
            body = await self._read(resp, MAX_ERROR_BODY_BYTES, truncate=True)
        except self.transport.errors:
            body = b""  # the status alone says what happened; the details were lost
        return error_from_status(
            resp.status,
            body,
            resp.headers,
            request_id=resp.headers.get("X-Generation-Id"),
            api_key=self.config.api_key,
        )

    # ------------------------------------------------------------------------ protocol
    @asynccontextmanager
    async def _post(self, call: ProviderCall, *, stream: bool) -> AsyncIterator[Response]:
        """Send the call; yield the response once it is known to be a 200 (else raise)."""
        self._key()  # a missing key is a usage error, raised before anything is sent
        payload = orjson.dumps(build_request(call, stream=stream))
        if len(payload) < SMALL_BODY:
            # orjson's result keeps at least 4 KB of capacity; the body is held for as long as
            # the upstream call waits (5-60 s, thousands at once): keep an exact-size copy.
            payload = bytes(memoryview(payload))
        async with self.transport.request(
            "POST",
            self._chat_url,
            data=payload,
            headers=self._headers("text/event-stream" if stream else "application/json"),
            connect_timeout=self.connect_timeout,
            read_timeout=call.read_timeout,
        ) as resp:
            del payload
            if resp.status != 200:
                raise await self._error(resp)
            yield resp

    async def generate(self, call: ProviderCall) -> ProviderResponse:
        try:
            async with self._post(call, stream=False) as resp:
                request_id = resp.headers.get("X-Generation-Id")
                body = await self._read(resp, self.max_response_bytes)
                resp_headers = resp.headers
        except self.transport.errors as exc:
            raise self._failed(exc, call.read_timeout) from forget_request(exc)
        try:
            return parse_response(
                body, request_id=request_id, headers=resp_headers, api_key=self.config.api_key
            )
        except NanobananaError as exc:
            # The traceback's frames hold the body (up to 128 MiB) for as long as the error is
            # kept (the client keeps attempts): drop them.
            _clear_frames(exc)
            raise
        finally:
            del body

    async def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]:
        try:
            async with self._post(call, stream=True) as resp:
                request_id = resp.headers.get("X-Generation-Id")
                if resp.content_type == "application/json":
                    # Not a stream after all (an error-in-200 or a whole answer): parse it whole.
                    body = await self._read(resp, self.max_response_bytes)
                    done = parse_response(
                        body,
                        request_id=request_id,
                        headers=resp.headers,
                        api_key=self.config.api_key,
                    )
                    del body
                    for ev in _response_events(done):
                        yield ev
                    return
                async with aclosing(self._sse_events(resp, request_id)) as events:
                    async for ev in events:
                        yield ev
        except self.transport.errors as exc:
            raise self._failed(exc, call.read_timeout) from forget_request(exc)

    async def _sse_events(
        self, resp: Response, request_id: str | None
    ) -> AsyncGenerator[ProviderEvent, None]:
        state = StreamState(request_id=request_id)
        decoder = SSEDecoder(max_line=self.max_line_bytes)
        try:
            async with aclosing(iter_sse_data(resp.content.iter_any(), decoder)) as datas:
                async for data in datas:
                    if data == b"[DONE]":
                        state.done = True
                        break
                    events = parse_event(data, state, api_key=self.config.api_key)
                    for ev in events:
                        yield ev
                    if state.error is not None:
                        raise state.error
        except LineTooLongError as exc:
            resp.close()
            raise InvalidResponseError(
                f"{LABEL} sent a stream line longer than {_size(self.max_line_bytes)}; "
                "the stream was abandoned.",
                provider=PROVIDER,
                request_id=state.request_id,
            ) from exc
        yield end_of_stream(state)

    async def list_models(self) -> list[ModelSpec]:
        try:
            async with self.transport.request(
                "GET",
                self._models_url,
                params={"output_modalities": "image"},
                headers=self._headers("application/json", auth=bool(self.config.api_key)),
                connect_timeout=self.connect_timeout,
                read_timeout=LIST_MODELS_READ_TIMEOUT,
            ) as resp:
                if resp.status != 200:
                    raise await self._error(resp)
                body = await self._read(resp, self.max_response_bytes)
        except self.transport.errors as exc:
            err = self._failed(exc, LIST_MODELS_READ_TIMEOUT)
            err.may_be_billed = False  # listing models costs nothing
            raise err from forget_request(exc)
        return parse_models(body)

    async def key_status(self) -> KeyStatus:
        """``GET /key``: answered only for a key OpenRouter accepts (401 otherwise), with the
        key's spending limit, what is left of it and its usage.  ``/models`` needs no key, so
        it cannot tell a refused key from a good one."""
        try:
            async with self.transport.request(
                "GET",
                self._key_url,
                headers=self._headers("application/json"),
                connect_timeout=self.connect_timeout,
                read_timeout=LIST_MODELS_READ_TIMEOUT,
            ) as resp:
                if resp.status != 200:
                    raise await self._error(resp)
                body = await self._read(resp, MAX_ERROR_BODY_BYTES)
        except self.transport.errors as exc:
            err = self._failed(exc, LIST_MODELS_READ_TIMEOUT)
            err.may_be_billed = False  # reading the key's status costs nothing
            raise err from forget_request(exc)
        return parse_key_status(body)

    def _failed(self, exc: BaseException, read_timeout: float) -> UpstreamError:
        return _transport_error(self.transport.classify(exc), self.url, read_timeout)

    async def aclose(self) -> None:
        await self.transport.aclose()


def _response_events(resp: ProviderResponse) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    if resp.text:
        events.append(TextDelta(resp.text))
    events.extend(ImageEvent(img) for img in resp.images)
    events.append(UsageEvent(resp.usage))
    events.append(
        FinishEvent(
            finish_reason=resp.finish_reason,
            request_id=resp.request_id,
            served_model=resp.served_model,
        )
    )
    return events


def _transport_error(failure: Failure, url: str, read_timeout: float) -> UpstreamError:
    """A transport failure: before the request was written (connect) or after (ambiguous)."""
    if failure.kind == "connect":
        return ConnectError(
            f"Could not connect to {LABEL} at {url} ({failure.reason or 'no connection'}); "
            "the request was not sent.",
            provider=PROVIDER,
        )
    if failure.kind == "invalid_url":
        return ConnectError(
            f"The {LABEL} base URL {url!r} is not a valid URL.", provider=PROVIDER, retryable=False
        )
    if failure.kind == "malformed":
        return InvalidResponseError(
            f"{LABEL} sent a malformed HTTP answer ({failure.reason or 'unreadable'}).",
            provider=PROVIDER,
            status=failure.status,
        )
    if failure.kind == "timeout":
        what = f"no data for {read_timeout:g} s"
    elif failure.kind == "payload":
        what = "the answer was cut short or could not be decoded"
    else:
        what = f"the connection was lost ({failure.reason or 'no reason given'})"
    return AmbiguousError(
        f"{LABEL}: {what} after the request was sent; it may have been billed, "
        "so it is not resent.",
        provider=PROVIDER,
    )


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def _clear_frames(exc: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
