"""Cut base64 data-URL payloads out of a raw JSON body before parsing it.

An OpenRouter answer is a few hundred bytes of JSON around one or more multi-megabyte strings
``"data:image/png;base64,...."``.  Parsing it whole would build a ``str`` of every payload only to
encode it back to bytes for the base64 decoder.  Instead, each payload is located in the raw bytes
(``"data:`` ... ``;base64,`` ... closing quote: base64 has no quote or backslash, so the first
quote ends it), replaced in a small *skeleton* by a marker ``#<n>`` (``#`` is not a base64
character, so a marker can never be mistaken for data), and handed to the decoder as a
``memoryview`` slice of the body: no copy at all until the decoded image bytes.

The skeleton is parsed with orjson.  If it does not parse (a payload ended at an escaped quote, a
malformed body), callers parse the body whole instead: the fast path is an optimisation, never a
different answer.  A payload that contains a JSON escape (``\\/``) fails strict base64 decoding
and is then unescaped and decoded again (see ``decode_data_url``).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import InvalidResponseError
from ..imaging import decode_image
from ..types import Image

_QUOTE_DATA = b'"data:'
_B64_MARK = b";base64,"
#: How far after ``"data:`` the ``;base64,`` may be (the MIME type and parameters).
_MAX_HEAD = 256


def _escaped(buf: bytes | bytearray, i: int) -> bool:
    """True when ``buf[i]`` is preceded by an odd number of backslashes (inside a string)."""
    n = 0
    j = i - 1
    while j >= 0 and buf[j] == 0x5C:
        n += 1
        j -= 1
    return n % 2 == 1


def cut_payloads(body: bytes | bytearray) -> tuple[bytes | bytearray, list[memoryview]]:
    """Return (skeleton, payloads): the body with each data-URL payload replaced by ``#<n>``."""
    find = body.find
    q = find(_QUOTE_DATA)
    if q < 0:
        return body, []
    view = memoryview(body)
    payloads: list[memoryview] = []
    pieces: list[bytes | bytearray] = []
    pos = 0
    while q >= 0:
        mark = find(_B64_MARK, q, q + _MAX_HEAD)
        if mark < 0 or _escaped(body, q):
            q = find(_QUOTE_DATA, q + 1)
            continue
        start = mark + len(_B64_MARK)
        end = find(b'"', start)
        if end < 0:
            break  # unterminated string: the skeleton parse (or the full parse) will say so
        pieces.append(body[pos:start])
        pieces.append(b"#%d" % len(payloads))
        payloads.append(view[start:end])
        pos = end
        q = find(_QUOTE_DATA, end + 1)
    if not payloads:
        return body, []
    pieces.append(body[pos:])
    return b"".join(pieces), payloads


def loads_with_payloads(body: bytes | bytearray) -> tuple[Any, list[memoryview]]:
    """Parse a JSON body whose data-URL payloads are kept out of the parse when possible.

    Raises ``orjson.JSONDecodeError`` when the body is not JSON at all.
    """
    skeleton, payloads = cut_payloads(body)
    if payloads:
        try:
            return orjson.loads(skeleton), payloads
        except orjson.JSONDecodeError:
            pass  # an odd body: parse it whole below, same answer, just slower
    return orjson.loads(body), []


def split_data_url(url: str) -> tuple[str, str] | None:
    """``data:image/png;base64,XXXX`` -> ("image/png", "XXXX"); ``None`` if not base64 data."""
    if not url.startswith("data:"):
        return None
    head, sep, payload = url.partition(",")
    if not sep or ";base64" not in head:
        return None
    return head[5:].split(";", 1)[0].strip().lower(), payload


def decode_data_url(url: str, payloads: list[memoryview], *, provider: str, index: int) -> Image:
    """Decode and verify one image given as a data URL (or a marker into ``payloads``)."""
    parts = split_data_url(url)
    if parts is None:
        what = "a link" if url.startswith(("http://", "https://")) else "something"
        raise InvalidResponseError(
            f"{provider} returned {what} instead of an inline base64 image; "
            "only data URLs are accepted.",
            provider=provider,
        )
    mime, payload = parts
    if payload.startswith("#") and payload[1:].isdigit() and int(payload[1:]) < len(payloads):
        raw = payloads[int(payload[1:])]
        try:
            return decode_image(raw, provider=provider, index=index, declared_mime=mime)
        except InvalidResponseError:
            # Failure path only, so copying is fine: JSON escapes inside the payload (``\\/``)?
            text = raw.tobytes()
            if b"\\" not in text:
                raise
            try:
                unescaped = orjson.loads(b'"' + text + b'"')
            except orjson.JSONDecodeError as exc:
                raise InvalidResponseError(
                    f"{provider} returned a malformed image string.", provider=provider
                ) from exc
            return decode_image(unescaped, provider=provider, index=index, declared_mime=mime)
    return decode_image(payload, provider=provider, index=index, declared_mime=mime)


def restore(text: str, payloads: list[memoryview]) -> str:
    """Put a payload back into a string that was not an image (e.g. text content that was a
    data URL of something else)."""
    parts = split_data_url(text)
    if parts is None or not payloads:
        return text
    payload = parts[1]
    if payload.startswith("#") and payload[1:].isdigit() and int(payload[1:]) < len(payloads):
        head = text.partition(",")[0]
        return head + "," + payloads[int(payload[1:])].tobytes().decode("utf-8", "replace")
    return text
