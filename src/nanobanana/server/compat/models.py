"""The model lists of both dialects, built from the catalog.

``GET /api/v1/models`` answers in OpenRouter's Model shape (reference §1.6), every field
OpenRouter's SDK requires included, paged by ``offset`` and ``limit`` (at most 1000) with
``total_count`` and ``links.next``.  Filters: ``output_modalities``, a comma list of ``text``,
``image``, ``audio``, ``embeddings``, or ``all`` (a model is listed when it outputs any of
them); ``input_modalities`` and ``supported_parameters`` (a model is listed when it has all
of them); ``model_authors`` (a comma list of id prefixes); ``q`` (in the id or the name).
OpenRouter's other parameters (prices, benchmarks, regions) are accepted and ignored; unknown
ones are refused.  The default is ``text``, as on OpenRouter, so a client sees what it would
see there for the same query: the Gemini image models (they answer with text too) but not the
image-only ones; an image tool asks ``?output_modalities=image`` and gets every model.
``GET /v1/models`` is OpenAI's list.

Prices are USD per token as strings, like OpenRouter's; ``"-1"`` where the catalog has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ...catalog import ModelSpec
from .errors import bad_request

OUTPUT_MODALITIES = ("text", "image", "audio", "embeddings")
#: Query parameters OpenRouter's model list takes (its API reference and SDK): those of
#: ``ModelQuery`` are applied, the others accepted and ignored; any other is a 400, so a typo
#: does not pass unnoticed.
OPENROUTER_MODEL_QUERY = frozenset(
    {
        "output_modalities", "input_modalities", "supported_parameters", "model_authors", "q",
        "offset", "limit", "category", "sort", "order", "context", "arch", "providers",
        "distillable", "zdr", "region", "min_price", "max_price", "min_output_price",
        "max_output_price", "min_age_days", "max_age_days", "min_intelligence_index",
        "max_intelligence_index", "min_coding_index", "max_coding_index", "min_agentic_index",
        "max_agentic_index", "min_tool_success_rate", "max_tool_success_rate",
    }
)  # fmt: skip
DEFAULT_OUTPUT_MODALITIES = frozenset({"text"})
INPUT_MODALITIES = ("text", "image", "audio", "video", "file")
MAX_LIMIT = 1000
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
    parts = _comma_list(value)
    if "all" in parts:
        return None
    return _known(parts, OUTPUT_MODALITIES, "output", ("all",))


def _comma_list(value: str | None) -> frozenset[str]:
    return frozenset(p.strip().lower() for p in (value or "").split(",") if p.strip())


def _known(
    parts: frozenset[str], known: tuple[str, ...], kind: str, also: tuple[str, ...] = ()
) -> frozenset[str]:
    """``parts``, or a 400 naming the first unknown ``kind`` modality and the known ones."""
    unknown = sorted(parts - set(known))
    if unknown:
        choices = ", ".join(known) + "".join(f", or {a}" for a in also)
        raise bad_request(
            f"Unknown {kind} modality {unknown[0]!r}; use a comma list of {choices}.",
            f"{kind}_modalities",
            allowed=[*known, *also],
        )
    return parts


def _count(query: Mapping[str, str], name: str, default: int, lowest: int, highest: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lowest - 1
    if not lowest <= value <= highest:
        raise bad_request(
            f"{name} must be a whole number from {lowest} to {highest}, not {raw!r}.", name
        )
    return value


@dataclass(frozen=True)
class ModelQuery:
    """What ``GET /api/v1/models`` was asked for."""

    outputs: frozenset[str] | None = DEFAULT_OUTPUT_MODALITIES
    inputs: frozenset[str] = frozenset()
    parameters: frozenset[str] = frozenset()
    authors: frozenset[str] = frozenset()
    text: str = ""
    offset: int = 0
    limit: int = MAX_LIMIT

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ModelQuery:
        check_query(query.keys(), OPENROUTER_MODEL_QUERY)
        return cls(
            outputs=parse_output_modalities(query.get("output_modalities")),
            inputs=_known(_comma_list(query.get("input_modalities")), INPUT_MODALITIES, "input"),
            parameters=_comma_list(query.get("supported_parameters")),
            authors=_comma_list(query.get("model_authors")),
            text=(query.get("q") or "").strip().lower(),
            offset=_count(query, "offset", 0, 0, 1_000_000),
            limit=_count(query, "limit", MAX_LIMIT, 1, MAX_LIMIT),
        )

    def matches(self, model: Mapping[str, Any]) -> bool:
        arch = model["architecture"]
        return (
            (self.outputs is None or bool(self.outputs & set(arch["output_modalities"])))
            and self.inputs <= set(arch["input_modalities"])
            and self.parameters <= set(model["supported_parameters"])
            and (not self.authors or model["id"].split("/", 1)[0].lower() in self.authors)
            and (self.text in model["id"].lower() or self.text in model["name"].lower())
        )

    def next_page(self, path: str, query: Mapping[str, str], total: int) -> str | None:
        """The relative URL of the next page, or ``None`` on the last."""
        if self.offset + self.limit >= total:
            return None
        rest = {k: v for k, v in query.items() if k not in ("offset", "limit")}
        return (
            f"{path}?{urlencode({**rest, 'offset': self.offset + self.limit, 'limit': self.limit})}"
        )


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
        "default_parameters": None,
        "supported_voices": None,
        "links": {"details": details_url(spec)},
        **({"reasoning": reasoning} if reasoning is not None else {}),
        "expiration_date": spec.shutdown.isoformat() if spec.shutdown else None,
    }


def details_url(spec: ModelSpec) -> str:
    """Where the model's maker describes it: OpenRouter's endpoints page for a model it
    serves, else Google's model page."""
    if "openrouter" in spec.provider_ids:
        return f"https://openrouter.ai/api/v1/models/{spec.provider_ids['openrouter']}/endpoints"
    return (
        f"https://ai.google.dev/gemini-api/docs/models/{spec.provider_ids.get('google', spec.id)}"
    )


def openrouter_models(
    models: Iterable[ModelSpec],
    query: ModelQuery | None = None,
    path: str = "/api/v1/models",
    raw_query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One page of the list (``query`` ``None``: every model, one page)."""
    every = [openrouter_model(spec) for spec in models]
    if query is None:
        return {"data": every, "total_count": len(every), "links": {"next": None}}
    found = [m for m in every if query.matches(m)]
    return {
        "data": found[query.offset : query.offset + query.limit],
        "total_count": len(found),
        "links": {"next": query.next_page(path, raw_query or {}, len(found))},
    }


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
