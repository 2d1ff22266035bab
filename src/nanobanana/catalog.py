"""The model catalog: capabilities are data, checked before any paid call and after it.

A ``ModelSpec`` says which providers serve a model and under which id, which aspect ratios and
sizes it accepts, whether it answers with text too, whether it takes reference images, what it
costs and when it goes away.  Requests are validated against it before they are sent, and every
image that comes back is compared with the pixel size the catalog expects.

Pixel sizes: the 1K table is OpenRouter's documented Gemini table.  Google documents no exact 2K
and 4K sizes; we expect 2x and 4x the 1K size (and 0.5K = half) and report a mismatch as a
warning, never an error, so a provider that rounds differently is visible but not fatal.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from .errors import UnknownModelError, ValidationError

__all__ = [
    "ASPECT_RATIOS_1K",
    "OPENROUTER_VARIANTS",
    "THINKING_LEVELS",
    "VARIANT_PROVIDER",
    "ModelChoice",
    "ModelSpec",
    "Pricing",
    "expected_pixels",
    "normalize_size",
]

#: 1K pixel sizes per aspect ratio (OpenRouter image-generation guide, Gemini models).
ASPECT_RATIOS_1K: dict[str, tuple[int, int]] = {
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
    # Extended ratios, gemini-3.1-flash-image only; sizes undocumented, ~1 MP like the others.
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (384, 3072),
    "8:1": (3072, 384),
}
SIZE_SCALE: dict[str, float] = {"0.5K": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}
STANDARD_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTENDED_RATIOS = ("1:4", "4:1", "1:8", "8:1")
#: Every ratio a model in the catalog may make: what an image's shape is filed under.
IMAGE_RATIOS = STANDARD_RATIOS + EXTENDED_RATIOS
#: Thinking levels, least first: Gemini's ``thinkingLevel`` values, which OpenRouter's
#: ``reasoning.effort`` maps to one for one (docs/providers.md).
THINKING_LEVELS = ("minimal", "low", "medium", "high")

#: The provider whose model ids take variants.
VARIANT_PROVIDER = "openrouter"
#: OpenRouter's model variants, the suffix after a colon (``google/gemini-2.5-flash-image:free``).
#: Catalog variants (free, extended, thinking, batch) exist only for models that list them in
#: ``/models``; routing variants (nitro, floor, exacto, online) are accepted on any model.
OPENROUTER_VARIANTS = frozenset(
    {"free", "extended", "thinking", "batch", "nitro", "floor", "exacto", "online"}
)
#: Prefixes some tools put before a model id to name the provider (LiteLLM: ``openrouter/...``).
_PROVIDER_PREFIXES = ("openrouter/",)

#: Model-specific image options (OpenRouter's ``image_config`` keys beyond ratio and size):
#: at most this many, each key a snake_case name, the whole at most this many bytes of JSON.
MAX_IMAGE_OPTIONS = 16
MAX_IMAGE_OPTIONS_BYTES = 16 * 1024
#: Options with a parameter of their own: given as options they would fight it.
_TYPED_IMAGE_OPTIONS = frozenset({"aspect_ratio", "image_size"})
_OPTION_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

_SIZE_RE = re.compile(r"^\s*(0\.5|[124])\s*k\s*$", re.IGNORECASE)
_RATIO_RE = re.compile(r"^\s*(\d{1,2})\s*[:x/]\s*(\d{1,2})\s*$")


def validate_image_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Model-specific image options checked for shape (which keys a model takes is its own
    affair: OpenRouter documents them per model and passes them on).  Values are what
    OpenRouter's ``ImageConfig`` schema allows: a string, a number or an array."""
    if not options:
        return {}
    if not isinstance(options, Mapping):
        raise ValidationError(
            "image_options must be a JSON object of option names and values, such as "
            f'{{"style": "Photorealism"}}, not {type(options).__name__}.',
            field="image_options",
        )
    if len(options) > MAX_IMAGE_OPTIONS:
        raise ValidationError(
            f"At most {MAX_IMAGE_OPTIONS} image options; got {len(options)}.",
            field="image_options",
        )
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in _TYPED_IMAGE_OPTIONS:
            raise ValidationError(
                f"{key} has a parameter of its own: set {key}, not an image option.",
                field="image_options",
            )
        if not isinstance(key, str) or not _OPTION_KEY_RE.match(key):
            raise ValidationError(
                f"Image option name {key!r} is not a snake_case name (letters, digits and _, "
                "starting with a letter), as the model documents them.",
                field="image_options",
            )
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, bool) or not isinstance(value, str | int | float | list):
            raise ValidationError(
                f"Image option {key} is {type(value).__name__}; a value is a string, a number "
                "or an array (a list), as OpenRouter's image_config takes them.",
                field="image_options",
            )
        out[key] = value
    try:
        size = len(json.dumps(out, allow_nan=False).encode())
    except (TypeError, ValueError):
        raise ValidationError(
            "Image options hold a value JSON cannot carry (NaN, infinity or an object that is "
            "not a string, number, list or dict).",
            field="image_options",
        ) from None
    if size > MAX_IMAGE_OPTIONS_BYTES:
        raise ValidationError(
            f"Image options take {size} bytes of JSON; the limit is {MAX_IMAGE_OPTIONS_BYTES}.",
            field="image_options",
        )
    return out


def image_options_from(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """Image options given as JSON text (a batch cell, a ComfyUI input; empty: none) or as an
    object, checked (``validate_image_options``)."""
    if not isinstance(value, str):
        return validate_image_options(value)
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValidationError(
            'image_options must be a JSON object, such as {"style": "Photorealism"}; '
            f"got {value!r}.",
            field="image_options",
        ) from None
    return validate_image_options(parsed)


def normalize_size(size: str) -> str:
    """``"1k"`` -> ``"1K"``, ``" 2K "`` -> ``"2K"``; anything else is returned unchanged."""
    m = _SIZE_RE.match(size)
    return f"{m.group(1)}K" if m else size.strip()


def normalize_ratio(ratio: str) -> str:
    """``"16x9"`` or ``" 16 : 9 "`` -> ``"16:9"``."""
    m = _RATIO_RE.match(ratio)
    return f"{int(m.group(1))}:{int(m.group(2))}" if m else ratio.strip()


def nearest_ratio(ratios: Iterable[str], width: int, height: int) -> str | None:
    """The ratio among ``ratios`` closest to a ``width`` x ``height`` shape (by how much it
    would stretch the image: the distance of the logarithms), or None for no shape."""
    if width <= 0 or height <= 0:
        return None
    shape = math.log(width / height)

    def distance(ratio: str) -> float:
        w, _, h = ratio.partition(":")
        return abs(math.log(float(w) / float(h)) - shape)

    return min(ratios, key=distance, default=None)


def size_class(width: int, height: int) -> str | None:
    """The output size (``"1K"``, ``"2K"``...) whose pixel count is closest to ``width`` x
    ``height``'s (by ratio), whatever the model: how the gallery files an image it shows."""
    if width <= 0 or height <= 0:
        return None
    side = math.log(math.sqrt(width * height) / 1024)
    return min(SIZE_SCALE, key=lambda size: abs(math.log(SIZE_SCALE[size]) - side))


def expected_pixels(aspect_ratio: str | None, image_size: str | None) -> tuple[int, int] | None:
    """The (width, height) a Gemini image model is expected to return, if known."""
    base = ASPECT_RATIOS_1K.get(aspect_ratio or "1:1")
    scale = SIZE_SCALE.get(image_size or "1K")
    if base is None or scale is None:
        return None
    return round(base[0] * scale), round(base[1] * scale)


@dataclass(frozen=True)
class Pricing:
    """USD prices, per million tokens, plus the image-token counts per output size."""

    input_per_mtok: float | None = None
    output_image_per_mtok: float | None = None
    output_text_per_mtok: float | None = None
    #: Output tokens one image costs, by size.
    image_tokens: Mapping[str, int] = field(default_factory=dict)
    #: Tokens one input (reference) image costs.
    input_image_tokens: int | None = None

    def image_cost(self, size: str | None) -> float | None:
        tokens = self.image_tokens.get(size or "1K")
        if tokens is None or self.output_image_per_mtok is None:
            return None
        return tokens * self.output_image_per_mtok / 1_000_000

    def request_cost(
        self, size: str | None, *, n: int = 1, prompt: str = "", input_images: int = 0
    ) -> float | None:
        """What a request for ``n`` images should cost, if the image price is known: each
        image is its own call, which sends the prompt and the ``input_images`` (references,
        earlier turns) again.  Without an input price only the images count; the model's
        text answer and thinking are not foreseen (the real cost records them)."""
        per_image = self.image_cost(size)
        if per_image is None:
            return None
        if self.input_per_mtok is not None:
            tokens = text_tokens(prompt) + input_images * (self.input_image_tokens or 0)
            per_image += tokens * self.input_per_mtok / 1_000_000
        return per_image * n


def text_tokens(text: str) -> int:
    """About how many tokens ``text`` is (a token is about four characters of English: the
    providers' own rule of thumb); at least one."""
    return max(1, -(-len(text) // 4))


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    description: str
    #: Provider -> the model id on that provider's wire (the built-in choice, until a live
    #: listing says otherwise: see ``wire_candidates``).
    provider_ids: Mapping[str, str]
    aspect_ratios: tuple[str, ...] = STANDARD_RATIOS
    sizes: tuple[str, ...] = ("1K",)
    #: Output modalities: Gemini models answer with text and image, most others image only.
    outputs_text: bool = True
    accepts_images: bool = True
    max_input_images: int = 3
    #: True when the image sizes follow the Gemini pixel table (so results can be checked).
    gemini_sizes: bool = True
    supports_seed: bool = False
    #: The thinking levels the model takes: ``None`` when not known (a level asked for is
    #: passed on for the provider to judge), ``()`` when it takes none.
    thinking_levels: tuple[str, ...] | None = None
    #: Whether the model can ground its images in Google Search (``None``: not known, asked
    #: for it is passed on for the provider to judge).
    google_search: bool | None = None
    pricing: Pricing = field(default_factory=Pricing)
    aliases: tuple[str, ...] = ()
    #: Earliest announced shutdown date, if any.
    shutdown: date | None = None
    replaced_by: str | None = None
    recommended: bool = False
    #: Found only by live discovery, not part of the built-in catalog.
    discovered: bool = False
    #: Provider -> every id the provider serves or served this model under, the one to prefer
    #: first (GA before preview).  When the provider's live listing is known, the first of
    #: these it lists becomes the wire id (``Catalog.merge_discovered``): the GA id once it is
    #: listed, the preview id while only it is.
    wire_candidates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.provider_ids)

    @property
    def modalities(self) -> list[str]:
        """OpenRouter ``modalities`` for this model: image-only models reject ``"text"``."""
        return ["image", "text"] if self.outputs_text else ["image"]

    @property
    def can_search_google(self) -> bool | None:
        """Whether it can ground its images in Google Search: never for a model that is not
        Google's; else as known (``None``: not known)."""
        google = "google" in self.provider_ids or any(
            wire.startswith("google/") for wire in self.provider_ids.values()
        )
        return self.google_search if google else False

    def wire_id(self, provider: str) -> str:
        try:
            return self.provider_ids[provider]
        except KeyError:
            raise ValidationError(
                f"Model {self.id!r} is not served by {provider}; it is available on: "
                f"{', '.join(self.providers)}.",
                field="model",
                allowed=list(self.providers),
            ) from None

    def shutdown_note(self, today: date | None = None) -> str | None:
        """A warning for a model with an announced shutdown date, worded for before or after it
        (``today`` defaults to the UTC date)."""
        if self.shutdown is None:
            return None
        today = today or datetime.now(UTC).date()
        when = self.shutdown.isoformat()
        if today >= self.shutdown:
            return (
                f"{self.id} is past its announced shutdown date ({when}) and may be refused "
                "at any time" + (f"; use {self.replaced_by}." if self.replaced_by else ".")
            )
        return f"{self.id} has an announced shutdown date of {when}" + (
            f"; consider {self.replaced_by}." if self.replaced_by else "."
        )

    def expected_pixels(
        self, aspect_ratio: str | None, image_size: str | None
    ) -> tuple[int, int] | None:
        if not self.gemini_sizes:
            return None
        return expected_pixels(aspect_ratio, image_size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "provider_ids": dict(self.provider_ids),
            "aliases": list(self.aliases),
            "aspect_ratios": list(self.aspect_ratios),
            "sizes": list(self.sizes),
            "outputs_text": self.outputs_text,
            "accepts_images": self.accepts_images,
            "max_input_images": self.max_input_images,
            "supports_seed": self.supports_seed,
            "thinking_levels": (
                None if self.thinking_levels is None else list(self.thinking_levels)
            ),
            "google_search": self.can_search_google,
            "price_per_image": {s: self.pricing.image_cost(s) for s in self.sizes},
            "shutdown": self.shutdown.isoformat() if self.shutdown else None,
            "replaced_by": self.replaced_by,
            "recommended": self.recommended,
            "discovered": self.discovered,
        }


_FLASH_25 = Pricing(
    input_per_mtok=0.30,
    output_image_per_mtok=30.0,
    output_text_per_mtok=2.50,
    image_tokens={"1K": 1290},
    input_image_tokens=258,
)
_PRO_3 = Pricing(
    input_per_mtok=2.0,
    output_image_per_mtok=120.0,
    output_text_per_mtok=12.0,
    image_tokens={"1K": 1120, "2K": 1120, "4K": 2000},
    input_image_tokens=560,
)
_FLASH_31 = Pricing(
    input_per_mtok=0.50,
    output_image_per_mtok=60.0,
    output_text_per_mtok=3.0,
    image_tokens={"0.5K": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    input_image_tokens=560,
)


@dataclass(frozen=True)
class ModelChoice:
    """A model as a caller named it: the catalog entry, an OpenRouter variant, and a note when
    the name was an old or foreign spelling (what to write instead)."""

    spec: ModelSpec
    variant: str | None = None
    note: str | None = None

    @property
    def name(self) -> str:
        """The canonical id, with the variant: ``gemini-2.5-flash-image:free``."""
        return f"{self.spec.id}:{self.variant}" if self.variant else self.spec.id

    def wire_id(self, provider: str) -> str:
        wire = self.spec.wire_id(provider)
        if self.variant is None:
            return wire
        if provider != VARIANT_PROVIDER:
            raise ValidationError(
                f"':{self.variant}' is an OpenRouter model variant; {provider} has none. "
                f"Use provider {VARIANT_PROVIDER}, or name the model without ':{self.variant}'.",
                field="provider",
                allowed=[VARIANT_PROVIDER],
            )
        return f"{wire}:{self.variant}"


def _flux(slug: str, name: str, desc: str) -> ModelSpec:
    return ModelSpec(
        id=slug,
        name=name,
        description=desc,
        provider_ids={"openrouter": slug},
        sizes=("1K", "2K", "4K"),
        outputs_text=False,
        gemini_sizes=False,
        supports_seed=True,
        max_input_images=8,
    )


BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="gemini-2.5-flash-image",
        name="Nano Banana (Gemini 2.5 Flash Image)",
        description="Google's fast image model: generation and editing at 1K.",
        provider_ids={
            "google": "gemini-2.5-flash-image",
            "openrouter": "google/gemini-2.5-flash-image",
        },
        wire_candidates={
            "openrouter": ("google/gemini-2.5-flash-image", "google/gemini-2.5-flash-image-preview")
        },
        sizes=("1K",),
        pricing=_FLASH_25,
        aliases=("nano-banana", "gemini-2.5-flash-image-preview"),
        shutdown=date(2026, 10, 2),
        replaced_by="gemini-3.1-flash-image",
    ),
    ModelSpec(
        id="gemini-3-pro-image",
        name="Nano Banana Pro (Gemini 3 Pro Image)",
        description="Google's highest-quality image model: 1K, 2K and 4K, up to 14 references.",
        provider_ids={
            "google": "gemini-3-pro-image",
            "openrouter": "google/gemini-3-pro-image-preview",
        },
        wire_candidates={
            "google": ("gemini-3-pro-image", "gemini-3-pro-image-preview"),
            "openrouter": ("google/gemini-3-pro-image", "google/gemini-3-pro-image-preview"),
        },
        sizes=("1K", "2K", "4K"),
        pricing=_PRO_3,
        max_input_images=14,
        aliases=("nano-banana-pro", "gemini-3-pro-image-preview"),
    ),
    ModelSpec(
        id="gemini-3.1-flash-image",
        name="Nano Banana 2 (Gemini 3.1 Flash Image)",
        description="Fast and cheap, 0.5K to 4K, extended aspect ratios (1:4 to 8:1).",
        provider_ids={
            "google": "gemini-3.1-flash-image",
            "openrouter": "google/gemini-3.1-flash-image-preview",
        },
        wire_candidates={
            "google": ("gemini-3.1-flash-image", "gemini-3.1-flash-image-preview"),
            "openrouter": (
                "google/gemini-3.1-flash-image",
                "google/gemini-3.1-flash-image-preview",
            ),
        },
        aspect_ratios=STANDARD_RATIOS + EXTENDED_RATIOS,
        sizes=("0.5K", "1K", "2K", "4K"),
        pricing=_FLASH_31,
        max_input_images=14,
        aliases=("nano-banana-2", "gemini-3.1-flash-image-preview"),
        recommended=True,
    ),
    # Google's model page (docs/providers.md): 1K only ("2K and 4K are not supported"), the ten
    # ratios it lists, 65,536 input and 4,096 output tokens; no price and no reference count
    # published there: the cost stays unknown, and up to the family's 14 references are passed
    # on for Google to judge.  On OpenRouter only once its listing has the id.
    ModelSpec(
        id="gemini-3.1-flash-lite-image",
        name="Nano Banana 2 Lite (Gemini 3.1 Flash Lite Image)",
        description="Google's fastest, cheapest image model: 1K only, the ten standard ratios.",
        provider_ids={"google": "gemini-3.1-flash-lite-image"},
        wire_candidates={
            "google": ("gemini-3.1-flash-lite-image",),
            "openrouter": ("google/gemini-3.1-flash-lite-image",),
        },
        aspect_ratios=STANDARD_RATIOS,
        sizes=("1K",),
        max_input_images=14,
        thinking_levels=("minimal", "high"),
        google_search=False,
        aliases=("nano-banana-2-lite",),
    ),
    _flux("black-forest-labs/flux.2-pro", "FLUX.2 [pro]", "Black Forest Labs, top quality."),
    _flux("black-forest-labs/flux.2-flex", "FLUX.2 [flex]", "Black Forest Labs, tunable."),
    _flux("black-forest-labs/flux.2-max", "FLUX.2 [max]", "Black Forest Labs, largest."),
    _flux("bytedance-seed/seedream-4.5", "Seedream 4.5", "ByteDance Seed image model."),
    _flux("sourceful/riverflow-v2-pro", "Riverflow V2 Pro", "Sourceful, design-focused."),
    _flux("sourceful/riverflow-v2-fast", "Riverflow V2 Fast", "Sourceful, faster tier."),
    _flux("recraft/recraft-v4", "Recraft V4", "Recraft, vector-style and design."),
    _flux("recraft/recraft-v4-pro", "Recraft V4 Pro", "Recraft, higher quality."),
    _flux("recraft/recraft-v3", "Recraft V3", "Recraft, previous generation."),
    _flux("microsoft/mai-image-2.5", "MAI-Image-2.5", "Microsoft's image model."),
)

#: The model used when none is chosen: Nano Banana 2, which Google names as the replacement of
#: gemini-2.5-flash-image (earliest shutdown 2026-10-02, now past).
DEFAULT_MODEL = "gemini-3.1-flash-image"


class Catalog:
    """Look up models by id, alias or provider id; validate requests against them."""

    def __init__(self, models: Iterable[ModelSpec] = BUILTIN_MODELS) -> None:
        self._models: dict[str, ModelSpec] = {}
        self._index: dict[str, str] = {}
        for m in models:
            self.add(m)

    def add(self, spec: ModelSpec) -> None:
        self._models[spec.id] = spec
        wire = [*spec.provider_ids.values(), *(i for c in spec.wire_candidates.values() for i in c)]
        for name in (spec.id, *spec.aliases, *wire):
            self._index.setdefault(name.lower(), spec.id)
        # OpenRouter ids carry an author prefix: "google/gemini-..." also resolves without it.
        for wid in wire:
            self._index.setdefault(wid.split("/", 1)[-1].lower(), spec.id)

    def __iter__(self) -> Any:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def find(self, model: str) -> ModelSpec | None:
        try:
            return self.resolve(model).spec
        except UnknownModelError:
            return None

    def _lookup(self, name: str) -> ModelSpec | None:
        for prefix in _PROVIDER_PREFIXES:
            if name.startswith(prefix) and name not in self._index:
                name = name[len(prefix) :]
        key = self._index.get(name)
        if key is None and name.startswith("google/"):
            # OpenRouter spells Google's ids and aliases with an author prefix.
            key = self._index.get(name.split("/", 1)[1])
        return self._models.get(key) if key else None

    def get(self, model: str) -> ModelSpec:
        return self.resolve(model).spec

    def closest(self, name: str, n: int = 2) -> list[str]:
        """The ids and aliases nearest to a misspelt ``name`` (at most ``n``), for a
        "did you mean"."""
        import difflib

        spelled = {s.id: s.id for s in self._models.values()}
        for spec in self._models.values():
            for alias in spec.aliases:
                if "preview" not in alias:  # retired spellings are not suggested
                    spelled.setdefault(alias, alias)
        lowered = {k.lower(): v for k, v in spelled.items()}
        found = difflib.get_close_matches(name.strip().lower(), list(lowered), n=n, cutoff=0.75)
        return [lowered[f] for f in found]

    def resolve(self, model: str) -> ModelChoice:
        """The catalog entry for ``model`` (an id, alias, provider id, with or without an
        OpenRouter variant suffix), or ``UnknownModelError``."""
        name = model.strip()
        spec, variant = self._lookup(name.lower()), None
        base, _, suffix = name.rpartition(":")
        base_spec = self._lookup(base.lower()) if spec is None and base else None
        if base_spec is not None and suffix.lower() in OPENROUTER_VARIANTS:
            spec, variant = base_spec, suffix.lower()
        if spec is None:
            hint = ""
            if base_spec is not None:
                hint = (
                    f" ':{suffix}' is not an OpenRouter variant; the variants are: "
                    f"{', '.join(sorted(OPENROUTER_VARIANTS))}."
                )
            close = self.closest(base if base_spec is not None else name)
            known = (
                f" Did you mean {' or '.join(repr(c) for c in close)}?"
                if close and not hint
                else f" Known models: {', '.join(self._models)}."
            )
            raise UnknownModelError(
                f"Unknown model {model!r}.{hint}{known} {UnknownModelError.LIST_HINT}",
                field="model",
                allowed=list(self._models),
            )
        return ModelChoice(spec=spec, variant=variant, note=self._note(name, spec, variant))

    @staticmethod
    def _note(name: str, spec: ModelSpec, variant: str | None) -> str | None:
        """What to write instead of an old or foreign spelling (None for a current id)."""
        spelled = name[: -len(variant) - 1] if variant else name
        bare, prefixed = spelled.lower(), False
        for prefix in _PROVIDER_PREFIXES:
            if bare.startswith(prefix):
                bare, prefixed = bare[len(prefix) :], True
        current = {spec.id.lower(), *(w.lower() for w in spec.provider_ids.values())}
        if bare not in current and "preview" in bare:
            what = "a retired preview id"
        elif prefixed:
            what = "not a model id (the provider is chosen on its own)"
        else:
            return None
        instead = f"{spec.id}:{variant}" if variant else spec.id
        return f"{spelled!r} is {what}; using {spec.id!r}: write {instead!r} instead."

    def default_for(self, provider: str) -> ModelSpec:
        spec = self._models[DEFAULT_MODEL]
        if provider in spec.provider_ids:
            return spec
        return next(m for m in self._models.values() if provider in m.provider_ids)

    def merge_discovered(self, provider: str, found: Iterable[ModelSpec]) -> None:
        """Bring ``provider``'s listing in: each known model is sent by the first of its
        ``wire_candidates`` the listing has (unchanged when it has none of them), and models
        the catalog does not know are added as discovered."""
        listed = {d.provider_ids.get(provider, d.id).lower(): d for d in found}
        self._follow_listing(provider, set(listed))
        for wire, d in listed.items():
            if self._lookup(wire) is None:
                self.add(replace(d, discovered=True))

    def _follow_listing(self, provider: str, listed: set[str]) -> None:
        for spec in list(self._models.values()):
            candidates = spec.wire_candidates.get(provider, ())
            current = next((c for c in candidates if c.lower() in listed), None)
            if current is not None and current != spec.provider_ids.get(provider):
                ids = {**spec.provider_ids, provider: current}
                self._models[spec.id] = replace(spec, provider_ids=ids)

    def validate(
        self,
        spec: ModelSpec,
        *,
        aspect_ratio: str | None,
        image_size: str | None,
        n_images: int,
    ) -> tuple[str | None, str | None]:
        """Check ratio, size and reference count; returns the normalised (ratio, size)."""
        ratio = normalize_ratio(aspect_ratio) if aspect_ratio else None
        size = normalize_size(image_size) if image_size else None
        if ratio is not None and ratio not in spec.aspect_ratios:
            raise ValidationError(
                f"Aspect ratio {aspect_ratio!r} is not supported by {spec.id}. "
                f"Allowed: {', '.join(spec.aspect_ratios)}.",
                field="aspect_ratio",
                allowed=spec.aspect_ratios,
            )
        if size is not None and size not in spec.sizes:
            raise ValidationError(
                f"Image size {image_size!r} is not supported by {spec.id}. "
                f"Allowed: {', '.join(spec.sizes)}.",
                field="image_size",
                allowed=spec.sizes,
            )
        if n_images and not spec.accepts_images:
            raise ValidationError(
                f"{spec.id} does not accept reference images.", field="images", allowed=[]
            )
        if n_images > spec.max_input_images:
            raise ValidationError(
                f"{spec.id} accepts at most {spec.max_input_images} reference images; "
                f"got {n_images}.",
                field="images",
            )
        return ratio, size

    def validate_thinking(self, spec: ModelSpec, thinking: str | None) -> str | None:
        """A thinking level checked against the known levels and the model's; lower case."""
        if thinking is None:
            return None
        level = thinking.strip().lower() if isinstance(thinking, str) else thinking
        if level not in THINKING_LEVELS:
            raise ValidationError(
                f"Thinking level {thinking!r} is not one of {', '.join(THINKING_LEVELS)}.",
                field="thinking",
                allowed=THINKING_LEVELS,
            )
        allowed = spec.thinking_levels
        if allowed is not None and level not in allowed:
            raise ValidationError(
                f"{spec.id} takes no thinking level; leave it out."
                if not allowed
                else f"Thinking level {level!r} is not supported by {spec.id}. "
                f"Allowed: {', '.join(allowed)}.",
                field="thinking",
                allowed=allowed,
            )
        return str(level)

    def validate_google_search(self, spec: ModelSpec, google_search: bool) -> bool:
        """Grounding in Google Search: only Google's models search Google, and one known not
        to take it (Nano Banana 2 Lite) refuses it."""
        if not isinstance(google_search, bool):
            raise ValidationError(
                f"google_search is true or false, not {google_search!r}.", field="google_search"
            )
        if google_search and spec.can_search_google is False:
            raise ValidationError(
                f"{spec.id} cannot ground its images in Google Search; leave google_search "
                "off, or choose a model that can (gemini-3.1-flash-image, gemini-3-pro-image).",
                field="google_search",
            )
        return google_search
