"""Cutting data-URL payloads out of raw JSON: same answer as a full parse, without the copies."""

from __future__ import annotations

import base64

import orjson
import pytest

from nanobanana.errors import InvalidResponseError
from nanobanana.providers.datauri import (
    cut_payloads,
    decode_data_url,
    loads_with_payloads,
    restore,
)

from ..support import png_bytes
from .helpers import noise_png

PNG = png_bytes(4, 3)
B64 = base64.b64encode(PNG).decode()


def test_payloads_are_cut_and_markers_left_in_a_parseable_skeleton() -> None:
    body = orjson.dumps(
        {"a": "data:image/png;base64," + B64, "b": ["data:image/jpeg;base64,QUJD"], "c": "text"}
    )
    skeleton, payloads = cut_payloads(body)
    assert orjson.loads(skeleton) == {
        "a": "data:image/png;base64,#0",
        "b": ["data:image/jpeg;base64,#1"],
        "c": "text",
    }
    assert [p.tobytes() for p in payloads] == [B64.encode(), b"QUJD"]
    assert len(skeleton) < 120  # the payload itself is not in it


def test_a_data_url_quoted_inside_another_string_is_left_alone() -> None:
    # The text mentions "data:image/png;base64,..." in quotes: escaped quotes, not a JSON string.
    text = 'He wrote "data:image/png;base64,QUJD" on the wall'
    body = orjson.dumps({"content": text})
    skeleton, payloads = cut_payloads(body)
    assert payloads == [] and skeleton == body
    doc, _ = loads_with_payloads(body)
    assert doc["content"] == text


def test_a_body_whose_skeleton_breaks_falls_back_to_the_full_parse() -> None:
    # An escaped quote inside the payload string: the cut ends early, the skeleton is not JSON,
    # the full parse gives the right (here: junk) string and decoding refuses it.
    body = b'{"u":"data:image/png;base64,AAAA\\"BBBB"}'
    doc, payloads = loads_with_payloads(body)
    assert payloads == [] and doc == {"u": 'data:image/png;base64,AAAA"BBBB'}
    with pytest.raises(InvalidResponseError):
        decode_data_url(doc["u"], payloads, provider="openrouter", index=0)


def test_payload_with_json_escaped_slashes_still_decodes() -> None:
    # Some encoders write "/" as "\\/"; base64 of random pixels has many slashes.
    data = noise_png(3000)
    b64 = base64.b64encode(data)
    assert b"/" in b64
    body = b'{"u":"data:image\\/png;base64,' + b64.replace(b"/", b"\\/") + b'"}'
    doc, payloads = loads_with_payloads(body)
    assert len(payloads) == 1  # the fast path was taken
    image = decode_data_url(doc["u"], payloads, provider="openrouter", index=2)
    assert image.data == data and image.index == 2


def test_decoding_checks_bytes_not_the_declared_type() -> None:
    doc, payloads = loads_with_payloads(orjson.dumps({"u": "data:image/jpeg;base64," + B64}))
    image = decode_data_url(doc["u"], payloads, provider="openrouter", index=0)
    assert (image.mime_type, image.width, image.height) == ("image/png", 4, 3)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/img.png",
        "data:image/png,notbase64",
        "data:image/png;base64,!!!!",
        "data:image/png;base64," + base64.b64encode(b"hello world").decode(),
        "data:image/png;base64," + base64.b64encode(PNG[: len(PNG) // 2]).decode(),
        "data:image/png;base64,",
    ],
    ids=["http-link", "not-base64-url", "junk", "not-an-image", "truncated-png", "empty"],
)
def test_bad_image_urls_are_invalid_responses(url: str) -> None:
    doc, payloads = loads_with_payloads(orjson.dumps({"u": url}))
    with pytest.raises(InvalidResponseError):
        decode_data_url(doc["u"], payloads, provider="openrouter", index=0)


def test_bytes_that_are_no_image_say_so_plainly() -> None:
    url = "data:image/png;base64," + base64.b64encode(b"hello world").decode()
    doc, payloads = loads_with_payloads(orjson.dumps({"u": url}))
    with pytest.raises(InvalidResponseError) as ei:
        decode_data_url(doc["u"], payloads, provider="openrouter", index=0)
    assert ei.value.message == (
        "openrouter returned image data that is not a valid image (not a PNG/JPEG/WEBP image)."
    )


def test_restore_puts_a_non_image_payload_back() -> None:
    doc, payloads = loads_with_payloads(orjson.dumps({"t": "data:text/plain;base64,QUJD"}))
    assert doc["t"] == "data:text/plain;base64,#0"
    assert restore(doc["t"], payloads) == "data:text/plain;base64,QUJD"
    assert restore("plain text", payloads) == "plain text"
