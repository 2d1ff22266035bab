"""Configuration of one emulator instance (passed in explicitly; nothing is read from the env)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EmulatorConfig"]


@dataclass(frozen=True)
class EmulatorConfig:
    """How an emulator behaves.

    ``fixed_payload``: serve one pre-rendered, pre-encoded image per pixel size (no per-request
    rendering; for benchmarks).  ``default_scenario``: scenario spec applied to requests that
    select none (same grammar as the ``X-Emulator-Scenario`` header).  ``valid_keys``: when set,
    only these API keys pass; otherwise any non-empty key passes except one containing
    ``invalid``.  ``latency``: seconds to wait before every answer unless a ``latency:S``
    scenario says otherwise.  ``record_limit``: how many recent requests are kept for
    ``/_emulator/requests``; ``generation_limit``: how many generation stats are kept for
    OpenRouter's ``/generation``.  ``retired``: model ids neither listed nor served, as a
    provider answers for an id it has retired (OpenRouter: 400 ``... is not a valid model ID``;
    Gemini: 404 ``NOT_FOUND``), e.g. the ``-preview`` ids once only the GA ids are listed.
    """

    fixed_payload: bool = False
    default_scenario: str | None = None
    valid_keys: frozenset[str] | None = None
    latency: float = 0.0
    key_limit: float | None = None
    record_limit: int = 1000
    generation_limit: int = 10_000
    retired: frozenset[str] = frozenset()

    def key_is_valid(self, key: str | None) -> bool:
        if not key:
            return False
        if self.valid_keys is not None:
            return key in self.valid_keys
        return "invalid" not in key
