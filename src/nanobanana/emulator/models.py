"""The emulator's own model tables, written from the wire-format reference (§1.7, §2.3, §2.6).

Deliberately independent of ``nanobanana.catalog``: if both shared one table, a mapping bug would
be mirrored on both sides of every test and go unseen.

Prices are the emulator's choice (close to the published ones, not authoritative) and exist so
that ``usage.cost`` is a realistic, checkable number: e.g. one 2.5-flash image is 1290 image
tokens at $30 per million = $0.0387.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "BASE_RATIOS",
    "EXTENDED_RATIOS",
    "GEMINI_MODELS",
    "OPENROUTER_MODELS",
    "SIZE_SCALE",
    "ModelSpec",
    "pixel_size",
]

# 1K pixel sizes per aspect ratio (reference §1.7).  2K doubles each side, 4K quadruples,
# 0.5K halves.
_PIXELS_1K: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "1:1": (1024, 1024),
        "2:3": (832, 1248),
        "3:2": (1248, 832),
        "3:4": (864, 1184),
        "4:3": (1184, 864),
        "4:5": (896, 1152),
        "5:4": (1152, 896),
        "9:16": (768, 1344),
        "16:9": (1344, 768),
        "21:9": (1536, 672),
        "1:4": (512, 2048),
        "4:1": (2048, 512),
        "1:8": (384, 3072),
        "8:1": (3072, 384),
    }
)
BASE_RATIOS: tuple[str, ...] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
EXTENDED_RATIOS: tuple[str, ...] = (*BASE_RATIOS, "1:4", "4:1", "1:8", "8:1")
SIZE_SCALE: Mapping[str, float] = MappingProxyType({"0.5K": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0})
DEFAULT_RATIO = "1:1"
DEFAULT_SIZE = "1K"


def pixel_size(ratio: str, size: str) -> tuple[int, int]:
    """Pixel width and height of an image of ``ratio`` at ``size`` (both must be known)."""
    width, height = _PIXELS_1K[ratio]
    scale = SIZE_SCALE[size]
    return int(width * scale), int(height * scale)


@dataclass(frozen=True)
class ModelSpec:
    """One model as a service lists and serves it."""

    id: str  # OpenRouter "author/slug" or Gemini "gemini-..." (without "models/")
    name: str
    outputs: tuple[str, ...]  # "text", "image"
    inputs: tuple[str, ...] = ("text", "image")
    ratios: tuple[str, ...] = BASE_RATIOS
    sizes: tuple[str, ...] = ("1K",)
    provider: str = "Google AI Studio"  # OpenRouter provider_name
    description: str = ""
    context_length: int = 32_768
    output_limit: int = 32_768
    created: int = 1_756_000_000
    # USD per token.
    prompt_price: float = 0.0
    completion_price: float = 0.0
    image_price: float = 0.0
    # Image output tokens per image size.
    image_tokens: Mapping[str, int] = field(default_factory=dict)
    # Gemini thinking levels (lower case) the model accepts; None: any.  On OpenRouter, the
    # efforts its listing names in ``reasoning.supported_efforts`` (None: no ``reasoning``).
    thinking_levels: tuple[str, ...] | None = None
    # Whether Gemini's ``google_search`` tool may be used with the model.
    google_search: bool = True
    # Whether the model signs its answer's parts (``thoughtSignature``; Gemini 3 image models)
    # and refuses its earlier image parts sent back without their signature (signatures.py).
    signs_thoughts: bool = False

    @property
    def makes_images(self) -> bool:
        return "image" in self.outputs

    @property
    def makes_text(self) -> bool:
        return "text" in self.outputs

    def tokens_for(self, size: str) -> int:
        return self.image_tokens.get(size, 1290)


_FLASH_25: Mapping[str, Any] = MappingProxyType(
    {
        "ratios": BASE_RATIOS,
        "sizes": ("1K",),
        "outputs": ("image", "text"),
        "prompt_price": 0.30e-6,
        "completion_price": 2.50e-6,
        "image_price": 30e-6,
        "image_tokens": MappingProxyType({"1K": 1290}),
        "context_length": 32_768,
    }
)
_PRO_3: Mapping[str, Any] = MappingProxyType(
    {
        "signs_thoughts": True,
        "ratios": BASE_RATIOS,
        "sizes": ("1K", "2K", "4K"),
        "outputs": ("image", "text"),
        "prompt_price": 2.0e-6,
        "completion_price": 12.0e-6,
        "image_price": 120e-6,
        "image_tokens": MappingProxyType({"1K": 1120, "2K": 1120, "4K": 2000}),
        "context_length": 65_536,
    }
)
_FLASH_31: Mapping[str, Any] = MappingProxyType(
    {
        "signs_thoughts": True,
        "ratios": EXTENDED_RATIOS,
        "sizes": ("0.5K", "1K", "2K", "4K"),
        "outputs": ("image", "text"),
        "prompt_price": 0.50e-6,
        "completion_price": 3.0e-6,
        "image_price": 60e-6,
        "image_tokens": MappingProxyType({"0.5K": 747, "1K": 1120, "2K": 1680, "4K": 2520}),
        "context_length": 65_536,
    }
)
# Nano Banana 2 Lite (Google's model page, gemini-3.1-flash-lite-image): 1K only, the ten
# standard ratios, 65,536 input and 4,096 output tokens.  Prices are the emulator's.
_FLASH_LITE_31: Mapping[str, Any] = MappingProxyType(
    {
        "signs_thoughts": True,
        "ratios": BASE_RATIOS,
        "sizes": ("1K",),
        "outputs": ("image", "text"),
        "prompt_price": 0.25e-6,
        "completion_price": 1.5e-6,
        "image_price": 30e-6,
        "image_tokens": MappingProxyType({"1K": 1120}),
        "context_length": 65_536,
        "output_limit": 4_096,
        # The model page: "Thinking: Supported (minimal and high)", "Grounding with Google
        # Search: Not supported".
        "thinking_levels": ("minimal", "high"),
        "google_search": False,
    }
)
_TEXT_ONLY: Mapping[str, Any] = MappingProxyType(
    {"outputs": ("text",), "ratios": (), "sizes": (), "context_length": 1_048_576}
)


def _image_only(model_id: str, name: str, provider: str, usd_per_1k_image: float) -> ModelSpec:
    """An image-only OpenRouter model: same pixel table, priced per image via image tokens."""
    tokens = MappingProxyType({"1K": 1024, "2K": 2048, "4K": 4096})
    return ModelSpec(
        id=model_id,
        name=name,
        outputs=("image",),
        ratios=BASE_RATIOS,
        sizes=("1K", "2K", "4K"),
        provider=provider,
        description=f"{name}: image generation (emulated).",
        context_length=8_192,
        prompt_price=0.0,
        image_price=usd_per_1k_image / 1024,
        image_tokens=tokens,
    )


def _gemini(model_id: str, name: str, base: Mapping[str, Any]) -> ModelSpec:
    return ModelSpec(id=model_id, name=name, description=f"{name} (emulated).", **base)


GEMINI_MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        m.id: m
        for m in (
            _gemini("gemini-2.5-flash-image", "Nano Banana (Gemini 2.5 Flash Image)", _FLASH_25),
            _gemini(
                "gemini-2.5-flash-image-preview",
                "Nano Banana (Gemini 2.5 Flash Image Preview)",
                _FLASH_25,
            ),
            _gemini("gemini-3-pro-image", "Nano Banana Pro (Gemini 3 Pro Image)", _PRO_3),
            _gemini(
                "gemini-3-pro-image-preview", "Nano Banana Pro (Gemini 3 Pro Image Preview)", _PRO_3
            ),
            _gemini("gemini-3.1-flash-image", "Nano Banana 2 (Gemini 3.1 Flash Image)", _FLASH_31),
            _gemini(
                "gemini-3.1-flash-image-preview",
                "Nano Banana 2 (Gemini 3.1 Flash Image Preview)",
                _FLASH_31,
            ),
            _gemini(
                "gemini-3.1-flash-lite-image",
                "Nano Banana 2 Lite (Gemini 3.1 Flash Lite Image)",
                _FLASH_LITE_31,
            ),
            _gemini("gemini-2.5-flash", "Gemini 2.5 Flash", _TEXT_ONLY),
        )
    }
)

OPENROUTER_MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        m.id: m
        for m in (
            _gemini("google/gemini-2.5-flash-image", "Google: Nano Banana", _FLASH_25),
            _gemini(
                "google/gemini-2.5-flash-image-preview", "Google: Nano Banana (preview)", _FLASH_25
            ),
            _gemini("google/gemini-3-pro-image", "Google: Nano Banana Pro", _PRO_3),
            _gemini(
                "google/gemini-3-pro-image-preview", "Google: Nano Banana Pro (preview)", _PRO_3
            ),
            _gemini("google/gemini-3.1-flash-image", "Google: Nano Banana 2", _FLASH_31),
            _gemini(
                "google/gemini-3.1-flash-image-preview",
                "Google: Nano Banana 2 (preview)",
                _FLASH_31,
            ),
            _image_only(
                "black-forest-labs/flux.2-pro",
                "Black Forest Labs: FLUX.2 Pro",
                "Black Forest Labs",
                0.03,
            ),
            _image_only(
                "black-forest-labs/flux.2-flex",
                "Black Forest Labs: FLUX.2 Flex",
                "Black Forest Labs",
                0.06,
            ),
            _image_only(
                "black-forest-labs/flux.2-max",
                "Black Forest Labs: FLUX.2 Max",
                "Black Forest Labs",
                0.07,
            ),
            _image_only(
                "bytedance-seed/seedream-4.5", "ByteDance Seed: Seedream 4.5", "Seed", 0.04
            ),
            _image_only(
                "sourceful/riverflow-v2-pro", "Sourceful: Riverflow V2 Pro", "Sourceful", 0.15
            ),
            _image_only(
                "sourceful/riverflow-v2-fast", "Sourceful: Riverflow V2 Fast", "Sourceful", 0.02
            ),
            _image_only("recraft/recraft-v3", "Recraft: Recraft V3", "Recraft", 0.04),
            _image_only("recraft/recraft-v4", "Recraft: Recraft V4", "Recraft", 0.04),
            _image_only("recraft/recraft-v4-pro", "Recraft: Recraft V4 Pro", "Recraft", 0.25),
            _image_only("microsoft/mai-image-2.5", "Microsoft: MAI-Image-2.5", "Microsoft", 0.04),
            _image_only(
                "black-forest-labs/flux.2-klein-4b",
                "Black Forest Labs: FLUX.2 Klein 4B",
                "Black Forest Labs",
                0.014,
            ),
            # A language model that also draws: text and image out, like Gemini.
            ModelSpec(
                id="openai/gpt-5-image-mini",
                name="OpenAI: GPT-5 Image Mini",
                outputs=("image", "text"),
                inputs=("text", "image", "file"),
                ratios=BASE_RATIOS,
                sizes=("1K",),
                provider="OpenAI",
                description="GPT-5 Mini with GPT Image 1 Mini for images (emulated).",
                context_length=400_000,
                output_limit=128_000,
                prompt_price=2.5e-6,
                completion_price=2.0e-6,
                image_price=8e-6,
                image_tokens=MappingProxyType({"1K": 1056}),
                thinking_levels=("high", "medium", "low", "minimal"),
            ),
            ModelSpec(
                id="openai/gpt-4o-mini",
                name="OpenAI: GPT-4o-mini",
                outputs=("text",),
                ratios=(),
                sizes=(),
                provider="OpenAI",
                description="A small text model (emulated).",
                context_length=128_000,
                prompt_price=0.15e-6,
                completion_price=0.60e-6,
            ),
            ModelSpec(
                id="meta-llama/llama-3.1-8b-instruct",
                name="Meta: Llama 3.1 8B Instruct",
                outputs=("text",),
                inputs=("text",),
                ratios=(),
                sizes=(),
                provider="DeepInfra",
                description="A text-only model (emulated).",
                context_length=131_072,
                prompt_price=0.02e-6,
                completion_price=0.05e-6,
            ),
        )
    }
)
