"""An offline emulator of the OpenRouter and Gemini image APIs, for tests, demos and benchmarks.

It is written from the wire-format reference, not from nanobanana's own provider code, and
imports nothing from it: a mapping bug cannot hide by being mirrored.  The real ``openai`` and
``google-genai`` SDKs pointed at it are its fidelity tests.

Endpoints
---------
OpenRouter, under ``/api/v1``: ``POST /chat/completions`` (plain and ``stream: true``),
``GET /models`` (``output_modalities`` filter, default ``text``; ``all``; comma lists),
``GET /model/{author}/{slug}``, ``GET /generation?id=gen-...``, ``GET /key``.
Gemini, under ``/v1`` and ``/v1beta``: ``POST /models/{model}:generateContent``,
``POST /models/{model}:streamGenerateContent?alt=sse``, ``GET /models`` (``pageSize``,
``pageToken``), ``GET /models/{model}``.
Control: ``GET /_emulator/requests``, ``POST /_emulator/reset``, ``GET /_emulator/health``.

Keys: with ``EmulatorConfig.valid_keys`` only those pass; otherwise any non-empty key passes
except one containing ``invalid``.

Scenarios
---------
Chosen per request by the header ``X-Emulator-Scenario: spec[,spec...]`` or by a marker
``[emulator:spec,...]`` anywhere in the prompt text (both combine), else by
``EmulatorConfig.default_scenario``.  A spec is ``name`` or ``name:arg[:arg...]``; an unknown
name or bad argument is answered with a 400 in the service's shape.

Outcomes (at most one per request):
  ``ok``                    normal answer (the default)
  ``quota[:S]``             429; OpenRouter ``Retry-After: S`` + X-RateLimit-*, Gemini
                            RESOURCE_EXHAUSTED with per-minute QuotaFailure and RetryInfo
                            ``retryDelay`` S (default 1, fractions allowed)
  ``quota-day``             429 for a daily limit; Gemini QuotaFailure ``...PerDay...`` without
                            RetryInfo; OpenRouter "free-models-per-day", no Retry-After
  ``legacy-error[:S]``      OpenRouter 429 "Provider returned error" with ``metadata.raw`` a JSON
                            string, ``retry_after_seconds`` and ``headers.Retry-After`` (no HTTP
                            Retry-After); on Gemini the same as ``quota``
  ``payment``               OpenRouter 402 "Insufficient credits..."; Gemini 403
                            PERMISSION_DENIED, ErrorInfo BILLING_DISABLED
  ``server-error[:CODE]``   500 (default), 502, 503 or 504 in the service's shape; OpenRouter
                            503 carries ``Retry-After: 1``
  ``safety``                200, output blocked: Gemini finishReason IMAGE_SAFETY, no parts,
                            finishMessage; OpenRouter finish_reason ``content_filter``,
                            native_finish_reason IMAGE_SAFETY, no images
  ``blocked-prompt``        Gemini 200 with promptFeedback.blockReason PROHIBITED_CONTENT and no
                            candidates; OpenRouter 403 moderation error (metadata reasons,
                            flagged_input, provider_name, model_slug)
  ``text-only``             a text answer, finish STOP, no image
  ``midstream-error[:CODE]`` stream: a text delta, then an error event (OpenRouter: top-level
                            ``error`` and finish_reason ``error``; Gemini: ``{"error":...}``),
                            then the end; not streaming: as ``error-in-200``; CODE defaults
                            to 502 on OpenRouter and 500 on Gemini
  ``error-in-200[:CODE]``   HTTP 200 whose body is an error (OpenRouter adds ``user_id``);
                            streaming: the first event is the error
  ``flaky:N:STATUS[:TAG]``  the first N requests carrying this exact spec fail with STATUS in
                            the service's shape (429s with Retry-After / RetryInfo 0.05 s),
                            later ones succeed; counters are keyed by the spec text and cleared
                            by reset
Payload modifiers (combinable):
  ``bad-base64``            junk characters (``*!#%&``) spliced into the image base64
  ``not-an-image``          valid base64 of bytes that are not an image
  ``truncated-image``       valid base64 of the first half of the PNG
  ``string-images``         OpenRouter images as bare data-URL strings (ignored by Gemini)
  ``size:WxH``              an image of that size instead of the requested one
  ``jpeg``                  a JPEG instead of a PNG
  ``oversize:MB``           a valid PNG padded (private ancillary chunk) to MB x 10^6 base64 chars
Transport faults (at most one):
  ``truncated``             Content-Length of the full body, half of it sent, then FIN
  ``slow-drip:S[:B]``       headers at once, then B bytes (default 1) every S seconds
  ``reset``                 request read, then TCP RST with nothing sent
  ``hangup``                request read, then FIN with nothing sent
Timing:
  ``latency:S``             wait S seconds before answering (also ``EmulatorConfig.latency``)
  ``stagger:S[:TAG]``       the k-th request carrying this exact spec (k = 0, 1, ...) waits
                            k x S seconds more; counters are keyed by the spec text and
                            cleared by reset

See docs/emulator.md for what each looks like to a client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["EmulatorConfig", "EmulatorServer", "create_app", "serve"]

if TYPE_CHECKING:
    from .app import create_app
    from .config import EmulatorConfig
    from .server import EmulatorServer, serve

_LAZY = {
    "EmulatorConfig": ("config", "EmulatorConfig"),
    "create_app": ("app", "create_app"),
    "EmulatorServer": ("server", "EmulatorServer"),
    "serve": ("server", "serve"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(name)
