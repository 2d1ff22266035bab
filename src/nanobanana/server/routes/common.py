"""Shared route helpers: documented error responses."""

from __future__ import annotations

from typing import Any

from ..schemas import ErrorResponse

_DESCRIPTIONS = {
    400: "Bad request (e.g. `missing_api_key`: add a key in the settings).",
    401: "Missing, invalid, expired or revoked token (`unauthorized`).",
    403: "Not allowed (`forbidden`, `account_disabled`).",
    404: "No such object, or not yours (`not_found`).",
    409: "Conflict (`idempotency_in_flight`, `username_taken`, `job_running`).",
    413: "Too large (`payload_too_large`, `image_too_large`).",
    422: "Invalid input (`validation_error`, `invalid_parameter` with `field` and `allowed`).",
    429: "Rate or quota limit (`quota_exceeded`, `too_many_attempts`); see `Retry-After`.",
    503: "The upstream provider failed (`upstream_failed`) or the service is stopping.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses, plus any other 4XX, all in the error shape."""
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes
    }
    out["4XX"] = {"model": ErrorResponse, "description": "Any other client error."}
    return out
