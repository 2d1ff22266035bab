"""HTTP transports for the OpenRouter provider: aiohttp (the default) and the standard library.

The provider sends through a ``Transport``.  ``request(...)`` is an async context manager that
yields a ``Response``: ``status``, ``headers``, ``content_length``, ``content_type``,
``content.iter_any()``, ``content.iter_chunks()`` and ``close()``.  That is aiohttp's own
``ClientResponse``, so the service's hot path keeps aiohttp's objects as they are.  A failure
comes out as one of the transport's ``errors``, and ``classify`` says what the provider needs
to know about it: was the request sent at all (``connect`` and ``invalid_url`` say no), and if
so what went wrong.

``StdlibTransport`` is for one-shot processes such as ``nanobanana generate``.  Importing
aiohttp costs 0.15-0.35 s, more than a whole 1K generation against a local server: its
connector builds two verified SSL contexts at import.  The standard library's ``http.client``
sends from a worker thread, one connection per request.  It does not go through proxies, so
``one_shot_transport`` picks it only when the environment configures none.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    import http.client
    import ssl

    import aiohttp

FailureKind = Literal["connect", "invalid_url", "malformed", "timeout", "payload", "lost"]

#: Environment variables that route requests through a proxy (any case).
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})
#: Most bytes handed on at once, read from the socket or inflated from a compressed answer.
READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Failure:
    """What went wrong with an HTTP exchange, in the terms the provider decides on.

    - ``connect``: no connection (refused, DNS, TLS, timeout); the request was not sent.
    - ``invalid_url``: the URL cannot be sent to; nothing was sent.
    - ``malformed``: the server's answer is not valid HTTP.
    - ``timeout``: the server was silent longer than the read timeout.
    - ``payload``: the body was cut short or could not be decoded.
    - ``lost``: the connection broke after the request was written.
    """

    kind: FailureKind
    reason: str | None = None
    status: int | None = None


class TransportError(Exception):
    """The standard-library transport's failure; ``failure`` says which."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason or failure.kind)
        self.failure = failure


class Body(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...

    #: (bytes, end of an HTTP chunk) as they were received: no two joined (aiohttp's
    #: ``iter_any`` joins what arrived meanwhile, a copy of most of a large body).
    def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]: ...


class Response(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def content_type(self) -> str: ...
    @property
    def content(self) -> Body: ...
    def close(self) -> None: ...


class Transport(Protocol):
    #: The exceptions ``request`` and reading its response may raise, for ``classify``.
    errors: tuple[type[BaseException], ...]

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        connect_timeout: float,
        read_timeout: float,
    ) -> AbstractAsyncContextManager[Response]: ...

    def classify(self, exc: BaseException) -> Failure: ...

    async def aclose(self) -> None: ...


def one_shot_transport(env: Mapping[str, str] | None = None) -> Transport | None:
    """The standard-library transport, or ``None`` (aiohttp) when a proxy is configured."""
    env = os.environ if env is None else env
    if any(value and key.lower() in PROXY_VARIABLES for key, value in env.items()):
        return None
    return StdlibTransport()


# ---------------------------------------------------------------------------------- aiohttp
class AiohttpTransport:
    """aiohttp: one ``ClientSession``, injected (and then left open) or created on first use.

    The created session honours proxy settings in the environment (``trust_env``)."""

    def __init__(
        self, session: aiohttp.ClientSession | None = None, *, connection_limit: int = 1000
    ) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.errors: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
        self.connection_limit = connection_limit
        self._session = session
        self._owns_session = session is None

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            aiohttp = self._aiohttp
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connection_limit, limit_per_host=0),
                trust_env=True,
            )
        return self._session

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        connect_timeout: float,
        read_timeout: float,
    ) -> AsyncIterator[Response]:
        session = await self._get_session()
        # No total: the caller owns the overall deadline; sock_read is the longest silence.
        timeout = self._aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        async with session.request(
            method,
            url,
            data=data,
            params=params,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        ) as resp:
            yield resp

    def classify(self, exc: BaseException) -> Failure:
        aiohttp = self._aiohttp
        if isinstance(exc, aiohttp.ClientConnectorError):
            return Failure("connect", exc.os_error.strerror or type(exc).__name__)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return Failure("connect", type(exc).__name__)
        if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
            return Failure("invalid_url")
        if isinstance(exc, aiohttp.ClientResponseError):
            return Failure("malformed", type(exc).__name__, exc.status or None)
        if isinstance(exc, TimeoutError):
            return Failure("timeout")
        if isinstance(exc, aiohttp.ClientPayloadError):
            return Failure("payload", type(exc).__name__)
        return Failure("lost", type(exc).__name__)

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()
        if self._owns_session:
            self._session = None


# ---------------------------------------------------------------------------------- stdlib
class StdlibTransport:
    """``http.client`` from a worker thread, one connection per request, no proxies.

    Each blocking step (connect and send, then each read) runs in the default executor;
    leaving the ``request`` block shuts the socket down, which also ends a read still
    waiting in a thread (on cancellation, say)."""

    errors: tuple[type[BaseException], ...] = (TransportError,)

    def __init__(self) -> None:
        self._tls: ssl.SSLContext | None = None

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        connect_timeout: float,
        read_timeout: float,
    ) -> AsyncIterator[Response]:
        tls = None
        if url.startswith("https:"):
            if self._tls is None:  # loading the CA certificates blocks: not on the loop
                self._tls = await asyncio.to_thread(ssl_context)
            tls = self._tls
        conn, target = _connection(url, params, connect_timeout, tls)
        try:
            raw = await asyncio.to_thread(
                _exchange, conn, method, target, dict(headers), data, read_timeout
            )
            resp = _StdlibResponse(raw)
            yield resp
        finally:
            _shut(conn)

    def classify(self, exc: BaseException) -> Failure:
        if isinstance(exc, TransportError):
            return exc.failure
        return Failure("lost", type(exc).__name__)

    async def aclose(self) -> None:
        return None


def ssl_context() -> ssl.SSLContext:
    import ssl

    return ssl.create_default_context()


def _connection(
    url: str,
    params: Mapping[str, str] | None,
    connect_timeout: float,
    tls: ssl.SSLContext | None,
) -> tuple[http.client.HTTPConnection, str]:
    import http.client

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TransportError(Failure("invalid_url", str(exc))) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(Failure("invalid_url"))
    https = parts.scheme == "https"
    # An explicit port: http.client would read one out of a bare IPv6 address otherwise.
    port = port or (443 if https else 80)
    target = parts.path or "/"
    query = "&".join(q for q in (parts.query, urlencode(params or {})) if q)
    if query:
        target += "?" + query
    conn: http.client.HTTPConnection
    if https:
        conn = http.client.HTTPSConnection(
            parts.hostname, port, timeout=connect_timeout, context=tls or ssl_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=connect_timeout)
    return conn, target


def _exchange(
    conn: http.client.HTTPConnection,
    method: str,
    target: str,
    headers: dict[str, str],
    data: bytes | None,
    read_timeout: float,
) -> http.client.HTTPResponse:
    """Connect (``connect`` failures: nothing was sent), send, and read the status and headers."""
    import http.client

    try:
        conn.connect()
    except TimeoutError:
        raise TransportError(Failure("connect", "timed out")) from None
    except OSError as exc:  # refused, unreachable, DNS, TLS
        raise TransportError(Failure("connect", exc.strerror or type(exc).__name__)) from None
    assert conn.sock is not None
    conn.sock.settimeout(read_timeout)
    try:
        conn.request(method, target, body=data, headers=headers)
        return conn.getresponse()
    except TimeoutError:
        raise TransportError(Failure("timeout")) from None
    except http.client.RemoteDisconnected:  # before a status line: the request was sent
        raise TransportError(Failure("lost", "RemoteDisconnected")) from None
    except http.client.HTTPException as exc:
        raise TransportError(Failure("malformed", type(exc).__name__)) from None
    except OSError as exc:
        raise TransportError(Failure("lost", type(exc).__name__)) from None


def _shut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone
            sock.shutdown(socket.SHUT_RDWR)  # wakes a read still waiting in a worker thread
    conn.close()


class _Headers(Mapping[str, str]):
    """Response headers, looked up without regard to case (the last of repeated ones wins)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = {k.lower(): v for k, v in items}
        self._names = {k.lower(): k for k, _ in items}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._items)


class _StdlibResponse:
    def __init__(self, raw: http.client.HTTPResponse) -> None:
        self._raw = raw
        self.status: int = raw.status
        self.headers: Mapping[str, str] = _Headers(raw.getheaders())
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        self._inflate = _inflater(encoding)
        # http.client sets ``length`` from Content-Length, and leaves it None when chunked.
        self._declared: int | None = raw.length
        self.content_length: int | None = raw.length if encoding == "identity" else None
        mime = self.headers.get("Content-Type", "application/octet-stream")
        self.content_type: str = mime.split(";", 1)[0].strip().lower()
        self.content: Body = self

    async def iter_any(self) -> AsyncIterator[bytes]:
        got = 0
        while True:
            chunk = await asyncio.to_thread(self._read1)
            if not chunk:
                break
            got += len(chunk)
            for piece in self._inflate(chunk):
                yield piece
        if self._declared is not None and got < self._declared:
            raise TransportError(
                Failure("payload", f"{got} of {self._declared} announced bytes arrived")
            )
        for piece in self._inflate(None):
            yield piece

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        async for piece in self.iter_any():
            yield piece, False

    def _read1(self) -> bytes:
        import http.client

        try:
            return self._raw.read1(READ_CHUNK)
        except TimeoutError:
            raise TransportError(Failure("timeout")) from None
        except http.client.IncompleteRead:
            raise TransportError(Failure("payload", "IncompleteRead")) from None
        except http.client.HTTPException as exc:
            raise TransportError(Failure("malformed", type(exc).__name__)) from None
        except (OSError, ValueError) as exc:  # ValueError: read after the socket was shut
            raise TransportError(Failure("lost", type(exc).__name__)) from None

    def close(self) -> None:
        self._raw.close()


def _inflater(encoding: str) -> Callable[[bytes | None], Iterator[bytes]]:
    """A decoder for ``Content-Encoding``: gzip and deflate inflate in bounded pieces (a small
    compressed chunk can hold a very large answer); ``None`` flushes at the end."""
    if encoding == "identity":
        return _identity
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise TransportError(Failure("malformed", f"unsupported Content-Encoding {encoding!r}"))
    inflater = zlib.decompressobj(wbits=32 + zlib.MAX_WBITS)  # gzip or zlib header

    def inflate(chunk: bytes | None) -> Iterator[bytes]:
        try:
            if chunk is None:
                tail = inflater.flush()
                if not inflater.eof:
                    raise TransportError(Failure("payload", "the compressed answer is cut short"))
                if tail:
                    yield tail
                return
            data = chunk
            while data:
                out = inflater.decompress(data, READ_CHUNK)
                data = inflater.unconsumed_tail
                if out:
                    yield out
        except zlib.error as exc:
            raise TransportError(Failure("payload", f"bad {encoding} data: {exc}")) from None

    return inflate


def _identity(chunk: bytes | None) -> Iterator[bytes]:
    if chunk:
        yield chunk
