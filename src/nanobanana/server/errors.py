"""What the service refuses on its own, as errors of the one tree.

::

    NanobananaError                    (nanobanana.errors: the library's errors)
    └── ServiceError                   the service will not take the request now or as it is
        │                              (.details, .retry_after in seconds)
        ├── RateLimited                too many generations this minute
        ├── TooManyJobs                too many generations queued or running
        ├── BudgetExceeded             a spending cap (the user's or the service's) is reached
        ├── ShuttingDown               the service is stopping
        ├── RegistrationClosed         sign-up is off and this is not the first account
        ├── UsernameTaken
        ├── InvalidCredentials         a wrong username or password (never which)
        ├── TooManyAttempts            too many failed logins for the account or address
        ├── TooManyApiTokens           the account has as many live API tokens as it may
        ├── InvalidIdempotencyKey      not 1-255 printable ASCII characters
        ├── IdempotencyKeyReused       the same key with another request
        ├── IdempotencyInFlight        the first request with this key still runs
        ├── ImageFileMissing           a stored image's file is not in this process's store
        ├── SessionNotFound            no editing session (or turn) of this user by that id
        ├── TurnNotContinuable         the turn asked to continue did not succeed
        ├── SessionBusy                a turn of the session still runs
        ├── ImagesNotFound             images asked for by id that are not this user's
        ├── ImagesBusy                 images of a generation that still runs
        ├── InvalidPeriod              a usage range that ends before it starts, or too long
        ├── InvalidWebhookUrl          not an http(s) URL of a public address
        └── UploadError                a reference image refused as it arrived
            ├── UploadTooLarge         more bytes than the limit
            ├── ImageTooLarge          more pixels than the limit
            └── InvalidImage           empty, damaged, or not PNG, JPEG or WEBP

These know nothing of HTTP: the service (jobs, generation, uploads) raises them and each face
renders them (``problems.py`` for the service's own API, ``compat/errors.py`` for the
OpenRouter and OpenAI dialects), so a worker runs jobs with no web framework loaded.
"""

from __future__ import annotations

from typing import Any

from ..errors import NanobananaError


class ServiceError(NanobananaError):
    code = "service_error"

    def __init__(self, message: str, *, retry_after: int | None = None, **details: Any) -> None:
        super().__init__(message)
        #: Seconds after which trying again makes sense (``None``: no advice).
        self.retry_after = retry_after
        #: What a client may see besides the message (never a secret).
        self.details = details if retry_after is None else {**details, "retry_after": retry_after}


class RateLimited(ServiceError):
    code = "rate_limited"


class TooManyJobs(ServiceError):
    code = "too_many_jobs"


class BudgetExceeded(ServiceError):
    """Not one image of the request fits under a spending cap (``budgets``): refused before
    any call, at no cost."""

    code = "budget_exceeded"


class ShuttingDown(ServiceError):
    code = "shutting_down"


class RegistrationClosed(ServiceError):
    code = "registration_closed"


class UsernameTaken(ServiceError):
    code = "username_taken"


class InvalidCredentials(ServiceError):
    code = "invalid_credentials"


class TooManyAttempts(ServiceError):
    code = "too_many_attempts"


class TooManyApiTokens(ServiceError):
    code = "too_many_tokens"


class InvalidIdempotencyKey(ServiceError):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(ServiceError):
    code = "idempotency_key_reused"


class IdempotencyInFlight(ServiceError):
    code = "idempotency_in_flight"


class ImageFileMissing(ServiceError):
    code = "image_file_missing"


class SessionNotFound(ServiceError):
    code = "session_not_found"


class TurnNotContinuable(ServiceError):
    code = "turn_not_continuable"


class SessionBusy(ServiceError):
    code = "session_busy"


class ImagesNotFound(ServiceError):
    code = "images_not_found"


class ImagesBusy(ServiceError):
    code = "images_busy"


class InvalidPeriod(ServiceError):
    code = "invalid_period"


class InvalidWebhookUrl(ServiceError):
    code = "invalid_webhook_url"


class UploadError(ServiceError):
    code = "invalid_upload"


class UploadTooLarge(UploadError):
    code = "payload_too_large"


class ImageTooLarge(UploadError):
    code = "image_too_large"


class InvalidImage(UploadError):
    code = "invalid_image"
