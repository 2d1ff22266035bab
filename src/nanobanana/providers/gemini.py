"""Google's Gemini API through the official ``google-genai`` SDK (``client.aio``).

The encoding is pure and tested from fixtures (``build_request``, ``sdk_request``,
``parse_response``, ``parse_chunk`` / ``end_of_stream``, ``error_from_api``, ``parse_models``): it
lives in ``gemini_wire``.  ``GeminiProvider`` only sends.

The SDK is told not to retry (``HttpRetryOptions(attempts=1)``: retries and fallback are the
client's), to use ``v1beta`` (3.x defaults to ``v1``), and sends the key only in the
``x-goog-api-key`` header.  With aiohttp installed the SDK sends through aiohttp, whose only
timeout it sets is a *total* one: ``call.read_timeout`` therefore bounds the whole call here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..catalog import ModelSpec
from ..config import ProviderConfig
from ..errors import (
    AmbiguousError,
    ConnectError,
    InvalidResponseError,
    NanobananaError,
    UpstreamError,
)
from .base import KeyStatus, ProviderCall, ProviderEvent, ProviderInfo, ProviderResponse
from .common import forget_request
from .gemini_wire import (
    LABEL,
    PROVIDER,
    GeminiStreamState,
    end_of_stream,
    error_from_api,
    parse_chunk,
    parse_models,
    parse_response,
    sdk_request,
)

if TYPE_CHECKING:
    import aiohttp
    from google import genai


INFO = ProviderInfo(
    name=PROVIDER,
    label="Google",
    aliases=("gemini",),
    key_env_vars=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    key_argument="google_api_key",
    key_hint="From Google AI Studio (aistudio.google.com/apikey). Serves the Gemini models.",
    key_placeholder="AIza…",
    base_url="https://generativelanguage.googleapis.com",
    base_url_env_var="GEMINI_BASE_URL",
    base_url_argument="gemini_base_url",
    quota_fallbacks=("openrouter",),
    emulator_key="AIza-emulator",
)
API_VERSION = "v1beta"
LIST_MODELS_TIMEOUT = 60.0


class GeminiProvider:
    """Sends calls to the Gemini API; one ``genai.Client``, created on first use."""

    name = PROVIDER
    info = INFO

    def __init__(
        self,
        config: ProviderConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        self.config = config
        self.api_version = api_version
        #: An aiohttp session for the SDK to send with (it is not closed by ``aclose``).
        self._session = session
        self._client: genai.Client | None = None

    def __repr__(self) -> str:
        return f"GeminiProvider(url={INFO.url(self.config)!r})"

    def _sdk(self) -> genai.Client:
        if self._client is None:
            if not self.config.api_key:
                raise INFO.missing_key()
            from google import genai
            from google.genai import types

            headers = {"Accept-Encoding": "identity", **self.config.headers}
            self._client = genai.Client(
                api_key=self.config.api_key,
                vertexai=False,
                http_options=types.HttpOptions(
                    base_url=INFO.url(self.config),
                    api_version=self.api_version,
                    headers=headers,
                    retry_options=types.HttpRetryOptions(attempts=1),
                    aiohttp_client=self._session,
                ),
            )
        return self._client

    def _error(self, exc: BaseException, timeout: float, *, in_band: bool) -> NanobananaError:
        return translate_error(
            exc,
            url=INFO.url(self.config),
            timeout=timeout,
            api_key=self.config.api_key,
            in_band=in_band,
        )

    async def generate(self, call: ProviderCall) -> ProviderResponse:
        client = self._sdk()
        contents, config = sdk_request(call, timeout_ms=_ms(call.read_timeout))
        try:
            resp = await client.aio.models.generate_content(
                model=call.wire_model, contents=contents, config=config
            )
        except SDK_ERRORS as exc:
            raise self._error(exc, call.read_timeout, in_band=False) from forget_request(exc)
        return parse_response(resp, model=call.model, image_size=call.image_size)

    async def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]:
        client = self._sdk()
        contents, config = sdk_request(call, timeout_ms=_ms(call.read_timeout))
        state = GeminiStreamState(model=call.model, image_size=call.image_size)
        try:
            chunks = await client.aio.models.generate_content_stream(
                model=call.wire_model, contents=contents, config=config
            )
        except SDK_ERRORS as exc:
            raise self._error(exc, call.read_timeout, in_band=False) from forget_request(exc)
        try:
            while True:
                # Not ``async for``: an error is translated here, never around our own yields.
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except SDK_ERRORS as exc:
                    in_band = _arrived_in_band(exc)
                    raise self._error(exc, call.read_timeout, in_band=in_band) from forget_request(
                        exc
                    )
                for ev in parse_chunk(chunk, state):
                    yield ev
        finally:
            # Closing the SDK's generator releases the connection, also on cancel or early exit.
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                await closer()
        for ev in end_of_stream(state):
            yield ev

    async def list_models(self) -> list[ModelSpec]:
        client = self._sdk()
        from google.genai import types

        config = types.ListModelsConfig(
            page_size=1000, http_options=types.HttpOptions(timeout=_ms(LIST_MODELS_TIMEOUT))
        )
        try:
            pager = await client.aio.models.list(config=config)
            models = [m async for m in pager]
        except SDK_ERRORS as exc:
            err = self._error(exc, LIST_MODELS_TIMEOUT, in_band=False)
            if isinstance(err, UpstreamError):
                err.may_be_billed = False  # listing models costs nothing
            raise err from forget_request(exc)
        return parse_models(models)

    async def key_status(self) -> KeyStatus:
        """Gemini answers ``models.list`` only for a valid key (400 ``API_KEY_INVALID``
        otherwise) and reports nothing about spending: the image models it lists."""
        return KeyStatus(models=len(await self.list_models()))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aio.aclose()
            client.close()


def _arrived_in_band(exc: BaseException) -> bool:
    """True for an error event inside a started (HTTP 200) stream.

    The SDK sends the request on the first read, so an HTTP error status also surfaces while
    iterating; such an error carries the transport's response (``.status`` 4xx/5xx), while an
    in-band error event carries the SDK's own response wrapper, which has no status."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status", None) or getattr(response, "status_code", None)
    return hasattr(exc, "details") and (status is None or status == 200)


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


#: Exceptions the SDK's call lets through.  Everything: the SDK sends with aiohttp, httpx or
#: httpx2 depending on its release and what is installed, and an exception this module failed
#: to foresee must still become an error of our tree (a 429 must reach the fallback), never a
#: crash.  ``translate_error`` sorts them without importing any of those transports.
SDK_ERRORS: tuple[type[Exception], ...] = (Exception,)

#: Class names (anywhere in an exception's MRO) of the transports' "not sent" and "unreadable"
#: errors: aiohttp's, and httpx's which httpx2 copies name for name.
_CONNECT_ERRORS = frozenset(
    {
        "ClientConnectorError",
        "ConnectionTimeoutError",
        "ConnectError",
        "ConnectTimeout",
        "PoolTimeout",
    }
)
_UNREADABLE_ERRORS = frozenset({"ClientResponseError", "DecodingError"})
_TIMEOUT_ERRORS = frozenset({"TimeoutException"})


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def translate_error(
    exc: BaseException,
    *,
    url: str,
    timeout: float,
    api_key: str | None = None,
    in_band: bool = False,
) -> NanobananaError:
    """Any exception out of the SDK -> our tree: before the request was sent or after.

    Transport errors are recognised by their class names, so that no transport the SDK may or
    may not use (httpx, httpx2) has to be importable here."""
    from google.genai import errors as genai_errors

    if isinstance(exc, NanobananaError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        return error_from_api(exc, api_key=api_key, in_band=in_band)
    names = _names(exc)
    if names & _CONNECT_ERRORS:
        return ConnectError(
            f"Could not connect to {LABEL} at {url} ({type(exc).__name__}); "
            "the request was not sent.",
            provider=PROVIDER,
        )
    if names & _UNREADABLE_ERRORS or isinstance(exc, ValueError):
        return InvalidResponseError(
            f"{LABEL} sent an answer that could not be read ({type(exc).__name__}).",
            provider=PROVIDER,
        )
    if isinstance(exc, TimeoutError) or names & _TIMEOUT_ERRORS:
        what = f"no complete answer within {timeout:g} s"
    elif "ClientPayloadError" in names:
        what = "the answer was cut short"
    else:
        what = f"the connection was lost ({type(exc).__name__})"
    return AmbiguousError(
        f"{LABEL}: {what} after the request was sent; it may have been billed, "
        "so it is not resent.",
        provider=PROVIDER,
    )
