"""OpenRouter's Image API: ``POST /api/v1/images`` and ``GET /api/v1/images/models``
(reference §1.8; OpenRouter's SDK calls them ``images.generate`` and ``images.list_models``).

What a request may hold, and what it means here:
- ``model`` (required): a catalog id, alias or OpenRouter id; ``prompt`` (required);
  ``n``: 1 to 10 images (what succeeds is returned even if some fail).
- ``aspect_ratio``: one of the model's ratios, or ``auto`` (your default, else the model's).
  OpenRouter clamps a ratio a provider lacks; here it is a 400 naming the model's ratios, so
  that an image never comes back in a shape nobody asked for.
- ``resolution``: ``512`` (Gemini's ``0.5K``), ``1K``, ``2K``, ``4K``, as the model allows.
- ``size``: a tier (``2K``) like ``resolution``, or ``WxH``: authoritative, normalized to the
  nearest of the model's pixel sizes as OpenRouter normalizes it (the ``Nanobanana-Warning``
  header says when it was not one of them); a ``resolution`` or ``aspect_ratio`` that
  disagrees with it is a 400, as on OpenRouter.
- ``input_references``: reference images, ``{"type": "image_url", "image_url": {"url":
  "data:..."}}``; the service never fetches an HTTP URL for a client.
- ``seed``; ``provider``: OpenRouter's routing object, whose ``only``/``order`` may name one
  of the service's providers (``openrouter``, ``google``: the route to take first); other
  names and keys are accepted and ignored.
- ``stream: true`` is answered with the whole JSON answer, as OpenRouter answers it for models
  without native image streaming (Gemini among them).
- ``quality``, ``output_format``, ``output_compression``, ``background``, ``user``,
  ``session_id`` and ``trace`` are accepted and ignored: images come in the format the model
  made, and ``data[].media_type`` says which.

The answer: ``{created, data: [{b64_json, media_type}], usage: {prompt_tokens,
completion_tokens, total_tokens, cost}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...catalog import ModelSpec
from ...client import MAX_IMAGES_PER_REQUEST, MAX_PROMPT_CHARS, MAX_SEED
from ...errors import ValidationError
from ...providers import INFOS, PROVIDERS, canonical_provider
from .errors import bad_request
from .models import input_modalities, openrouter_id, output_modalities
from .openai_images import map_size, size_table
from .openrouter_request import VISIBLE, require_data_urls
from .outcome import JobOutcome
from .splice import SplicedBody, Splicer

#: OpenRouter's resolution tiers -> the catalog's image sizes.
RESOLUTIONS = {"512": "0.5K", "0.5K": "0.5K", "1K": "1K", "2K": "2K", "4K": "4K"}


class _Open(BaseModel):
    # Unknown fields are kept and ignored (OpenRouter adds fields); known ones are strict.
    model_config = ConfigDict(extra="allow", strict=True)


class ReferenceUrl(_Open):
    url: str = Field(description="A `data:image/...;base64,...` URL.")


class Reference(_Open):
    type: Literal["image_url"]
    image_url: ReferenceUrl


class RoutePreferences(_Open):
    only: list[str] | None = None
    order: list[str] | None = None


class ImageRequest(_Open):
    """OpenRouter's image generation request, as far as this service reads it."""

    model: str = Field(min_length=1, description="A catalog id, alias or OpenRouter id.")
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=VISIBLE)]
    n: Annotated[int, Field(ge=1, le=MAX_IMAGES_PER_REQUEST)] | None = None
    aspect_ratio: str | None = Field(default=None, description="One of the model's, or `auto`.")
    resolution: str | None = Field(default=None, description="`512`, `1K`, `2K` or `4K`.")
    size: str | None = Field(default=None, description="A tier (`2K`) or `WxH`.")
    input_references: list[Reference] | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    provider: RoutePreferences | None = Field(
        default=None, description="`only` / `order` may name `openrouter` or `google`."
    )
    stream: bool | None = Field(default=None, description="Answered with the whole JSON answer.")


@dataclass(frozen=True)
class ImageCall:
    """An Image API request mapped onto the catalog."""

    prompt: str
    n: int
    aspect_ratio: str | None
    image_size: str | None
    images: tuple[str, ...]
    seed: int | None
    #: Said in the ``Nanobanana-Warning`` header when a ``WxH`` size was replaced.
    size_note: str | None = None


def route_hint(req: ImageRequest) -> str | None:
    """The provider the caller's preferences name first, if one of the service's."""
    prefs = req.provider
    for name in (prefs.only or prefs.order or []) if prefs else []:
        try:
            return canonical_provider(name)
        except ValidationError:  # one of OpenRouter's own providers: not a route here
            continue
    return None


def _resolution(spec: ModelSpec, value: str, field_name: str) -> str:
    size = RESOLUTIONS.get(value.strip().upper())
    if size is None or size not in spec.sizes:
        allowed = [k for k, v in RESOLUTIONS.items() if v in spec.sizes and k != "0.5K"]
        raise bad_request(
            f"{field_name} {value!r} is not one {openrouter_id(spec)} can make; use "
            f"{', '.join(allowed)}.",
            field_name,
            allowed=allowed,
        )
    return size


def plan(spec: ModelSpec, req: ImageRequest, prompt: str) -> ImageCall:
    """Check an Image API request against the model (raises ``ProblemError``)."""
    ratio = None if req.aspect_ratio in (None, "auto") else req.aspect_ratio
    if ratio is not None and ratio not in spec.aspect_ratios:
        raise bad_request(
            f"aspect_ratio {ratio!r} is not one {openrouter_id(spec)} can make; use "
            f"{', '.join(spec.aspect_ratios)}, or auto.",
            "aspect_ratio",
            allowed=[*spec.aspect_ratios, "auto"],
        )
    size = None if req.resolution is None else _resolution(spec, req.resolution, "resolution")
    note = None
    if req.size is not None:
        ratio, size, note = _from_size(spec, req.size, ratio, size)
    urls = [ref.image_url.url for ref in req.input_references or ()]
    require_data_urls(urls, lambda i: f"input_references[{i}]")
    return ImageCall(
        prompt=prompt,
        n=req.n or 1,
        aspect_ratio=ratio,
        image_size=size,
        images=tuple(urls),
        seed=req.seed,
        size_note=note,
    )


def _from_size(
    spec: ModelSpec, size: str, ratio: str | None, resolution: str | None
) -> tuple[str | None, str | None, str | None]:
    key = size.strip().lower().replace("×", "x").replace(" ", "")
    if "x" not in key:  # a tier, as resolution
        tier = _resolution(spec, size, "size")
        if resolution is not None and resolution != tier:
            raise bad_request(f"size {size!r} and resolution disagree; send one of them.", "size")
        return ratio, tier, None
    chosen = map_size(spec, key, None)
    exact_ratio, exact_size = chosen.aspect_ratio, chosen.image_size
    if (ratio is not None and ratio != exact_ratio) or (
        resolution is not None and resolution != exact_size
    ):
        raise bad_request(
            f"size {size!r} is {exact_ratio} at {exact_size}; an aspect_ratio or resolution "
            "that disagrees with it is refused. Send size alone.",
            "size",
        )
    return exact_ratio, exact_size, chosen.note


def image_response(outcome: JobOutcome) -> SplicedBody:
    """``{created, data: [{b64_json, media_type}], usage}`` for a succeeded job."""
    splicer = Splicer()
    data = [
        {"b64_json": splicer.b64(img.data), "media_type": img.mime_type} for img in outcome.images
    ]
    prompt = outcome.usage_int("input_tokens") or 0
    completion = outcome.usage_int("output_tokens") or 0
    doc: dict[str, Any] = {
        "created": outcome.created,
        "data": data,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": outcome.usage_int("total_tokens") or prompt + completion,
            "cost": outcome.cost,
            "is_byok": False,
            "completion_tokens_details": {"image_tokens": outcome.usage_int("image_tokens") or 0},
        },
    }
    return splicer.render(doc)


# ---------------------------------------------------------------------------- discovery
def supported_parameters(spec: ModelSpec) -> dict[str, dict[str, Any]]:
    """What a model takes, as OpenRouter's capability descriptors."""
    params: dict[str, dict[str, Any]] = {
        "aspect_ratio": {"type": "enum", "values": [*spec.aspect_ratios, "auto"]},
        "resolution": {
            "type": "enum",
            "values": [k for k, v in RESOLUTIONS.items() if v in spec.sizes and k != "0.5K"],
        },
        "size": {"type": "enum", "values": list(size_table(spec))},
        "n": {"type": "range", "min": 1, "max": MAX_IMAGES_PER_REQUEST},
    }
    if spec.supports_seed:
        params["seed"] = {"type": "range", "min": 0, "max": MAX_SEED}
    if spec.accepts_images:
        params["input_references"] = {"type": "boolean"}
    return params


def image_model(spec: ModelSpec) -> dict[str, Any]:
    """One model of ``GET /api/v1/images/models``."""
    model_id = openrouter_id(spec)
    return {
        "id": model_id,
        "name": spec.name,
        "created": 0,
        "description": spec.description,
        "architecture": {
            "input_modalities": input_modalities(spec),
            "output_modalities": output_modalities(spec),
        },
        "endpoints": f"/api/v1/images/models/{model_id}/endpoints",
        "supported_parameters": supported_parameters(spec),
        "supports_streaming": False,
    }


def image_endpoints(spec: ModelSpec) -> dict[str, Any]:
    """``GET /api/v1/images/models/{author}/{slug}/endpoints``: one endpoint per provider of
    the service that serves the model."""
    p = spec.pricing
    pricing: list[dict[str, Any]] = []
    if p.output_image_per_mtok is not None:
        unit_cost = p.output_image_per_mtok / 1_000_000
        pricing.append({"billable": "output_image", "unit": "token", "cost_usd": unit_cost})
    if p.input_per_mtok is not None:
        unit_cost = p.input_per_mtok / 1_000_000
        pricing.append({"billable": "input_text", "unit": "token", "cost_usd": unit_cost})
    params = supported_parameters(spec)
    return {
        "id": openrouter_id(spec),
        "endpoints": [
            {
                "provider_name": INFOS[route].label,
                "provider_slug": route,
                "provider_tag": None,
                "pricing": pricing,
                "supported_parameters": params,
                "allowed_passthrough_parameters": [],
                "supports_streaming": False,
            }
            for route in PROVIDERS
            if route in spec.provider_ids
        ],
    }
