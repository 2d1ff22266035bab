"""The SSE splitter: comments, CRLF, multi-line data, huge lines split at odd boundaries."""

from __future__ import annotations

import random

import pytest

from nanobanana.providers.sse import LineTooLongError, SSEDecoder, iter_sse_data


def feed_all(chunks: list[bytes], **kw: int) -> list[bytes]:
    dec = SSEDecoder(**kw)
    out: list[bytes] = []
    for c in chunks:
        out.extend(dec.feed(c))
    out.extend(dec.flush())
    return out


def test_events_comments_and_other_fields() -> None:
    stream = (
        b": OPENROUTER PROCESSING\n\n"
        b'event: message\nid: 7\nretry: 100\ndata: {"a":1}\n\n'
        b":keepalive\n"
        b'data:{"b":2}\n\n'
        b"data: [DONE]\n\n"
    )
    assert feed_all([stream]) == [b'{"a":1}', b'{"b":2}', b"[DONE]"]


def test_crlf_and_multiline_data_are_joined() -> None:
    out = feed_all([b"data: line one\r\ndata: line two\r\n\r\ndata: x\r\n\r\n"])
    assert out == [b"line one\nline two", b"x"]


def test_every_split_point_of_a_small_stream_gives_the_same_events() -> None:
    stream = b': c\n\ndata: {"k":"v"}\r\n\r\ndata: two\n\ndata: [DONE]\n\n'
    expected = [b'{"k":"v"}', b"two", b"[DONE]"]
    for cut in range(1, len(stream)):
        assert feed_all([stream[:cut], stream[cut:]]) == expected, cut
    # and one byte at a time
    assert feed_all([bytes([b]) for b in stream]) == expected


def test_multi_megabyte_line_split_across_reads_at_odd_boundaries() -> None:
    rng = random.Random(7)
    big = (
        bytes(
            rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
            for _ in range(1 << 16)
        )
        * 48
    )  # 3 MiB, no newline inside
    stream = b": OPENROUTER PROCESSING\n\ndata: " + big + b"\r\n\r\ndata: [DONE]\n\n"
    chunks, pos = [], 0
    while pos < len(stream):
        step = rng.choice((1, 2, 3, 7, 4093, 65537, 1 << 20))
        chunks.append(stream[pos : pos + step])
        pos += step
    assert feed_all(chunks) == [big, b"[DONE]"]


def test_a_line_longer_than_the_cap_is_refused_complete_or_partial() -> None:
    with pytest.raises(LineTooLongError):
        feed_all([b"data: " + b"x" * 200 + b"\n\n"], max_line=100)
    dec = SSEDecoder(max_line=100)
    dec.feed(b"data: " + b"x" * 90)
    with pytest.raises(LineTooLongError):
        dec.feed(b"x" * 20)  # still no newline, but already past the cap


def test_end_of_stream_dispatches_without_blank_line_and_drops_a_partial_line() -> None:
    assert feed_all([b"data: complete\n"]) == [b"complete"]
    assert feed_all([b'data: complete\n\ndata: {"half']) == [b"complete"]


async def test_iter_sse_data_over_an_async_byte_stream() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for c in (b"data: a", b"\n\n: ping\n", b"\ndata: b\n", b"\n"):
            yield c

    assert [d async for d in iter_sse_data(chunks())] == [b"a", b"b"]
