"""Small pieces both providers share: block reasons, wait hints, per-day quotas, key scrubbing.

Kept apart from the provider modules so that importing OpenRouter never loads the Gemini SDK.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import BlockedError, ContentError, NoImageError

#: Native finish / block reasons that mean a safety or policy block.  Gemini's names; OpenRouter
#: passes them through as ``native_finish_reason``.
BLOCK_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "JAILBREAK",
        "MODEL_ARMOR",
    }
)

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$", re.IGNORECASE)
_RETRY_IN_RE = re.compile(r"retry in\s+(\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)
_PER_DAY_RE = re.compile(r"per[\s_-]?day|daily", re.IGNORECASE)


def is_block_reason(reason: str | None) -> bool:
    """True for a reason that says the content was refused on safety or policy grounds."""
    if not reason:
        return False
    r = reason.upper()
    return r in BLOCK_REASONS or "SAFETY" in r or "PROHIBITED" in r


def parse_seconds(value: Any) -> float | None:
    """Seconds from ``17``, ``"17"``, ``"45.8s"`` (protobuf duration), ``"1500ms"`` or an
    HTTP-date; ``None`` when absent or unreadable.  Never negative."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    if not isinstance(value, str):
        return None
    m = _DURATION_RE.match(value)
    if m:
        seconds = float(m.group(1))
        return seconds / 1000 if (m.group(2) or "").lower() == "ms" else seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def retry_in_from_message(message: str | None) -> float | None:
    """Gemini's messages end with "Please retry in 58.93s." when no RetryInfo is attached."""
    m = _RETRY_IN_RE.search(message or "")
    if not m:
        return None
    seconds = float(m.group(1))
    return seconds / 1000 if m.group(2).lower() == "ms" else seconds


def says_per_day(*texts: str | None) -> bool:
    """True when a quota message or quota id names a daily limit (not worth retrying today)."""
    return any(t and _PER_DAY_RE.search(t) for t in texts)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup on a plain mapping."""
    if not headers:
        return None
    if name in headers:
        return headers[name]
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


def scrub(text: str, secret: str | None) -> str:
    """Remove a secret from text that came from elsewhere (an upstream message may echo it)."""
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "[redacted]")
    return text


def content_error(
    *,
    provider: str,
    label: str,
    reason: str | None,
    text: str,
    finish_reason: str | None,
    blocked: bool,
) -> ContentError:
    """The error for an answer without an image: a block, or a model that only talked."""
    said = f' The model said: "{_short(text)}"' if text else ""
    if blocked:
        return BlockedError(
            f"{label} blocked the request ({reason}).{said}",
            provider=provider,
            reason=reason,
            text=text or None,
            finish_reason=finish_reason,
        )
    why = f" (finish reason {finish_reason})" if finish_reason else ""
    return NoImageError(
        f"{label} returned no image{why}.{said}",
        provider=provider,
        reason=reason,
        text=text or None,
        finish_reason=finish_reason,
    )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def forget_request(exc: BaseException) -> BaseException:
    """Drop what a foreign exception keeps of our request before it is chained as a cause.

    aiohttp's ``ClientResponseError`` holds the request headers (our ``Authorization``) in
    ``request_info``; google-genai's ``APIError`` holds the response, which holds the request
    (``x-goog-api-key``).  Neither is needed once the error is translated.
    """
    if hasattr(exc, "request_info") and hasattr(exc.request_info, "_replace"):
        from multidict import CIMultiDict, CIMultiDictProxy

        exc.request_info = exc.request_info._replace(headers=CIMultiDictProxy(CIMultiDict()))
    if hasattr(exc, "response") and hasattr(exc, "details"):
        exc.response = None
    return exc
