"""How a prepared answer travels: normally, or with a transport fault.

Every handler builds a ``Reply`` (status, headers, body pieces) in full, then hands it to
``ReplyResponse``, which sends it as is or applies the request's transport scenario:

- ``truncated``: headers declare the full ``Content-Length``; only the first half of the body is
  sent, then the connection is closed (FIN).
- ``slow-drip:S[:B]``: headers at once, then ``B`` bytes (default 1) every ``S`` seconds until the
  body is complete or the client goes away.
- ``reset``: nothing is sent; the socket is closed with ``SO_LINGER`` 0, so the client gets a TCP
  RST (ECONNRESET).
- ``hangup``: nothing is sent; the connection is closed cleanly (FIN).

Closing a connection on purpose needs the transport, which ASGI does not expose; uvicorn's
``receive`` is a bound method of its request cycle, which holds it.  Under another server the
faults that close a connection fall back to raising, which such a server answers its own way.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .scenarios import Spec

__all__ = [
    "DeliberateDisconnect",
    "Reply",
    "ReplyResponse",
    "finish",
    "splice",
    "wait_or_disconnect",
]

_DISCONNECT_GRACE = 5.0


class DeliberateDisconnect(ConnectionAbortedError):
    """Raised only when the server gives no way to close the connection directly."""


@dataclass
class Reply:
    """A complete answer: the body is ``b"".join(chunks)``; ``stream`` means SSE, no length."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    stream: bool = False

    @property
    def body_length(self) -> int:
        return sum(len(c) for c in self.chunks)


def splice(template: bytes, token: str, replacement: bytes | None) -> list[bytes]:
    """Pieces of ``template`` with the first ``token`` replaced, without copying the payload.

    Payloads are base64 (no character needs JSON escaping), so they are placed between the
    bytes of an envelope that was serialised with the token in their stead.
    """
    if replacement is None:
        return [template]
    before, sep, after = template.partition(token.encode())
    if not sep:
        return [template]
    return [before, replacement, after]


def _transport(receive: Receive) -> Any:
    """uvicorn's transport for this request (asyncio's or uvloop's, which is no subclass)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    needed = ("abort", "close", "get_extra_info")
    return transport if all(hasattr(transport, n) for n in needed) else None


async def wait_or_disconnect(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds`` unless the client disconnects first; True if it did.

    Only call once the request body has been read: then ``receive`` returns nothing but
    ``http.disconnect``.
    """
    if seconds <= 0:
        return False
    waiter = asyncio.ensure_future(receive())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=seconds)
        return bool(done) and waiter.result().get("type") == "http.disconnect"
    finally:
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter


class ReplyResponse(Response):
    """A Starlette response that sends a ``Reply``, optionally through a transport fault."""

    def __init__(self, reply: Reply, transport_fault: Spec | None = None) -> None:
        self.reply = reply
        self.fault = transport_fault
        self.status_code = reply.status
        self.background = None
        self.body = b""
        self.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers
        ]

    def _start(self, *, content_length: int | None) -> dict[str, Any]:
        headers = list(self.raw_headers)
        if content_length is not None:
            headers.append((b"content-length", str(content_length).encode()))
        return {"type": "http.response.start", "status": self.reply.status, "headers": headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self.fault.name if self.fault else None
        if name in ("reset", "hangup"):
            await self._close(receive, abortive=name == "reset")
        elif name == "truncated":
            await self._truncated(receive, send)
        elif name == "slow-drip" and self.fault is not None:
            await self._drip(receive, send, self.fault.number(0, 0.1), int(self.fault.number(1, 1)))
        else:
            await self._normal(send)

    async def _normal(self, send: Send) -> None:
        reply = self.reply
        await send(self._start(content_length=None if reply.stream else reply.body_length))
        chunks: Sequence[bytes] = reply.chunks or [b""]
        last = len(chunks) - 1
        for i, piece in enumerate(chunks):
            await send({"type": "http.response.body", "body": piece, "more_body": i < last})

    async def _close(self, receive: Receive, *, abortive: bool) -> None:
        transport = _transport(receive)
        if transport is None:
            raise DeliberateDisconnect("scenario asked to drop the connection")
        if abortive:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        await self._await_disconnect(receive)

    async def _truncated(self, receive: Receive, send: Send) -> None:
        body = b"".join(self.reply.chunks)
        await send(self._start(content_length=len(body)))
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        transport = _transport(receive)
        if transport is None:
            raise DeliberateDisconnect("scenario asked to truncate the body")
        transport.close()  # flushes what was written, then FIN
        await self._await_disconnect(receive)

    async def _drip(self, receive: Receive, send: Send, every: float, size: int) -> None:
        body = b"".join(self.reply.chunks)
        await send(self._start(content_length=None if self.reply.stream else len(body)))
        for start in range(0, len(body), size):
            if start and await wait_or_disconnect(receive, every):
                return
            more = start + size < len(body)
            await send(
                {
                    "type": "http.response.body",
                    "body": body[start : start + size],
                    "more_body": more,
                }
            )

    @staticmethod
    async def _await_disconnect(receive: Receive) -> None:
        # uvicorn marks the cycle disconnected in connection_lost, a loop callback later;
        # returning before that would make it log "returned without completing response".
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DISCONNECT_GRACE):
                while (await receive()).get("type") != "http.disconnect":
                    pass


def finish(entry: dict[str, Any], reply: Reply, transport_fault: Spec | None = None) -> Response:
    """Note the status in the request's record and wrap the reply for sending."""
    entry["status"] = reply.status
    return ReplyResponse(reply, transport_fault)
