"""The one exception tree of nanobanana.

::

    NanobananaError
    ├── UsageError                 the caller can fix it; nothing was sent upstream
    │   ├── ValidationError        bad parameter (.field, .allowed)
    │   ├── UnknownModelError      model id not in the catalog nor found by discovery
    │   ├── MissingKeyError        no API key for the provider (.provider); names the fix
    │   └── ReferenceImageError    a reference image is unreadable, too big, or of a refused format
    ├── UpstreamError              the provider failed (.provider, .status, .code, .retryable,
    │   │                          .retry_after, .request_id, .sent, .may_be_billed)
    │   ├── AuthenticationError    key refused (OpenRouter 401, Gemini 400 API_KEY_INVALID, 403)
    │   ├── PaymentRequiredError   OpenRouter 402: no credits
    │   ├── QuotaError             429 / RESOURCE_EXHAUSTED (.per_day: not worth retrying today)
    │   ├── UpstreamBadRequest     the provider refused the request as malformed (400/404/422)
    │   │   └── ModelNotServedError  it does not serve the model id sent (retired or unknown
    │   │                          to it: OpenRouter "... is not a valid model ID", Gemini 404)
    │   ├── UpstreamUnavailable    5xx, overloaded, no endpoint
    │   ├── ConnectError           could not connect: the request was never sent
    │   ├── AmbiguousError         sent, then no complete answer (timeout, reset, truncated):
    │   │   │                      the provider may have billed it, so it is never resent
    │   │   └── DeadlineExceeded   the overall deadline of the call ran out
    │   ├── InvalidResponseError   an answer that is not what the wire format promises
    │   │                          (malformed base64, a non-image payload, broken JSON)
    │   └── ServerError            a nanobanana server (``nanobanana.remote``) refused or failed
    └── ContentError               the call ran but produced no usable image (.reason, .text,
        ├── BlockedError           .finish_reason): safety or policy block, prompt or output
        └── NoImageError           the model answered with text only

Foreign exceptions (aiohttp, google-genai, Pillow) are translated at the provider boundary with
``raise ... from exc``; nothing above the providers sees them.  No message ever contains a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AmbiguousError",
    "AuthenticationError",
    "BlockedError",
    "ConnectError",
    "ContentError",
    "DeadlineExceeded",
    "InvalidResponseError",
    "MissingKeyError",
    "ModelNotServedError",
    "NanobananaError",
    "NoImageError",
    "PaymentRequiredError",
    "QuotaError",
    "ReferenceImageError",
    "ServerError",
    "UnknownModelError",
    "UpstreamBadRequest",
    "UpstreamError",
    "UpstreamUnavailable",
    "UsageError",
    "ValidationError",
]


class NanobananaError(Exception):
    """Base of every error nanobanana raises on purpose."""

    #: A short machine-readable code, stable across versions (used by the service and CLI).
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        #: Attempts made before the error (filled by the client; list of ``types.Attempt``).
        self.attempts: list[Any] = []

    def __str__(self) -> str:
        return self.message


# ----------------------------------------------------------------------------- usage errors
class UsageError(NanobananaError, ValueError):
    """The request cannot be sent as it is; the message says what to change."""

    code = "invalid_request"


class ValidationError(UsageError):
    code = "invalid_parameter"

    def __init__(
        self, message: str, *, field: str | None = None, allowed: Sequence[str] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.allowed = list(allowed) if allowed is not None else None


class UnknownModelError(ValidationError):
    code = "unknown_model"
    #: The last sentence of the message: where a user of the library or the CLI finds the
    #: models.  A face that lists them elsewhere (the service) puts its own in its place.
    LIST_HINT = "Run `nanobanana models` to list what your providers offer."


class ReferenceImageError(ValidationError):
    code = "invalid_reference_image"


class MissingKeyError(UsageError):
    """A call to a provider that has no key (``nanobanana.providers.missing_key`` says every
    way to give one)."""

    code = "missing_api_key"

    def __init__(self, provider: str, message: str | None = None) -> None:
        super().__init__(message or f"No {provider} API key configured.")
        self.provider = provider


# -------------------------------------------------------------------------- upstream errors
class UpstreamError(NanobananaError):
    """The provider answered with an error, or did not answer."""

    code = "upstream_error"
    #: Retrying the same request may succeed.
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        upstream_code: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        sent: bool = True,
        may_be_billed: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.upstream_code = upstream_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.request_id = request_id
        self.sent = sent
        self.may_be_billed = may_be_billed

    @property
    def not_executed(self) -> bool:
        """True when the provider clearly did not run (so another provider may be tried)."""
        return not self.may_be_billed


class AuthenticationError(UpstreamError):
    code = "upstream_auth"


class PaymentRequiredError(UpstreamError):
    code = "upstream_payment_required"


class QuotaError(UpstreamError):
    code = "quota_exceeded"
    default_retryable = True

    def __init__(self, message: str, *, per_day: bool = False, **kw: Any) -> None:
        if per_day:
            kw["retryable"] = False
        super().__init__(message, **kw)
        self.per_day = per_day


class UpstreamBadRequest(UpstreamError):
    code = "upstream_bad_request"


class ModelNotServedError(UpstreamBadRequest):
    """The provider does not serve the model id it was sent: it retired it (a preview id
    after the GA release) or never had it.  The client then looks in the provider's live
    listing for the id it serves the model under now."""


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    default_retryable = True


class ConnectError(UpstreamError):
    code = "upstream_connect"
    default_retryable = True

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("sent", False)
        super().__init__(message, **kw)


class AmbiguousError(UpstreamError):
    code = "upstream_ambiguous"

    def __init__(self, message: str, **kw: Any) -> None:
        kw["retryable"] = False
        kw.setdefault("may_be_billed", True)
        super().__init__(message, **kw)


class DeadlineExceeded(AmbiguousError):
    code = "deadline_exceeded"


class InvalidResponseError(UpstreamError):
    code = "upstream_invalid_response"

    def __init__(self, message: str, **kw: Any) -> None:
        kw["retryable"] = False
        kw.setdefault("may_be_billed", True)
        super().__init__(message, **kw)


class ServerError(UpstreamError):
    """A nanobanana server (used through ``nanobanana.remote``) refused the call or failed."""

    code = "server_error"


# --------------------------------------------------------------------------- content errors
class ContentError(NanobananaError):
    """The call ran (and may be billed) but gave no usable image."""

    code = "no_image"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        reason: str | None = None,
        text: str | None = None,
        finish_reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.reason = reason
        self.text = text
        self.finish_reason = finish_reason


class BlockedError(ContentError):
    code = "content_blocked"


class NoImageError(ContentError):
    code = "no_image"
