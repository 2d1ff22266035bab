"""Errors in the shapes OpenRouter and OpenAI clients understand, with real HTTP statuses.

Every failure, wherever it comes from (a bad token, a request the catalog refuses, a job that
failed upstream), is first made a ``Problem`` (status, our stable code, message, the field at
fault, safe details, headers), then rendered:

- OpenRouter: ``{"error": {"code": <status>, "message": ..., "metadata": {"error_type": ...}}}``;
  ``metadata.error_type`` uses OpenRouter's values where one fits (``rate_limit_exceeded``,
  ``provider_unavailable``, ``invalid_image``...) with our code in ``metadata.reason``, else our
  code; ``provider_name``, ``job_id``, ``retry_after_seconds`` and ``param`` when known.
- OpenAI: ``{"error": {"message", "type", "param", "code"}}``.

Statuses follow OpenRouter's table (400 bad parameters or no key configured, 401 bad token,
402 no credits, 408 timeout, 429 quota, 502 the provider failed, 503 unavailable).  When a
failed call may have been billed (an ambiguous failure, a content block, an answer without an
image) the answer carries ``x-should-retry: false``, which the OpenAI SDKs obey, so a client's
automatic retries never pay twice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import MissingKeyError, NanobananaError, UnknownModelError
from ..errors import ServiceError
from ..reports import (
    BILLED_FAILURE_CODES,
    DEFAULT_QUOTA_RETRY_AFTER,
    error_details,
    missing_key_message,
    report_of,
)
from ..schemas import PATTERN_HINTS

Flavour = Literal["openrouter", "openai"]
#: Whose parameter names an error's ``param`` uses: a dialect's, or OpenRouter's Image API's.
ParamNames = Literal["openrouter", "openrouter_images", "openai"]

#: Statuses of library / job error codes on the compatibility routes.
JOB_STATUS: Mapping[str, int] = {
    "missing_api_key": 400,
    "invalid_parameter": 400,
    "unknown_model": 400,
    "invalid_reference_image": 400,
    "invalid_request": 400,
    "upstream_auth": 400,
    "upstream_bad_request": 400,
    "upstream_payment_required": 402,
    "deadline_exceeded": 408,
    "quota_exceeded": 429,
    "internal_error": 500,
    "upstream_connect": 502,
    "upstream_ambiguous": 502,
    "upstream_invalid_response": 502,
    "upstream_error": 502,
    "no_image": 502,
    "content_blocked": 400,
    "upstream_unavailable": 503,
    "interrupted": 503,
}
#: Failures that may have been billed (by their public codes): an automatic retry would pay
#: again.
NO_RETRY_CODES = (BILLED_FAILURE_CODES - {"interrupted"}) | {"job_interrupted"}
#: Our codes -> OpenRouter's ``metadata.error_type`` values.
OPENROUTER_ERROR_TYPES: Mapping[str, str] = {
    "quota_exceeded": "rate_limit_exceeded",
    "too_many_jobs": "rate_limit_exceeded",
    "rate_limited": "rate_limit_exceeded",
    "upstream_unavailable": "provider_unavailable",
    "upstream_connect": "provider_unavailable",
    "content_blocked": "content_policy_violation",
    "invalid_reference_image": "invalid_image",
    "invalid_image": "invalid_image",
    "image_too_large": "image_too_large",
    "deadline_exceeded": "timeout",
    "internal_error": "server",
    "image_file_missing": "server",
}
#: Our codes -> OpenAI's ``error.code`` values.
OPENAI_CODES: Mapping[str, str] = {
    "unauthorized": "invalid_api_key",
    "quota_exceeded": "rate_limit_exceeded",
    "too_many_jobs": "rate_limit_exceeded",
    "rate_limited": "rate_limit_exceeded",
    "content_blocked": "content_policy_violation",
    "upstream_payment_required": "insufficient_quota",
    "budget_exceeded": "insufficient_quota",
    "unknown_model": "model_not_found",
}
#: Our field names (library and GenerateIn) -> each dialect's parameter names.
PARAMS: Mapping[ParamNames, Mapping[str, str]] = {
    "openrouter": {
        "prompt": "messages",
        "images": "messages",
        "aspect_ratio": "image_config.aspect_ratio",
        "image_size": "image_config.image_size",
        "num_images": "n",
        "thinking": "reasoning.effort",
        "google_search": "plugins",
        "image_options": "image_config",
    },
    "openrouter_images": {
        "images": "input_references",
        "image_size": "resolution",
        "num_images": "n",
    },
    "openai": {
        "images": "image",
        "aspect_ratio": "size",
        "image_size": "size",
        "num_images": "n",
    },
}


@dataclass
class Problem:
    """One failure, before it is rendered in a dialect."""

    status: int
    code: str
    message: str
    #: Our name of the field at fault (``aspect_ratio``, ``images``...), if any.
    field_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def no_retry(self) -> bool:
        return (
            self.code in NO_RETRY_CODES
            or bool(self.details.get("may_be_billed"))
            or bool(self.details.get("per_day"))
        )

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.status == 429 and "Retry-After" not in headers:
            wait = self.details.get("retry_after") or DEFAULT_QUOTA_RETRY_AFTER
            headers["Retry-After"] = str(max(1, math.ceil(float(wait))))
        if self.no_retry:
            headers["x-should-retry"] = "false"
        return headers


class ProblemError(Exception):
    """Raised by the request parsers: the request cannot be served as it is."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def bad_request(
    message: str, field_name: str | None, code: str = "invalid_parameter", **details: Any
) -> ProblemError:
    return ProblemError(Problem(400, code, message, field_name=field_name, details=details))


# ------------------------------------------------------------------------------ sources
def from_job(code: str, message: str, details: Mapping[str, Any] | None = None) -> Problem:
    """The problem for a library error code (raised before a job, or stored on a failed job)."""
    info = dict(details or {})
    status = JOB_STATUS.get(code, 502)
    if code == "upstream_unavailable" and info.get("upstream_status") == 502:
        status = 502  # "Provider returned error", as OpenRouter says it
    provider = info.get("provider")
    if code == MissingKeyError.code and provider:
        message = missing_key_message(str(provider))
    elif code == UnknownModelError.code:
        message = message.replace(
            UnknownModelError.LIST_HINT, "GET /api/v1/models (or /v1/models) lists the models."
        )
    elif code == "upstream_auth" and provider:
        message = (
            f"{message} Check the {provider} key stored for your account "
            f"(settings page, or PUT /api/settings/keys/{provider})."
        )
    public = "job_interrupted" if code == "interrupted" else code
    return Problem(status, public, message, field_name=info.pop("field", None), details=info)


def from_library(exc: NanobananaError) -> Problem:
    if isinstance(exc, ServiceError):  # the service's own refusal, not a job's outcome
        r = report_of(exc)
        return from_api(r.status, r.code, r.message, r.details, r.headers)
    return from_job(exc.code, exc.message, error_details(exc))


def from_api(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Problem:
    """The problem for one of the service's own errors (``ApiError``)."""
    info = dict(details or {})
    # The service answers bad input with 422; OpenRouter and OpenAI with 400.  An
    # Idempotency-Key reused with another body stays 422, as the key's draft standard says.
    if status == 422 and code != "idempotency_key_reused":
        status = 400
    return Problem(
        status,
        code,
        message,
        field_name=info.pop("field", None),
        details=info,
        headers=dict(headers or {}),
    )


_NOT_A_FILE = re.compile(r"Expected UploadFile, received: <class '\w+'>")


def _readable(message: str) -> str:
    """Pydantic's message, without a Python type name (``<class 'str'>``) or its prefix."""
    message = _NOT_A_FILE.sub(
        "this field must be a file (a multipart file part), not text", message
    )
    return message.removeprefix("Value error, ")


def from_validation(errors: Iterable[Mapping[str, Any]]) -> Problem:
    """The problem for request validation errors (pydantic's list), without echoing input."""
    items = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": _readable(str(e.get("msg", "")))}
        for e in errors
    ]
    first = items[0] if items else {"loc": [], "msg": "invalid request"}
    head = next(iter(errors), {})
    if head.get("type") == "json_invalid":
        return Problem(
            400,
            "invalid_request",
            "The request body is not valid JSON: send a JSON object with "
            "'Content-Type: application/json'.",
            details={"errors": items},
        )
    raw = list(head.get("loc", ()))
    if raw and raw[0] in ("body", "query", "path", "header"):
        raw = raw[1:]
    # The parameter is the path up to the first list index (``image_config.aspect_ratio``,
    # ``messages``), without pydantic's union branch tags.
    names: list[str] = []
    for part in raw:
        if not isinstance(part, str) or not part.isidentifier():
            break
        names.append(part)
    where = ".".join(str(p) for p in raw if isinstance(p, int) or str(p).isidentifier())
    message = f"Invalid {where or 'request'}: {first['msg']}"
    pattern = (head.get("ctx") or {}).get("pattern")
    if head.get("type") == "string_pattern_mismatch" and pattern in PATTERN_HINTS:
        message = f"Invalid {where}: it {PATTERN_HINTS[pattern]}."  # words, not the regex
    return Problem(
        400,
        "invalid_request",
        message,
        field_name=".".join(names) or None,
        details={"errors": items},
    )


def param_for(field_name: str | None, names: ParamNames) -> str | None:
    if field_name is None:
        return None
    return PARAMS[names].get(field_name, field_name)


# ---------------------------------------------------------------------------- renderings
_METADATA_KEYS = {
    "provider": "provider_name",
    "job_id": "job_id",
    "retry_after": "retry_after_seconds",
    "upstream_status": "provider_code",
    "allowed": "allowed",
    "per_day": "per_day",
    "may_be_billed": "may_be_billed",
    "finish_reason": "native_finish_reason",
    "limit_bytes": "limit_bytes",
    "max_pixels": "max_pixels",
    "replayed": "replayed",
}


def openrouter_metadata(p: Problem, names: ParamNames = "openrouter") -> dict[str, Any]:
    error_type = OPENROUTER_ERROR_TYPES.get(p.code)
    meta: dict[str, Any] = {"error_type": error_type or p.code}
    if error_type is not None:
        meta["reason"] = p.code
    param = param_for(p.field_name, names)
    if param:
        meta["param"] = param
    for key, name in _METADATA_KEYS.items():
        value = p.details.get(key)
        if value is not None:
            meta[name] = list(value) if isinstance(value, tuple) else value
    return meta


def openrouter_error(p: Problem, names: ParamNames = "openrouter") -> dict[str, Any]:
    """``{"error": {"code", "message", "metadata"}}`` (the HTTP status equals ``code``)."""
    meta = openrouter_metadata(p, names)
    return {"error": {"code": p.status, "message": p.message, "metadata": meta}}


def openai_type(status: int) -> str:
    if status >= 500 or status == 408:
        return "server_error"
    if status == 429:
        return "rate_limit_error"
    if status == 402:
        return "insufficient_quota"
    return "invalid_request_error"


def openai_error(p: Problem) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {
        "error": {
            "message": p.message,
            "type": openai_type(p.status),
            "param": param_for(p.field_name, "openai"),
            "code": OPENAI_CODES.get(p.code, p.code),
        }
    }
