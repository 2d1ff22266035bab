"""The retry and fallback policy: named constants and pure functions, so tests can check them.

Retried: rate limits and quota per minute (429), 408, 5xx, and connection errors that happened
before the request was sent.  Never retried: a per-day quota, a ``Retry-After`` longer than the
cap (fall back instead), anything ambiguous (the request was sent and no complete answer came:
the upstream may have billed it and neither OpenRouter nor Gemini offers an idempotency key),
invalid responses, content blocks and usage errors.

Fallback to the next provider in the chain happens only on errors that prove the first provider
did not run the request: quota, payment, authentication, overload and connection errors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import (
    AuthenticationError,
    ConnectError,
    NanobananaError,
    PaymentRequiredError,
    QuotaError,
    UpstreamError,
    UpstreamUnavailable,
)

DEFAULT_MAX_ATTEMPTS = 3
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: A ``Retry-After`` / ``RetryInfo`` above this is not waited for: the call fails (or falls back).
MAX_RETRY_AFTER = 60.0
#: Overall deadline for one image, retries included (seconds).
DEFAULT_DEADLINE = 300.0
#: Longest silence allowed between two reads of a response (seconds).
DEFAULT_READ_TIMEOUT = 120.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    max_retry_after: float = MAX_RETRY_AFTER


DEFAULT_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)

_FALLBACK_ON = (
    QuotaError,
    PaymentRequiredError,
    AuthenticationError,
    UpstreamUnavailable,
    ConnectError,
)


def should_retry(error: BaseException, attempt: int, policy: RetryPolicy = DEFAULT_POLICY) -> bool:
    """Whether attempt number ``attempt`` (1-based) that failed with ``error`` may be retried."""
    if attempt >= policy.max_attempts or not isinstance(error, UpstreamError):
        return False
    if not error.retryable or error.may_be_billed:
        return False
    return not (error.retry_after is not None and error.retry_after > policy.max_retry_after)


def retry_delay(
    error: BaseException,
    attempt: int,
    policy: RetryPolicy = DEFAULT_POLICY,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before the next attempt: at least the server's ``Retry-After``, else
    exponential backoff with full jitter, capped at ``policy.max_delay``."""
    rng = rng or random.Random()
    backoff = min(policy.max_delay, policy.initial_delay * (2 ** (attempt - 1)))
    jittered = rng.uniform(0, backoff)
    hint = error.retry_after if isinstance(error, UpstreamError) else None
    if hint is not None:
        return min(max(hint, 0.0), policy.max_retry_after) + rng.uniform(0, min(1.0, backoff))
    return jittered


def should_fall_back(error: BaseException) -> bool:
    """Whether another provider may be tried: only when the failed one clearly did not run."""
    if not isinstance(error, NanobananaError) or not isinstance(error, _FALLBACK_ON):
        return False
    return not getattr(error, "may_be_billed", False)
