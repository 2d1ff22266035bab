"""Shared helpers: wait hints, per-day detection, block reasons, secrets kept out of causes."""

from __future__ import annotations

import time
from email.utils import formatdate

import aiohttp
import pytest
from google.genai import errors as genai_errors
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from nanobanana.providers.common import (
    forget_request,
    is_block_reason,
    parse_seconds,
    retry_in_from_message,
    says_per_day,
    scrub,
)

from .helpers import GEMINI_KEY, OPENROUTER_KEY


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (17, 17.0),
        ("17", 17.0),
        ("45.837906927s", 45.837906927),
        ("1500ms", 1.5),
        (-3, 0.0),
        ("soon", None),
        (None, None),
        (True, None),
        ({"a": 1}, None),
    ],
)
def test_parse_seconds(value: object, seconds: float | None) -> None:
    assert parse_seconds(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_seconds_reads_an_http_date() -> None:
    assert parse_seconds(formatdate(time.time() + 30, usegmt=True)) == pytest.approx(30, abs=2)


def test_retry_in_from_message() -> None:
    assert retry_in_from_message("Quota exceeded. Please retry in 58.93s.") == 58.93
    assert retry_in_from_message("Please retry in 250ms") == 0.25
    assert retry_in_from_message("try later") is None


def test_says_per_day() -> None:
    assert says_per_day("GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    assert says_per_day("Rate limit exceeded: free-models-per-day")
    assert says_per_day("daily limit reached")
    assert not says_per_day("GenerateRequestsPerMinutePerProjectPerModel", None, "")


def test_block_reasons() -> None:
    for r in (
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "image_safety",
    ):
        assert is_block_reason(r), r
    for r in ("STOP", "NO_IMAGE", "IMAGE_OTHER", "MAX_TOKENS", None, ""):
        assert not is_block_reason(r), r


def test_scrub() -> None:
    assert scrub(f"bad key {OPENROUTER_KEY}!", OPENROUTER_KEY) == "bad key [redacted]!"
    assert scrub("nothing here", None) == "nothing here"


def test_forget_request_drops_our_headers_from_an_aiohttp_error() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {OPENROUTER_KEY}"}))
    info = aiohttp.RequestInfo(URL("http://x/api"), "POST", headers, URL("http://x/api"))
    exc = aiohttp.ClientResponseError(info, (), status=400, message="bad")
    assert OPENROUTER_KEY in repr(exc.request_info)
    forget_request(exc)
    assert OPENROUTER_KEY not in repr(exc.request_info) and str(exc)  # still printable


def test_forget_request_drops_the_response_of_a_genai_error() -> None:
    holder = type("Response", (), {"headers": (("x-goog-api-key", GEMINI_KEY),)})()
    exc = genai_errors.ClientError(400, {"error": {"code": 400, "message": "no"}}, holder)
    forget_request(exc)
    assert exc.response is None and exc.code == 400
