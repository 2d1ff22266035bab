"""OpenAI's Images API: ``/v1/images/generations`` and ``/v1/images/edits``, as generations.

Mapping:
- ``model``: a catalog id, alias or OpenRouter id; OpenAI's own image model names
  (``dall-e-*``, ``gpt-image-*``, ``chatgpt-image-*``) and no model mean your default model, so
  tools that hard-code one work unchanged.
- ``size``: ``WxH``, mapped to the model's pixel table (e.g. ``1024x1024`` is 1:1 at 1K,
  ``1344x768`` is 16:9 at 1K, ``2048x2048`` is 1:1 at 2K).  A size the model does not make
  gets the nearest one it does (the nearest ratio, then the nearest pixel count), and the
  answer says so in a ``Nanobanana-Warning`` header: tools hard-code sizes of other models
  (Open WebUI's 512x512, gpt-image's 1536x1024), and their users see no error text.  A size
  that is not ``WxH`` is a 400.  ``auto`` (or none): for an edit, the input's shape; else your
  default aspect ratio, else the model's.
- ``quality`` picks the resolution when ``size`` does not: ``low`` the smallest, ``medium`` /
  ``standard`` 1K, ``high`` / ``hd`` 2K, ``xhigh`` / ``max`` 4K (or the nearest the model has);
  ``auto`` your default.
- ``response_format``: ``b64_json`` (the default here, as for OpenAI's GPT image models) or
  ``url``: absolute ``/api/images/{id}`` URLs, fetched with the same bearer token.
- ``n``: 1 to 10 images; what succeeds is returned even if some fail.
- Extensions: ``provider`` (``openrouter`` | ``google``) and ``seed``.
Images come back in the format the model made (PNG, sometimes JPEG); ``output_format`` and
``background`` are ignored.  Masks are refused (describe the edit in the prompt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ...catalog import ModelSpec, expected_pixels
from ...client import MAX_IMAGES_PER_REQUEST, MAX_PROMPT_CHARS, MAX_SEED
from ..schemas import PIXEL_SIZE_PATTERN
from .errors import bad_request
from .openrouter_request import VISIBLE
from .outcome import JobOutcome
from .splice import SplicedBody, Splicer

#: The most images one request may ask for (the service's per-request limit).
MAX_IMAGES = MAX_IMAGES_PER_REQUEST  # the library's limit, as everywhere
_OPENAI_MODEL_PREFIXES = ("dall-e", "gpt-image", "chatgpt-image")
_PREFERRED_SIZE = {
    "medium": "1K",
    "standard": "1K",
    "high": "2K",
    "hd": "2K",
    "xhigh": "4K",
    "max": "4K",
}
_SIZE_ORDER = ("0.5K", "1K", "2K", "4K")


Quality = Literal["auto", "low", "medium", "standard", "high", "hd", "xhigh", "max"]
ResponseFormat = Literal["b64_json", "url"]
QUALITIES: tuple[str, ...] = get_args(Quality)
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=VISIBLE)]
SIZE_PATTERN = PIXEL_SIZE_PATTERN
Size = Annotated[str, Field(pattern=SIZE_PATTERN)]
Count = Annotated[int, Field(ge=1, le=MAX_IMAGES)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def _no_stream(value: bool) -> bool:
    # A JSON boolean only (the model is strict: 0 is not false), and only false.
    if value:
        raise ValueError("streaming is not offered by the Images API; stream chat completions")
    return value


class ImagesRequest(BaseModel):
    """OpenAI's image generation request, as far as this service reads it."""

    model_config = ConfigDict(extra="allow", strict=True)

    prompt: Prompt
    model: str | None = Field(
        default=None,
        description="A catalog id or alias; OpenAI model names mean your default model.",
    )
    n: Count | None = Field(default=None, description=f"1 to {MAX_IMAGES}.")
    size: Size | None = Field(default=None, description="`WxH` among the model's sizes, or `auto`.")
    quality: Quality | None = Field(default=None, description="Picks the resolution.")
    response_format: ResponseFormat | None = None
    provider: Literal["openrouter", "google"] | None = Field(
        default=None, description="Extension: which provider to use first."
    )
    seed: Seed | None = Field(default=None, description="Extension, best effort.")
    stream: Annotated[bool, AfterValidator(_no_stream)] | None = Field(
        default=None, description="Not offered here: stream with chat completions."
    )


#: The response header that says a requested size was replaced by the nearest one made.
SIZE_WARNING_HEADER = "Nanobanana-Warning"


@dataclass(frozen=True)
class ImagesCall:
    """An Images API request mapped onto the catalog."""

    prompt: str
    n: int
    aspect_ratio: str | None
    image_size: str | None
    response_format: str
    seed: int | None
    #: Said in ``SIZE_WARNING_HEADER`` when the size asked for was replaced.
    size_note: str | None = None


def is_openai_model(name: str | None) -> bool:
    return bool(name) and str(name).strip().lower().startswith(_OPENAI_MODEL_PREFIXES)


def catalog_model(name: str | None) -> str | None:
    """The model to look up in the catalog (``None``: the caller's default)."""
    return None if name is None or is_openai_model(name) else name


def size_table(spec: ModelSpec) -> dict[str, tuple[str, str]]:
    """``"WxH"`` -> (aspect ratio, image size) for every size the model produces."""
    table: dict[str, tuple[str, str]] = {}
    for size in sorted(spec.sizes, key=_size_rank):
        for ratio in spec.aspect_ratios:
            px = expected_pixels(ratio, size)
            if px is not None:
                table.setdefault(f"{px[0]}x{px[1]}", (ratio, size))
    return table


def _size_rank(size: str) -> int:
    return _SIZE_ORDER.index(size) if size in _SIZE_ORDER else len(_SIZE_ORDER)


def size_for_quality(spec: ModelSpec, quality: str | None) -> str | None:
    """The image size a ``quality`` asks for, on this model (``None``: the default)."""
    if quality is None or quality == "auto":
        return None
    if quality not in QUALITIES:
        raise bad_request(
            f"quality must be one of {', '.join(QUALITIES)}.",
            "quality",
            allowed=list(QUALITIES),
        )
    sizes = sorted(spec.sizes, key=_size_rank)
    if quality == "low":
        return sizes[0]
    want = _PREFERRED_SIZE[quality]
    if want in sizes:
        return want
    below = [s for s in sizes if _size_rank(s) <= _size_rank(want)]
    return below[-1] if below else sizes[0]


@dataclass(frozen=True)
class SizeChoice:
    """What a ``size`` asks of a model: a ratio and an image size (``None``: the default),
    and a note when the size asked for was replaced by the nearest the model makes."""

    aspect_ratio: str | None
    image_size: str | None
    note: str | None = None


def nearest_size(spec: ModelSpec, width: int, height: int) -> str:
    """The ``WxH`` of the model's table nearest ``width`` x ``height``: the nearest ratio
    first (a stretched picture is worse than a smaller one), then the nearest pixel count."""
    shape, area = math.log(width / height), math.log(width * height)

    def distance(key: str) -> tuple[float, float]:
        w, h = (int(v) for v in key.split("x"))
        return round(abs(math.log(w / h) - shape), 6), abs(math.log(w * h) - area)

    return min(size_table(spec), key=distance)


def map_size(spec: ModelSpec, size: str | None, quality: str | None) -> SizeChoice:
    """The ratio and image size for ``size`` and ``quality`` on this model."""
    from_quality = size_for_quality(spec, quality)
    if size is None or size.strip().lower() in ("", "auto"):
        return SizeChoice(None, from_quality)
    key = size.strip().lower().replace("×", "x").replace(" ", "")
    table = size_table(spec)
    if key in table:
        return SizeChoice(*table[key])
    width, _, height = key.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise bad_request(
            f"Size {size!r} is not WIDTHxHEIGHT (e.g. 1024x1024) or auto. Sizes "
            f"{spec.id} makes: {', '.join(table)}.",
            "size",
            allowed=["auto", *table],
        )
    near = nearest_size(spec, int(width), int(height))
    ratio, image_size = table[near]
    note = (
        f"size {key} is not one {spec.id} makes; made {near} ({ratio} at {image_size}), "
        f"the nearest. Its sizes: {', '.join(table)}."
    )
    return SizeChoice(ratio, image_size, note)


def plan(
    spec: ModelSpec,
    *,
    prompt: str,
    n: int | None,
    size: str | None,
    quality: str | None,
    response_format: str | None,
    seed: int | None,
) -> ImagesCall:
    """Check an Images API request against the model (raises ``ProblemError``)."""
    count = 1 if n is None else n
    if not 1 <= count <= MAX_IMAGES:
        raise bad_request(f"n must be from 1 to {MAX_IMAGES}.", "n")
    fmt = response_format or "b64_json"
    if fmt not in RESPONSE_FORMATS:
        raise bad_request(
            "response_format must be b64_json or url.",
            "response_format",
            allowed=list(RESPONSE_FORMATS),
        )
    chosen = map_size(spec, size, quality)
    return ImagesCall(
        prompt=prompt,
        n=count,
        aspect_ratio=chosen.aspect_ratio,
        image_size=chosen.image_size,
        response_format=fmt,
        seed=seed,
        size_note=chosen.note,
    )


#: ``output_format`` by the images' MIME type (OpenAI's values).
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}


def images_response(
    outcome: JobOutcome, response_format: str, base_url: str, input_image_tokens: int = 0
) -> SplicedBody:
    """``{created, data: [{b64_json} | {url}], size, output_format, usage}`` for a succeeded
    job, with every field of OpenAI's usage (``input_tokens_details`` is required by clients
    that validate it, LiteLLM among them).  ``input_image_tokens``: what the reference images
    cost by the catalog (the providers report one input count); the rest of the input is text.
    ``usage.cost`` (USD) is an extension: ``0`` for the demo's synthetic images, ``null`` when
    unknown."""
    splicer = Splicer()
    root = base_url.rstrip("/")
    data: list[dict[str, Any]] = []
    for img in outcome.images:
        if response_format == "url":
            data.append({"url": f"{root}{img.path}"})
        else:
            data.append({"b64_json": splicer.b64(img.data)})
    first = outcome.images[0]
    doc: dict[str, Any] = {
        "created": outcome.created,
        "data": data,
        "size": f"{first.width}x{first.height}",
    }
    if first.mime_type in _FORMATS:
        doc["output_format"] = _FORMATS[first.mime_type]
    tokens_in = outcome.usage_int("input_tokens") or 0
    tokens_out = outcome.usage_int("output_tokens") or 0
    image_in = min(input_image_tokens, tokens_in)
    image_out = min(outcome.usage_int("image_tokens") or tokens_out, tokens_out)
    doc["usage"] = {
        "input_tokens": tokens_in,
        "input_tokens_details": {"image_tokens": image_in, "text_tokens": tokens_in - image_in},
        "output_tokens": tokens_out,
        "output_tokens_details": {
            "image_tokens": image_out,
            "text_tokens": tokens_out - image_out,
        },
        "total_tokens": outcome.usage_int("total_tokens") or tokens_in + tokens_out,
        "cost": outcome.cost,
    }
    return splicer.render(doc)
