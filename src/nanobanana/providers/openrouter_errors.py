"""OpenRouter error bodies and statuses -> ``nanobanana.errors``.  Pure: no I/O.

Three shapes reach us: an HTTP error status with ``{"error":{"code","message","metadata"}}``;
the same object inside an HTTP 200 (the status line was already sent when the upstream failed);
and a streamed chunk with a top-level ``error``.  ``metadata`` comes in a current form
(``error_type``, ``reasons``, ``flagged_input``, ``retry_after_seconds``, ``headers``) and an older
one (``provider_name`` + ``raw``, where ``raw`` is often a JSON *string* of the upstream's error).
2026 bodies may carry ``availability{code, retry_after}`` and ``http_status`` instead of ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import (
    AuthenticationError,
    BlockedError,
    InvalidResponseError,
    ModelNotServedError,
    NanobananaError,
    PaymentRequiredError,
    QuotaError,
    UpstreamBadRequest,
    UpstreamUnavailable,
)
from .common import header, parse_seconds, says_per_day, scrub

PROVIDER = "openrouter"
LABEL = "OpenRouter"
_MODERATION_TYPES = frozenset({"content_policy_violation", "refusal", "moderation"})


def error_from_status(
    status: int,
    body: bytes | bytearray,
    headers: Mapping[str, str] | None = None,
    *,
    request_id: str | None = None,
    api_key: str | None = None,
) -> NanobananaError:
    """The error for an HTTP answer whose status is not 200."""
    err: Any = None
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error", doc)
        request_id = request_id or _str(doc.get("id"))
    if not isinstance(err, dict):
        # Not OpenRouter's JSON (a proxy's HTML page, an empty body): keep a short excerpt.
        excerpt = body[:200].decode("utf-8", "replace").strip() if body else ""
        err = {"message": excerpt or f"HTTP {status}"}
    return _map(err, status, headers, request_id=request_id, api_key=api_key, in_band=False)


def error_from_payload(
    err: Any,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    api_key: str | None = None,
) -> NanobananaError:
    """The error for an ``error`` object inside a 200 body or a streamed chunk.

    The request reached a model, so a 5xx-like or unknown failure may have been billed; a refusal
    (4xx-like: quota, auth, credits, bad request) ran nothing.
    """
    if not isinstance(err, dict):
        err = {"message": str(err)}
    status = _int(err.get("code"))
    if status is None:
        status = _int(err.get("http_status"))
    return _map(err, status, headers, request_id=request_id, api_key=api_key, in_band=True)


def _map(
    err: dict[str, Any],
    status: int | None,
    headers: Mapping[str, str] | None,
    *,
    request_id: str | None,
    api_key: str | None,
    in_band: bool,
) -> NanobananaError:
    meta = _dict(err.get("metadata"))
    availability = _dict(err.get("availability"))
    message = scrub(_message(err, meta), api_key or "")
    error_type = _str(meta.get("error_type")) or _str(availability.get("code"))
    if error_type is None and isinstance(err.get("code"), str) and not err["code"].isdigit():
        error_type = err["code"]
    where = f"HTTP {status}" if status is not None else "error"
    text = f"{LABEL} error ({where}): {message}" if message else f"{LABEL} error ({where})."
    may_be_billed = in_band and (status is None or status >= 500 or status == 408)
    kw: dict[str, Any] = {
        "provider": PROVIDER,
        "status": status,
        "upstream_code": error_type,
        "request_id": request_id,
        "may_be_billed": may_be_billed,
    }
    retry_after = _retry_after(headers, meta, availability)

    if error_type in _MODERATION_TYPES or (
        status == 403 and ("reasons" in meta or "flagged_input" in meta)
    ):
        reasons = meta.get("reasons")
        reason = (
            ", ".join(map(str, reasons))
            if isinstance(reasons, list) and reasons
            else error_type or "moderation"
        )
        return BlockedError(
            f"{LABEL} blocked the request ({reason}): {message}",
            provider=PROVIDER,
            reason=reason,
        )
    if status is None:
        return UpstreamUnavailable(text, retry_after=retry_after, **kw)
    if status == 401 or status == 403:
        return AuthenticationError(
            f"{text} Check the OpenRouter API key (OPENROUTER_API_KEY or "
            "`nanobanana keys set openrouter`).",
            **kw,
        )
    if status == 402:
        # A 402 with Retry-After is OpenRouter's in-flight budget limit: it clears by itself.
        fix = (
            ""
            if "openrouter.ai/credits" in text
            else " Add credits at https://openrouter.ai/credits."
        )
        return PaymentRequiredError(
            text + fix,
            retryable=retry_after is not None,
            retry_after=retry_after,
            **kw,
        )
    if status == 429:
        per_day = says_per_day(message, error_type, _dumps(meta))
        return QuotaError(text, per_day=per_day, retry_after=retry_after, **kw)
    if status == 408 or status >= 500:
        return UpstreamUnavailable(text, retry_after=retry_after, **kw)
    if status == 400 and "is not a valid model id" in message.lower():
        return ModelNotServedError(text, **kw)
    if 400 <= status < 500:
        return UpstreamBadRequest(text, **kw)
    if 300 <= status < 400:
        return UpstreamBadRequest(
            f"{LABEL} answered with a redirect (HTTP {status}); check the base URL.", **kw
        )
    return InvalidResponseError(f"{LABEL} answered with unexpected HTTP {status}.", **kw)


def _message(err: dict[str, Any], meta: dict[str, Any]) -> str:
    message = _str(err.get("message")) or ""
    raw = meta.get("raw")
    detail = _raw_message(raw) if raw is not None else None
    provider_name = _str(meta.get("provider_name"))
    if detail and detail not in message:
        origin = f" from {provider_name}" if provider_name else ""
        message = f"{message} ({detail}{origin})" if message else detail
    return message.strip()


def _raw_message(raw: Any) -> str | None:
    """``metadata.raw`` is the upstream's own error: a JSON string, an object or plain text."""
    if isinstance(raw, str):
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw.strip()[:500] or None
        raw = parsed
    if isinstance(raw, list) and raw:
        raw = raw[0]
    if isinstance(raw, dict):
        inner = raw.get("error", raw)
        if isinstance(inner, dict):
            return _str(inner.get("message")) or _str(inner.get("detail"))
        return _str(inner)
    return _str(raw)


def _retry_after(
    headers: Mapping[str, str] | None, meta: dict[str, Any], availability: dict[str, Any]
) -> float | None:
    ms = parse_seconds(header(headers, "retry-after-ms"))
    if ms is not None:
        return ms / 1000
    for value in (
        header(headers, "Retry-After"),
        meta.get("retry_after_seconds"),
        header(
            meta.get("headers") if isinstance(meta.get("headers"), dict) else None, "Retry-After"
        ),
        availability.get("retry_after"),
    ):
        seconds = parse_seconds(value)
        if seconds is not None:
            return seconds
    return None


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
