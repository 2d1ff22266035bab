"""The state of one emulator app, and the service-neutral part of answering a request."""

from __future__ import annotations

import asyncio
import math
import secrets
import string
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request

from . import scenarios
from .config import EmulatorConfig
from .images import ImageFactory, Payload
from .models import ModelSpec, pixel_size
from .recorder import GenerationStore, RequestLog, sanitize
from .scenarios import Plan

__all__ = [
    "Artifact",
    "EmulatorState",
    "bearer_token",
    "estimate_tokens",
    "random_id",
    "state_of",
]

_ID_CHARS = string.ascii_letters + string.digits
# Gemini bills 258 tokens for a small input image; good enough for an estimate.
_TOKENS_PER_INPUT_IMAGE = 258


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None if it is not one."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def random_id(length: int = 20) -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def estimate_tokens(texts: Iterable[str], images: int = 0) -> int:
    chars = sum(len(t) for t in texts)
    return max(1, math.ceil(chars / 4)) + images * _TOKENS_PER_INPUT_IMAGE


@dataclass(frozen=True)
class Artifact:
    """What a successful generation produced, before it is put in a service's envelope."""

    payload: Payload | None
    text: str
    prompt_tokens: int
    text_tokens: int
    image_tokens: int

    @property
    def completion_tokens(self) -> int:
        return self.text_tokens + self.image_tokens


class EmulatorState:
    """Config, caches and memory of one app; handlers reach it via ``request.app.state``."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.images = ImageFactory()
        self.requests = RequestLog(config.record_limit)
        self.generations = GenerationStore(config.generation_limit)
        self._flaky: dict[str, int] = {}
        self._staggered: dict[str, int] = {}
        self._spent: dict[str, float] = {}
        self._flaky_lock = threading.Lock()
        #: Model ids answered as retired (``EmulatorConfig.retired``; tests change it).
        self.retired: frozenset[str] = config.retired
        # Image payloads are spliced into pre-serialised JSON at this token; the nonce keeps a
        # prompt that happens to contain the token from being mistaken for it.
        self.splice_token = f"@@nb-emulator-image-{secrets.token_hex(8)}@@"

    def serves(self, model_id: str) -> bool:
        return model_id not in self.retired

    def reset(self) -> None:
        self.retired = self.config.retired
        self.requests.clear()
        self.generations.clear()
        with self._flaky_lock:
            self._flaky.clear()
            self._staggered.clear()
            self._spent.clear()

    def flaky_should_fail(self, spec: scenarios.Spec) -> bool:
        """Count this request against ``flaky:N:...``; True while the first N are failing."""
        with self._flaky_lock:
            seen = self._flaky.get(spec.text, 0) + 1
            self._flaky[spec.text] = seen
        return seen <= spec.integer(0, 1)

    def charge(self, key: str | None, cost: float) -> None:
        """What a key has spent, for OpenRouter's ``GET /key``."""
        if key:
            with self._flaky_lock:
                self._spent[key] = self._spent.get(key, 0.0) + cost

    def spent(self, key: str) -> float:
        with self._flaky_lock:
            return self._spent.get(key, 0.0)

    def record(self, request: Request, service: str, body: Any) -> dict[str, Any]:
        """Log a request for ``/_emulator/requests``: what a test may want to assert about it."""
        headers = request.headers
        query = request.query_params
        auth_header: str | None = None
        key: str | None = None
        if "authorization" in headers:
            auth_header = "authorization"
            key = bearer_token(headers["authorization"])
        elif "x-goog-api-key" in headers:
            auth_header = "x-goog-api-key"
            key = headers["x-goog-api-key"]
        elif "key" in query:
            key = query["key"]
        entry: dict[str, Any] = {
            "service": service,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": sorted({name.lower() for name in headers}),
            "auth_header": auth_header,
            "api_key": key,
            "key_in_query": "key" in query,
            "scenario": None,
            "body": sanitize(body) if body is not None else None,
            "status": None,
        }
        return self.requests.add(entry)

    def plan(self, request: Request, prompt_texts: Iterable[str], service: str) -> Plan:
        plan = scenarios.build_plan(
            request.headers.get(scenarios.HEADER),
            prompt_texts,
            self.config.default_scenario,
            self.config.latency,
            service=service,
        )
        if plan.stagger is None:
            return plan
        return replace(plan, latency=plan.latency + self._stagger_delay(plan.stagger))

    def _stagger_delay(self, spec: scenarios.Spec) -> float:
        """``stagger:S``: requests carrying this exact spec wait 0, S, 2S... seconds in the
        order they arrive (e.g. the ``n`` parallel calls of one request land one by one)."""
        with self._flaky_lock:
            seen = self._staggered.get(spec.text, 0)
            self._staggered[spec.text] = seen + 1
        return seen * spec.number(0, 0.0)

    def image_dimensions(self, plan: Plan, ratio: str, size: str) -> tuple[int, int]:
        forced = plan.modifier("size")
        if forced is not None:
            return scenarios.size_of(forced)
        return pixel_size(ratio, size)

    async def artifact(
        self,
        plan: Plan,
        model: ModelSpec,
        *,
        image: bool,
        text: bool,
        ratio: str,
        size: str,
        prompt: str,
        texts: Iterable[str],
        references: int,
    ) -> Artifact:
        """A successful generation: an image (with a short caption if text is wanted) or text."""
        prompt_tokens = estimate_tokens(texts, references)
        if not image:
            answer = (
                "This is a synthetic text answer from the nanobanana emulator (no image was "
                f"requested). You asked: {prompt[:80]}"
            )
            return Artifact(None, answer, prompt_tokens, estimate_tokens([answer]), 0)
        dims = self.image_dimensions(plan, ratio, size)
        payload = await self.make_payload(plan, model, dims, prompt)
        caption = f"Here is a synthetic image for: {prompt[:60]}" if text else ""
        caption_tokens = estimate_tokens([caption]) if caption else 0
        return Artifact(payload, caption, prompt_tokens, caption_tokens, model.tokens_for(size))

    async def make_payload(
        self, plan: Plan, model: ModelSpec, dims: tuple[int, int], prompt: str
    ) -> Payload:
        """The image payload for this request, with the plan's payload modifiers applied."""
        width, height = dims
        caption = f"nanobanana emulator - {model.id} - {width}x{height}"
        factory = self.images
        if plan.modifier("not-an-image"):
            base = factory.not_an_image(width, height)
        elif plan.modifier("jpeg"):
            base = await asyncio.to_thread(factory.jpeg, width, height, caption, prompt)
        elif self.config.fixed_payload:
            cached = factory.cached_fixed(width, height)
            if cached is None:
                cached = await asyncio.to_thread(factory.fixed_payload, width, height)
            base = cached
        else:
            base = await asyncio.to_thread(factory.payload, width, height, caption, prompt)
        if plan.modifier("truncated-image"):
            base = factory.truncated(base)
        oversize = plan.modifier("oversize")
        if oversize is not None:
            base = await asyncio.to_thread(factory.oversize, base, oversize.number(0, 1.0))
        if plan.modifier("bad-base64"):
            base = factory.with_junk(base)
        return base


def state_of(request: Request) -> EmulatorState:
    """The emulator state of the app serving ``request`` (set by ``create_app``)."""
    state: EmulatorState = request.app.state.emulator
    return state
