"""The model lists of both dialects, built from the catalog.

``GET /api/v1/models`` answers in OpenRouter's Model shape (reference §1.6) with its
``output_modalities`` filter: a comma list of ``text``, ``image``, ``audio``, ``embeddings``,
or ``all``; a model is listed when it outputs any of them (OpenRouter's other parameters are
accepted and ignored; unknown ones are refused).  The default is ``text``, as on
OpenRouter, so a client sees what it would see there for the same query: the Gemini image
models (they answer with text too) but not the image-only ones; an image tool asks
``?output_modalities=image`` and gets every model.  ``GET /v1/models`` is OpenAI's list.

Prices are USD per token as strings, like OpenRouter's; ``"-1"`` where the catalog has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...catalog import ModelSpec
from .errors import bad_request

OUTPUT_MODALITIES = ("text", "image", "audio", "embeddings")
#: Query parameters OpenRouter's model list takes: accepted (only ``output_modalities`` is
#: applied); any other is a 400, so a typo does not pass unnoticed.
OPENROUTER_MODEL_QUERY = frozenset(
    {"output_modalities", "supported_parameters", "category", "sort", "order", "offset", "limit"}
)
DEFAULT_OUTPUT_MODALITIES = frozenset({"text"})
UNKNOWN_PRICE = "-1"


def check_query(names: Iterable[str], known: frozenset[str]) -> None:
    """Refuse query parameters a list does not take (``known`` may be empty)."""
    for name in names:
        if name not in known:
            takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
            raise bad_request(f"Unknown query parameter {name!r}: {takes}.", name or "query")


def parse_output_modalities(value: str | None) -> frozenset[str] | None:
    """The requested modalities, or ``None`` for all."""
    if value is None or not value.strip():
        return DEFAULT_OUTPUT_MODALITIES
    parts = {p.strip().lower() for p in value.split(",") if p.strip()}
    if "all" in parts:
        return None
    unknown = sorted(parts - set(OUTPUT_MODALITIES))
    if unknown:
        raise bad_request(
            f"Unknown output modality {unknown[0]!r}; use a comma list of "
            f"{', '.join(OUTPUT_MODALITIES)}, or all.",
            "output_modalities",
            allowed=[*OUTPUT_MODALITIES, "all"],
        )
    return frozenset(parts)


def openrouter_id(spec: ModelSpec) -> str:
    """The id OpenRouter clients use for a model (Google-only models get Google's prefix)."""
    return spec.provider_ids.get("openrouter") or f"google/{spec.id}"


def output_modalities(spec: ModelSpec) -> list[str]:
    return ["image", "text"] if spec.outputs_text else ["image"]


def input_modalities(spec: ModelSpec) -> list[str]:
    return ["text", "image"] if spec.accepts_images else ["text"]


def _price(per_mtok: float | None, tokens: int | None = 1) -> str:
    if per_mtok is None or tokens is None:
        return UNKNOWN_PRICE
    text = f"{per_mtok * tokens / 1_000_000:.12f}".rstrip("0").rstrip(".")
    return text or "0"


def openrouter_model(spec: ModelSpec) -> dict[str, Any]:
    """One model in OpenRouter's shape."""
    p = spec.pricing
    outputs = output_modalities(spec)
    inputs = input_modalities(spec)
    params = ["image_config", "modalities"] + (["seed"] if spec.supports_seed else [])
    levels = spec.thinking_levels
    # OpenRouter's shape: efforts highest first, null when every one is passed on.
    reasoning = (
        None
        if levels == ()
        else {
            "supported_efforts": None if levels is None else list(reversed(levels)),
            "mandatory": False,
        }
    )
    if reasoning is not None:
        params.append("reasoning")
    return {
        "id": openrouter_id(spec),
        "canonical_slug": openrouter_id(spec),
        "name": spec.name,
        "created": 0,
        "description": spec.description,
        "context_length": None,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(reversed(outputs))}",
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": "Gemini" if "google" in spec.provider_ids else "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": _price(p.input_per_mtok),
            "completion": _price(p.output_text_per_mtok),
            "request": "0",
            "image": _price(p.input_per_mtok, p.input_image_tokens),
            "image_output": _price(p.output_image_per_mtok),
        },
        "top_provider": {
            "context_length": None,
            "max_completion_tokens": None,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": params,
        **({"reasoning": reasoning} if reasoning is not None else {}),
        "expiration_date": spec.shutdown.isoformat() if spec.shutdown else None,
    }


def openrouter_models(models: Iterable[ModelSpec], wanted: frozenset[str] | None) -> dict[str, Any]:
    data = [
        openrouter_model(spec)
        for spec in models
        if wanted is None or wanted & set(output_modalities(spec))
    ]
    return {"data": data}


def owner(spec: ModelSpec) -> str:
    if "google" in spec.provider_ids:
        return "google"
    return openrouter_id(spec).split("/", 1)[0]


def openai_models(models: Iterable[ModelSpec]) -> dict[str, Any]:
    """OpenAI's ``GET /v1/models`` list: the catalog ids (what ``images.generate`` takes)."""
    return {
        "object": "list",
        "data": [
            {"id": spec.id, "object": "model", "created": 0, "owned_by": owner(spec)}
            for spec in models
        ],
    }
