"""Plain data types shared by the client, the providers and every face.

They hold no behaviour beyond small conveniences, know no transport and no web framework.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # Pillow is imported lazily: `nanobanana --help` must stay fast
    from _typeshed import DataclassInstance
    from PIL.Image import Image as PILImage


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def flat_dict(obj: DataclassInstance) -> dict[str, Any]:
    """The fields of a dataclass whose values are plain scalars (``Attempt``, ``Usage``,
    ``ImageFailure``), as a dict: ``dataclasses.asdict`` without its deep copy of every value,
    which cost a generation more than its JSON did."""
    return {name: getattr(obj, name) for name in _field_names(type(obj))}


@dataclass(frozen=True, slots=True)
class ReferenceImage:
    """A reference image resolved to bytes, ready to send."""

    data: bytes = field(repr=False)
    mime_type: str
    width: int = 0
    height: int = 0


def file_extension(mime_type: str) -> str:
    """The file extension (without the dot) of an image of ``mime_type``: ``jpg``, ``webp``,
    else ``png``."""
    return {"image/jpeg": "jpg", "image/webp": "webp"}.get(mime_type, "png")


@dataclass(slots=True)
class Image:
    """One generated image, decoded and verified: the bytes really are an image of this size."""

    data: bytes = field(repr=False)
    mime_type: str
    width: int
    height: int
    #: Position within the request (0..n-1).
    index: int = 0
    #: Provenance written into the file by ``save`` (see ``files.with_png_metadata``).
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    #: What the provider needs to continue a conversation from the answer this image came in
    #: (``PriorTurn.continuation``): JSON-ready, opaque outside that provider's module.
    continuation: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def extension(self) -> str:
        return f".{file_extension(self.mime_type)}"

    def save(self, path: str | Path, *, metadata: bool = True, overwrite: bool = False) -> Path:
        """Write the image and return where it went: ``path``, or when a file is there the next
        free name (``fox-2.png``) unless ``overwrite``.  PNGs carry their parameters as text
        chunks unless ``metadata=False``.  The file gets the permissions ``open()`` gives."""
        from .files import save_image

        return save_image(self, Path(path), with_metadata=metadata, overwrite=overwrite)

    def to_pil(self) -> PILImage:
        from .files import open_image

        return open_image(self.data)


@dataclass(frozen=True, slots=True)
class PriorTurn:
    """An earlier turn of a conversation, as a later call sends it back
    (``GenerationRequest.history``, oldest first).

    A provider sends ``continuation`` back only when it made it (Gemini's parts with their
    thought signatures, OpenRouter's ``reasoning_details``); a turn another provider or model
    served goes as plain text and images.  ``images_left_out`` counts images of the turn that
    are no longer sent (``conversation.HISTORY_IMAGE_TURNS``): the model is told they were there.
    """

    prompt: str
    #: The reference images the prompt came with.
    references: tuple[ReferenceImage, ...] = field(default=(), repr=False)
    #: The model's answer: its text and its images.
    text: str = ""
    images: tuple[ReferenceImage, ...] = field(default=(), repr=False)
    #: Who answered: the provider, and the model id on its wire.
    provider: str | None = None
    model: str | None = None
    continuation: Mapping[str, Any] | None = field(default=None, repr=False)
    images_left_out: int = 0

    def made_by(self, provider: str, model: str) -> bool:
        """Whether this provider and model answered the turn: only then does its
        ``continuation`` (signatures are bound to a model) go back."""
        return self.continuation is not None and (self.provider, self.model) == (provider, model)

    def left_out_note(self) -> str | None:
        """What the model is told in place of the turn's images no longer sent."""
        n = self.images_left_out
        if not n:
            return None
        return f"[{n} image{'s' if n > 1 else ''} of this turn not repeated here]"


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    image_tokens: int | None = None
    #: USD. From OpenRouter's ``usage.cost``; for Google an estimate from catalog prices.
    cost: float | None = None
    cost_is_estimate: bool = False

    def __add__(self, other: Usage) -> Usage:
        def add(a: float | None, b: float | None) -> Any:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            input_tokens=add(self.input_tokens, other.input_tokens),
            output_tokens=add(self.output_tokens, other.output_tokens),
            total_tokens=add(self.total_tokens, other.total_tokens),
            image_tokens=add(self.image_tokens, other.image_tokens),
            cost=add(self.cost, other.cost),
            cost_is_estimate=self.cost_is_estimate or other.cost_is_estimate,
        )


AttemptStatus = Literal["ok", "error", "blocked", "no_image"]


@dataclass(slots=True)
class Attempt:
    """One call to one provider (a retry is a new attempt)."""

    provider: str
    model: str
    status: AttemptStatus
    #: Which image of the request this attempt was for.
    index: int = 0
    error: str | None = None
    error_code: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    duration_s: float = 0.0
    #: True when this attempt may have been billed even though it failed.
    may_be_billed: bool = False


@dataclass(slots=True)
class ImageFailure:
    """An image of an ``n > 1`` request that did not come back (partial success)."""

    index: int
    error: str
    error_code: str


@dataclass(frozen=True, slots=True)
class Source:
    """A web page a search-grounded answer drew on."""

    url: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Grounding:
    """What a search-grounded answer says it looked up: its search queries, the pages it
    drew on, and Google's search suggestions (``search_entry_point``: HTML that Google's
    terms for Grounding with Google Search ask an app to show with the result)."""

    queries: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    search_entry_point: str | None = None

    @classmethod
    def of(
        cls,
        queries: Iterable[str] = (),
        sources: Iterable[Source] = (),
        search_entry_point: str | None = None,
    ) -> Grounding | None:
        """Each query and page once (a page by its URL), in order; ``None`` when there is
        nothing to say."""
        pages: dict[str, Source] = {}
        for s in sources:
            pages.setdefault(s.url, s)
        asked = tuple(dict.fromkeys(queries))
        if not asked and not pages and not search_entry_point:
            return None
        return cls(asked, tuple(pages.values()), search_entry_point)

    @staticmethod
    def merge(a: Grounding | None, b: Grounding | None) -> Grounding | None:
        """Two answers' groundings as one: both's queries and pages, the first entry point."""
        if a is None or b is None:
            return a or b
        return Grounding.of(
            a.queries + b.queries,
            a.sources + b.sources,
            a.search_entry_point or b.search_entry_point,
        )

    def to_dict(self, *, entry_point: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "queries": list(self.queries),
            "sources": [{"url": s.url, "title": s.title} for s in self.sources],
        }
        if entry_point:
            out["search_entry_point"] = self.search_entry_point
        return out


@dataclass(slots=True)
class Result:
    """Everything known about one generation request."""

    images: list[Image]
    #: The model's text, if it said anything.
    text: str
    #: The prompt as the caller gave it.
    prompt: str
    #: The prompt actually sent (negative prompt folded in).
    effective_prompt: str
    #: Catalog id of the model actually used, and the provider that served it.
    model: str
    provider: str
    #: The provider-specific model id that was sent on the wire.
    provider_model: str
    usage: Usage
    aspect_ratio: str | None = None
    image_size: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    #: The thinking level asked for (``None``: the model's default).
    thinking: str | None = None
    #: Whether the image was asked to be grounded in Google Search, and what the answers said
    #: they looked up (``None``: no search was reported).
    google_search: bool = False
    grounding: Grounding | None = None
    #: The model-specific image options sent (``GenerationRequest.image_options``).
    image_options: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    failures: list[ImageFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Seconds: total wall time, and time to first image.
    elapsed_s: float = 0.0
    first_image_s: float | None = None
    #: True when the images came from the built-in emulator (synthetic).
    synthetic: bool = False

    @property
    def cost(self) -> float | None:
        """USD (``usage.cost``): OpenRouter's figure, or for Google an estimate."""
        return self.usage.cost

    @property
    def cost_is_estimate(self) -> bool:
        """True when ``cost`` is estimated from catalog prices (``usage.cost_is_estimate``)."""
        return self.usage.cost_is_estimate

    @property
    def fallback_used(self) -> bool:
        return any(a.provider != self.provider for a in self.attempts)

    def provenance(self) -> dict[str, Any]:
        """Parameters and outcome, as written into saved PNGs. Never contains a secret."""
        return {
            **request_provenance(
                prompt=self.prompt,
                effective_prompt=self.effective_prompt,
                negative_prompt=self.negative_prompt,
                model=self.model,
                provider=self.provider,
                provider_model=self.provider_model,
                aspect_ratio=self.aspect_ratio,
                image_size=self.image_size,
                seed=self.seed,
                synthetic=self.synthetic,
                thinking=self.thinking,
                google_search=self.google_search,
                image_options=self.image_options,
            ),
            **(
                {"grounding": self.grounding.to_dict(entry_point=False)}
                if self.grounding is not None
                else {}
            ),
            "cost": self.usage.cost,
            "cost_is_estimate": self.usage.cost_is_estimate,
            "elapsed_s": round(self.elapsed_s, 3),
            "fallback": [f"{a.provider}:{a.status}" for a in self.attempts],
        }

    def save(self, target: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Save every image and return where they went: to ``target`` if it is a file name and
        there is one image, else into the folder ``target`` as ``image-<i>.<ext>``.  A name
        already taken gets the next free one (``image-1-2.png``) unless ``overwrite``: a second
        run never replaces the first run's images."""
        from .files import save_all

        return save_all(self, Path(target), overwrite=overwrite)


def request_provenance(
    *,
    prompt: str,
    effective_prompt: str,
    negative_prompt: str | None,
    model: str,
    provider: str,
    provider_model: str,
    aspect_ratio: str | None,
    image_size: str | None,
    seed: int | None,
    synthetic: bool,
    thinking: str | None = None,
    google_search: bool = False,
    image_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What was asked and who answered: the provenance an image has from the moment it
    arrives (``Result.provenance`` adds the request's cost, time and attempts)."""
    from . import __version__

    return {
        "prompt": prompt,
        "effective_prompt": effective_prompt,
        "negative_prompt": negative_prompt,
        "model": model,
        "provider": provider,
        "provider_model": provider_model,
        "aspect_ratio": aspect_ratio,
        "image_size": image_size,
        "seed": seed,
        "thinking": thinking,
        "google_search": google_search,
        # Only when given: most requests have none, and older records have no such key.
        **({"image_options": dict(image_options)} if image_options else {}),
        "synthetic": synthetic,
        "nanobanana_version": __version__,
    }


# ------------------------------------------------------------------------------- streaming
@dataclass(slots=True)
class TextDelta:
    text: str
    type: Literal["text"] = "text"
    #: Which image's call the text comes from (the calls of an n-image request run at once,
    #: so their texts interleave).
    index: int = 0


@dataclass(slots=True)
class ImageEvent:
    image: Image
    type: Literal["image"] = "image"


@dataclass(slots=True)
class UsageEvent:
    usage: Usage
    type: Literal["usage"] = "usage"


@dataclass(slots=True)
class AttemptEvent:
    """An attempt finished (failed, and a retry or fallback follows, or succeeded)."""

    attempt: Attempt
    type: Literal["attempt"] = "attempt"


@dataclass(slots=True)
class DoneEvent:
    result: Result
    type: Literal["done"] = "done"


StreamEvent = TextDelta | ImageEvent | UsageEvent | AttemptEvent | DoneEvent
