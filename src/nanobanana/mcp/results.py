"""What a tool's result holds, shaped to fit MCP clients: a short text an agent reads, each
image as a resource link (the saved file, or a download URL) with a small JPEG preview
(``PREVIEW_SIDE`` pixels: Claude Code refuses tool output over 25,000 tokens, and one full
image can be megabytes), the full image only when asked, and the same facts as
``structuredContent``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from ..catalog import ModelSpec
from ..errors import ContentError, NanobananaError, QuotaError, UpstreamError
from ..imaging import b64encode, preview

__all__ = [
    "PREVIEW_SIDE",
    "Failure",
    "Outcome",
    "SavedImage",
    "advice",
    "failed_images",
    "models_result",
    "summary",
    "tool_result",
]

#: The longer side of the preview each result carries (a JPEG of a few KB).
PREVIEW_SIDE = 256


@dataclass(frozen=True)
class SavedImage:
    """One image of a result, where it was kept."""

    index: int
    #: The resource link's URI: ``file://`` on stdio, the download URL on HTTP.
    uri: str
    #: What an agent uses: the file's path, or the URL.
    location: str
    mime_type: str
    width: int
    height: int
    #: Bytes of the kept file (with its provenance, so a little more than ``data``).
    size: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Outcome:
    """A generation as a tool reports it."""

    generation_id: str
    prompt: str
    model: str
    provider: str
    images: list[SavedImage]
    text: str = ""
    aspect_ratio: str | None = None
    image_size: str | None = None
    cost: float | None = None
    cost_is_estimate: bool = False
    warnings: list[str] = field(default_factory=list)
    synthetic: bool = False
    session_id: str | None = None
    #: The turn a session turn continued (``None``: the session's first).
    parent_id: str | None = None

    def facts(self) -> dict[str, Any]:
        """Everything but the bytes, JSON-ready: the result's ``structuredContent``."""
        out = asdict(self)
        out["images"] = [{k: v for k, v in asdict(i).items() if k != "data"} for i in self.images]
        if self.session_id is None:
            del out["session_id"], out["parent_id"]
        return out


def tool_result(outcome: Outcome, *, full_size: bool = False) -> CallToolResult:
    content: list[Any] = [TextContent(type="text", text=summary(outcome))]
    for image in outcome.images:
        content.append(
            ResourceLink(
                type="resource_link",
                uri=image.uri,
                name=image.location.rsplit("/", 1)[-1],
                title=f"Image {image.index + 1} of generation {outcome.generation_id}",
                description=f"{image.width}x{image.height}, saved at {image.location}",
                mime_type=image.mime_type,
                size=image.size,
            )
        )
        if full_size:
            content.append(
                ImageContent(type="image", data=b64encode(image.data), mime_type=image.mime_type)
            )
        else:
            small = preview(image.data, max_side=PREVIEW_SIDE)
            content.append(
                ImageContent(type="image", data=b64encode(small), mime_type="image/jpeg")
            )
    return CallToolResult(content=content, structured_content=outcome.facts())


def summary(outcome: Outcome) -> str:
    """The result in a few lines an agent reads: what was made, where it is, what it cost."""
    count = len(outcome.images)
    lines = [
        f"{count} image{'s' if count != 1 else ''} from {outcome.model} via {outcome.provider}"
        + (" (synthetic: the built-in emulator, nothing billed)" if outcome.synthetic else "")
        + ".",
        f"generation_id: {outcome.generation_id}",
    ]
    if outcome.session_id:
        lines.append(
            f"session_id: {outcome.session_id} (continue_session goes on from this turn; "
            f"branch_session with turn_id {outcome.generation_id} comes back to it)"
        )
    lines += [
        f"image {i.index + 1}: {i.location} ({i.width}x{i.height}, {i.mime_type})"
        for i in outcome.images
    ]
    if outcome.cost is not None:
        estimate = " (estimate)" if outcome.cost_is_estimate else ""
        lines.append(f"cost: ${outcome.cost:.4f}{estimate}")
    lines += [f"warning: {w}" for w in outcome.warnings]
    if outcome.text.strip():
        lines.append(f"model's text: {outcome.text.strip()}")
    return "\n".join(lines)


def models_result(specs: list[ModelSpec]) -> CallToolResult:
    rows: list[dict[str, Any]] = []
    for s in specs:
        price = s.pricing.image_cost(None)
        rows.append(
            {
                "id": s.id,
                "name": s.name,
                "providers": list(s.providers),
                "aspect_ratios": list(s.aspect_ratios),
                "sizes": list(s.sizes),
                "reference_images": s.max_input_images if s.accepts_images else 0,
                "usd_per_image": price,
                "recommended": s.recommended,
            }
        )
    lines = [
        f"{r['id']}: {', '.join(r['providers'])}; sizes {'/'.join(r['sizes'])}; "
        f"{r['reference_images']} reference images"
        + (f"; ${r['usd_per_image']:.3f}/image" if r["usd_per_image"] is not None else "")
        + ("; recommended" if r["recommended"] else "")
        for r in rows
    ]
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(lines) or "No models.")],
        structured_content={"models": rows},
    )


def failed_images(failures: Iterable[tuple[int, str | None]]) -> list[str]:
    """The warnings of a result some of whose images did not come: ``(index, error)`` each."""
    return [f"image {index + 1} failed: {error}" for index, error in failures]


# ---------------------------------------------------------------------------- failures
@dataclass(frozen=True)
class Failure:
    """Why a generation gave no image, as ``advice`` needs it: from a library error
    (``of``) or from the record of a job that ended so."""

    code: str
    message: str
    provider: str | None = None
    retry_after: float | None = None
    per_day: bool = False
    #: Why the model refused, and what it said instead (a content failure).
    reason: str | None = None
    text: str | None = None
    #: A failure on the provider's side that a retry soon may not meet.
    temporary: bool = False
    providers_tried: frozenset[str] = frozenset()

    @classmethod
    def of(cls, exc: NanobananaError) -> Failure:
        return cls(
            code=exc.code,
            message=str(exc),
            provider=getattr(exc, "provider", None),
            retry_after=exc.retry_after if isinstance(exc, UpstreamError) else None,
            per_day=isinstance(exc, QuotaError) and exc.per_day,
            reason=exc.reason if isinstance(exc, ContentError) else None,
            text=exc.text if isinstance(exc, ContentError) else None,
            temporary=isinstance(exc, UpstreamError) and exc.retryable,
            providers_tried=frozenset(a.provider for a in exc.attempts),
        )


def advice(failure: Failure) -> str:
    """The failure as an agent should read it: what happened, and what to do about it."""
    message = " ".join(failure.message.split())
    if failure.code == QuotaError.code:
        when = (
            " It resets tomorrow (per-day quota)."
            if failure.per_day
            else f" Retry after {failure.retry_after:.0f} s."
            if failure.retry_after
            else " Retry in a minute."
        )
        if len(failure.providers_tried) > 1:
            tried = ", ".join(sorted(failure.providers_tried))
            return f"Quota exhausted on {tried}, fallback included: {message}{when}"
        hint = (
            " An OpenRouter key lets Google's quota errors fall back to OpenRouter."
            if failure.provider == "google"
            else ""
        )
        return f"Quota exhausted at {failure.provider or 'the provider'}: {message}{when}{hint}"
    if failure.code in ("content_blocked", "no_image"):
        reason = f" Reason: {failure.reason}." if failure.reason else ""
        text = " ".join((failure.text or "").split())
        said = f" The model said: {text}" if text else ""
        return f"{message}{reason}{said} Rephrase the prompt, or try another model."
    if failure.temporary:
        return f"{message} This is temporary on the provider's side: retry shortly."
    return message
