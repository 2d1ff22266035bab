"""How an error is reported: its status, public code, message, details and headers.

One place for the service's API, the records of failed jobs and the compatible dialects.  Plain
data, no web framework: the faces turn a ``Report`` into their answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    ContentError,
    MissingKeyError,
    NanobananaError,
    QuotaError,
    UnknownModelError,
    UpstreamError,
    ValidationError,
)
from .errors import (
    BudgetExceeded,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    ImageFileMissing,
    ImagesBusy,
    ImagesNotFound,
    ImageTooLarge,
    InvalidCredentials,
    InvalidIdempotencyKey,
    InvalidImage,
    InvalidPeriod,
    InvalidWebhookUrl,
    RateLimited,
    RegistrationClosed,
    ServiceError,
    SessionBusy,
    SessionNotFound,
    ShuttingDown,
    TooManyApiTokens,
    TooManyAttempts,
    TooManyJobs,
    TurnNotContinuable,
    UploadTooLarge,
    UsernameTaken,
)

#: Retry-After when a quota error carries no hint.
DEFAULT_QUOTA_RETRY_AFTER = 60

#: Job failures after which the provider may have charged for the call: it ran (a block, an
#: answer without an image, one that could not be read), or it may have (the connection broke
#: after the request was sent, the deadline passed, the process running it died).  A client
#: must not resend those by itself: the answer says so (``x-should-retry: false``), and a blind
#: retry is answered with the failure instead of paying again.
BILLED_FAILURE_CODES = frozenset(
    {
        "content_blocked",
        "no_image",
        "upstream_ambiguous",
        "deadline_exceeded",
        "upstream_invalid_response",
        "interrupted",
    }
)


def may_have_billed(status: str, code: str | None, details: dict[str, Any] | None) -> bool:
    """Whether a finished job's failure may have been billed."""
    if status == "succeeded" or code is None:
        return False
    info = details or {}
    if code == "interrupted":
        return bool(info.get("may_be_billed", True))
    return code in BILLED_FAILURE_CODES or bool(info.get("may_be_billed"))


#: The status of each of the service's own refusals.
SERVICE_STATUS = {
    RateLimited.code: 429,
    TooManyJobs.code: 429,
    BudgetExceeded.code: 402,
    ShuttingDown.code: 503,
    RegistrationClosed.code: 403,
    UsernameTaken.code: 409,
    InvalidCredentials.code: 401,
    TooManyAttempts.code: 429,
    TooManyApiTokens.code: 409,
    InvalidIdempotencyKey.code: 400,
    IdempotencyKeyReused.code: 422,
    IdempotencyInFlight.code: 409,
    ImageFileMissing.code: 500,
    SessionNotFound.code: 404,
    TurnNotContinuable.code: 409,
    SessionBusy.code: 409,
    ImagesNotFound.code: 404,
    ImagesBusy.code: 409,
    InvalidPeriod.code: 422,
    InvalidWebhookUrl.code: 422,
    UploadTooLarge.code: 413,
    ImageTooLarge.code: 413,
    InvalidImage.code: 422,
}


@dataclass
class Report:
    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


#: Where a user of the service finds the models it can use.
LIST_MODELS = (
    "GET /api/nano-banana/models lists the models you can use (the generator's model list "
    "shows the same)."
)


def missing_key_message(provider: str) -> str:
    return (
        f"No {provider} API key is configured for your account. Add one on the settings page "
        f'or with PUT /api/settings/keys/{provider} {{"api_key": "..."}}.'
    )


def status_for_code(code: str) -> tuple[int, str]:
    """(status, public code) for an error code, raised or stored on a job."""
    if code in SERVICE_STATUS:
        return SERVICE_STATUS[code], code
    if code == MissingKeyError.code:
        return 400, code
    if code == QuotaError.code:
        return 429, code
    if code in ("content_blocked", "no_image"):
        return 422, code
    if code in ("invalid_parameter", "unknown_model", "invalid_reference_image", "invalid_request"):
        return 422, code
    if code == "interrupted":
        return 503, "job_interrupted"
    if code == "cancelled":
        return 409, "job_cancelled"
    if code == "internal_error":
        return 500, code
    return 503, "upstream_failed"


def error_details(exc: NanobananaError) -> dict[str, Any]:
    """What is safe and useful to keep about an error (no secret can be in it)."""
    out: dict[str, Any] = {}
    if isinstance(exc, ServiceError):
        out.update(exc.details)
    if isinstance(exc, ValidationError):
        out["field"] = exc.field
        if exc.allowed is not None:
            out["allowed"] = list(exc.allowed)
    if isinstance(exc, MissingKeyError):
        out["provider"] = exc.provider
    if isinstance(exc, UpstreamError):
        out["provider"] = exc.provider
        out["upstream_status"] = exc.status
        out["may_be_billed"] = exc.may_be_billed
        if exc.retry_after is not None:
            out["retry_after"] = exc.retry_after
    if isinstance(exc, QuotaError):
        out["per_day"] = exc.per_day
    if isinstance(exc, ContentError):
        out["provider"] = exc.provider
        out["reason"] = exc.reason
        out["text"] = exc.text
        out["finish_reason"] = exc.finish_reason
    return out


def report(code: str, message: str, details: dict[str, Any] | None, **extra: Any) -> Report:
    """The report of an error code with its message and details (a raised error, or the
    record of a job that ended with one)."""
    status, public = status_for_code(code)
    details = dict(details or {})
    headers: dict[str, str] = {}
    wait = details.get("retry_after")
    if status == 429 or (code in SERVICE_STATUS and wait is not None):
        wait = wait or DEFAULT_QUOTA_RETRY_AFTER
        headers["Retry-After"] = str(max(1, math.ceil(float(wait))))
    if code == MissingKeyError.code and details.get("provider"):
        message = missing_key_message(str(details["provider"]))
    if code == UnknownModelError.code:
        message = message.replace(UnknownModelError.LIST_HINT, LIST_MODELS)
    if public != code:
        details.setdefault("reason", code)
    return Report(status, public, message, {**details, **extra}, headers)


def report_of(exc: NanobananaError, **extra: Any) -> Report:
    return report(exc.code, exc.message, error_details(exc), **extra)
