"""A scripted provider for client tests: each call pops the next outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nanobanana.catalog import ModelSpec
from nanobanana.config import ProviderConfig
from nanobanana.providers.base import FinishEvent, ProviderCall, ProviderEvent, ProviderResponse
from nanobanana.types import Image, ImageEvent, TextDelta, Usage, UsageEvent

from ..support import png_bytes


def image(width: int = 1024, height: int = 1024) -> Image:
    return Image(data=png_bytes(width, height), mime_type="image/png", width=width, height=height)


@dataclass
class FakeProvider:
    name: str
    outcomes: list[Any] = field(default_factory=list)
    calls: list[ProviderCall] = field(default_factory=list)
    delay: float = 0.0
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.config = ProviderConfig(name=self.name, api_key="k")

    def _next(self, call: ProviderCall) -> Any:
        self.calls.append(call)
        return self.outcomes.pop(0) if self.outcomes else "ok"

    def _image_for(self, call: ProviderCall) -> Image:
        if self.size:
            return image(*self.size)
        exp = call.model.expected_pixels(call.aspect_ratio, call.image_size) or (64, 64)
        return image(*exp)

    async def generate(self, call: ProviderCall) -> ProviderResponse:
        outcome = self._next(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(outcome, BaseException):
            raise outcome
        return ProviderResponse(
            images=[self._image_for(call)],
            text=f"{self.name} says hi",
            usage=Usage(output_tokens=1290, cost=0.04),
            finish_reason="stop",
            request_id=f"{self.name}-{len(self.calls)}",
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[ProviderEvent]:
        outcome = self._next(call)
        if isinstance(outcome, BaseException) and not getattr(outcome, "after_text", False):
            raise outcome
        yield TextDelta("hello ")
        if isinstance(outcome, BaseException):
            raise outcome
        yield TextDelta("world")
        yield ImageEvent(self._image_for(call))
        yield UsageEvent(Usage(output_tokens=1290, cost=0.04))
        yield FinishEvent(finish_reason="stop", request_id="gen-1")

    async def list_models(self) -> list[ModelSpec]:
        return [
            ModelSpec(
                id="acme/new-image-model",
                name="New",
                description="found live",
                provider_ids={self.name: "acme/new-image-model"},
                gemini_sizes=False,
            )
        ]

    async def aclose(self) -> None:
        pass
