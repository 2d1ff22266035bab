"""One generation request, as every face fills it, and one rule for the model and provider.

The library's ``generate()`` arguments, a CLI command line, a batch row, a ComfyUI node's
inputs, a job of the service and the compatible endpoints' bodies all become a
``GenerationRequest``; ``resolve_target`` decides which model and which provider serve it, the
same way for all of them.  A new generation parameter is a field here, then one mapping per
face.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .catalog import VARIANT_PROVIDER, Catalog, ModelChoice, ModelSpec, validate_image_options
from .errors import ValidationError
from .providers import INFOS, PROVIDERS, canonical_provider
from .references import ReferenceInput
from .types import PriorTurn


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """What to generate.  ``None`` leaves the choice to the client's or the user's defaults."""

    prompt: str
    model: str | None = None
    provider: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    #: How many images: that many parallel calls (1-10).
    n: int = 1
    #: Folded into the prompt by one documented template (no image model takes one).
    negative_prompt: str | None = None
    #: Reference images, in order: paths, bytes, PIL images, ``data:`` or http(s) URLs.
    images: tuple[ReferenceInput, ...] = field(default=(), repr=False)
    seed: int | None = None
    #: How much the model thinks before it draws: ``minimal``, ``low``, ``medium`` or ``high``
    #: (``None``: the model's default).  Sent as Gemini's ``thinkingLevel`` and OpenRouter's
    #: ``reasoning.effort``; refused before the call by a model whose levels are known.
    thinking: str | None = None
    #: Ground the image in Google Search results (Gemini's ``google_search`` tool; on
    #: OpenRouter its native web search): for what is current or real.  Refused before the
    #: call by a model known not to take it.
    google_search: bool = False
    #: Model-specific image options, sent as they are in OpenRouter's ``image_config``
    #: (Recraft's ``style``, Sourceful's ``font_inputs``...: docs/providers.md).  Only a
    #: provider that takes them (``ProviderInfo.image_options``) is sent the request.
    image_options: Mapping[str, Any] = field(default_factory=dict)
    #: Whether a failed provider may hand over to another (``None``: the client's setting).
    fallback: bool | None = None
    #: The earlier turns of the conversation this request continues, oldest first (a
    #: ``Session`` fills it: docs/sessions.md).  Not part of ``record()``: a session stores
    #: its turns itself.
    history: tuple[PriorTurn, ...] = field(default=(), repr=False)

    def with_(self, **changes: Any) -> GenerationRequest:
        """A copy with ``changes`` (a field name that does not exist is a ``TypeError``)."""
        return replace(self, **changes)

    def record(self) -> dict[str, Any]:
        """The request as JSON-ready data, without its images (stored apart, by reference)."""
        data = {name: getattr(self, name) for name in _RECORDED}
        # The only field that is not a scalar: a copy of its own (its values may be lists).
        data["image_options"] = copy.deepcopy(dict(self.image_options))
        return data

    @classmethod
    def from_record(
        cls, data: Mapping[str, Any], images: Iterable[ReferenceInput] = ()
    ) -> GenerationRequest:
        """Back from ``record()`` (keys it does not know are left out: older records)."""
        known = {f.name for f in fields(cls)} - {"images", "history"}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("n") is None:
            values.pop("n", None)
        return cls(**values, images=tuple(images))


#: What ``GenerationRequest.record`` keeps: every field but the images and the history
#: (stored apart).
_RECORDED = tuple(f.name for f in fields(GenerationRequest) if f.name not in ("images", "history"))


@dataclass(frozen=True, slots=True)
class Target:
    """The model (as named, with its variant and note) and the provider a call goes to."""

    choice: ModelChoice
    provider: str
    #: The name the model was chosen by, as spelled (asked for, or the caller's default);
    #: ``None`` when it is the provider's default.
    named: str | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.choice.spec

    @property
    def wire_model(self) -> str:
        return self.choice.wire_id(self.provider)


def resolve_target(
    catalog: Catalog,
    model: str | None,
    provider: str | None = None,
    *,
    default_model: str | None = None,
    default_provider: str | None = None,
    has_key: Callable[[str], bool] | None = None,
) -> Target:
    """The model and provider for a call, by one rule for every face.

    Model: the one asked for, else the caller's default, else the chosen provider's default; a
    default model the chosen provider does not serve gives way to that provider's default.
    Provider: the one asked for; else OpenRouter for a variant (``:free`` is OpenRouter's
    alone); else the caller's default provider when it serves the model; else the first of
    OpenRouter and Google that serves it and (with ``has_key``) has a key, or the first that
    serves it when none has.  Whether the provider has a key is the caller's next check.

    Raises ``UnknownModelError`` for a name the catalog does not know and ``ValidationError``
    for a model (or variant) the provider does not serve."""
    asked = catalog.resolve(model) if model else None
    choice = asked or (catalog.resolve(default_model) if default_model else None)
    if provider:
        name = canonical_provider(provider)
    elif choice is not None and choice.variant is not None:
        name = VARIANT_PROVIDER
    else:
        serving = choice.spec.providers if choice is not None else PROVIDERS
        preferred = canonical_provider(default_provider) if default_provider else None
        order = [p for p in dict.fromkeys((preferred, *PROVIDERS)) if p in serving]
        if preferred is not None and order and order[0] == preferred:
            name = preferred
        elif has_key is not None:
            name = next((p for p in order if has_key(p)), order[0] if order else PROVIDERS[0])
        else:
            name = order[0] if order else PROVIDERS[0]
    named = model if asked else default_model
    if choice is None or (asked is None and name not in choice.spec.provider_ids):
        choice, named = ModelChoice(catalog.default_for(name)), None
    choice.wire_id(name)  # raises if the model (or its variant) is not on that provider
    return Target(choice, name, named)


def image_options_for(provider: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` checked (``validate_image_options``) for a request sent to ``provider``,
    which must be one that carries them (``ProviderInfo.image_options``): any other would
    answer without them."""
    checked = validate_image_options(options)
    if checked and not INFOS[provider].image_options:
        takers = [name for name, info in INFOS.items() if info.image_options]
        raise ValidationError(
            f"Image options ({', '.join(checked)}) are model-specific settings that only "
            f"{' and '.join(takers)} passes on; {provider} has none. Send the request through "
            f"{takers[0]}, or leave the options out.",
            field="image_options",
        )
    return checked
