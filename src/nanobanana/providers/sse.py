"""Server-sent events over a byte stream, without line-length limits short of a cap.

An image arrives as one ``data:`` line of many megabytes, split across reads at arbitrary points;
line readers with a fixed limit (aiohttp's ``readline`` among them) fail on it.  The splitter keeps
one ``bytearray`` and only scans the bytes that arrived since the last scan, so a 20 MB line costs
one pass, not one pass per read.

Lines end with ``\\n`` or ``\\r\\n`` (a lone ``\\r`` terminator is not supported: no server we
talk to sends one).  Comment lines (``: OPENROUTER PROCESSING``) are keep-alives and are skipped;
``event:``, ``id:`` and ``retry:`` fields are ignored because both upstreams put everything in
``data``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable

#: Longest line accepted (64 MiB): a 4K PNG is ~30 MB of base64.
MAX_LINE_BYTES = 64 * 1024 * 1024


class LineTooLongError(ValueError):
    """A line exceeded the cap; the stream is abandoned."""


class SSEDecoder:
    """Feed bytes, get the ``data`` payload of every complete event."""

    def __init__(self, *, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf
        scan = len(buf)
        buf += chunk
        spans: list[tuple[int, int]] = []
        start = 0
        while (nl := buf.find(b"\n", scan)) >= 0:
            end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
            if end - start > self.max_line:
                raise LineTooLongError(f"an event line exceeds {self.max_line} bytes")
            spans.append((start, end))
            start = scan = nl + 1
        out: list[bytes] = []
        if spans:
            # One copy per line, straight from the buffer (slicing a bytearray would copy twice).
            with memoryview(buf) as view:
                lines = [view[s:e].tobytes() for s, e in spans]
            for line in lines:
                self._line(line, out)
            del buf[:start]
        if len(buf) > self.max_line:
            raise LineTooLongError(f"an event line exceeds {self.max_line} bytes")
        return out

    def flush(self) -> list[bytes]:
        """End of stream: dispatch a pending event even without its blank line.  A partial line
        (no terminator: the stream was cut) is dropped; the caller notices what is missing."""
        self._buf.clear()
        out: list[bytes] = []
        self._dispatch(out)
        return out

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if not line:
            self._dispatch(out)
            return
        if line[0] == 0x3A:  # ":" comment / keep-alive
            return
        field, sep, value = line.partition(b":")
        if field != b"data":
            return
        if sep and value[:1] == b" ":
            value = value[1:]
        self._data.append(value)

    def _dispatch(self, out: list[bytes]) -> None:
        if self._data:
            data = self._data
            out.append(data[0] if len(data) == 1 else b"\n".join(data))
            self._data = []


async def iter_sse_data(
    chunks: AsyncIterable[bytes], decoder: SSEDecoder | None = None
) -> AsyncGenerator[bytes, None]:
    """The ``data`` payload of each event from an async byte stream, in order."""
    dec = decoder or SSEDecoder()
    async for chunk in chunks:
        for data in dec.feed(chunk):
            yield data
    for data in dec.flush():
        yield data
