"""The tools nanobanana offers agents over MCP, and the shape of their results.

Each tool is a thin call into a ``Backend`` (``local``: the library and a folder; ``service``:
a user of the web service): it builds the one request type, ``GenerationRequest``, and turns
what came back into a result that fits the clients' limits (``results``).

The input schemas list the aspect ratios and sizes the catalog knows, and which models take
reference images.  Errors come back as tool errors that say what to do next; progress is
reported while a generation runs (a heartbeat every ``HEARTBEAT_SECONDS``, and each image as
it arrives); a call the client cancels is cancelled in its backend (stdio: the library's call;
HTTP: the job, while it is not yet sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Annotated, Any, Protocol, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from ..catalog import Catalog, ModelSpec
from ..errors import MissingKeyError, NanobananaError
from ..request import GenerationRequest
from ..types import AttemptEvent, ImageEvent, StreamEvent
from .results import Failure, Outcome, advice, models_result, tool_result

__all__ = ["HEARTBEAT_SECONDS", "LATEST", "MAX_IMAGES", "Backend", "build_server"]

#: Most images one tool call makes: each comes back with its preview.
MAX_IMAGES = 4
#: Seconds between progress notifications while nothing else happens.
HEARTBEAT_SECONDS = 5.0

#: What ``Backend.turn`` is told when the turn continues the session's latest one.
LATEST = "latest"

T = TypeVar("T")

Progress = Callable[[str, bool], Awaitable[None]]
"""Told ``(message, image_arrived)`` as a generation goes on."""


class Backend(Protocol):
    """Where the tools' work is done: ``local.LocalBackend`` for ``nanobanana mcp``,
    ``service.ServiceBackend`` for a user of the web service."""

    async def generate(
        self, request: GenerationRequest, references: list[str], progress: Progress
    ) -> Outcome: ...

    async def turn(
        self,
        request: GenerationRequest,
        references: list[str],
        session_id: str | None,
        parent_id: str | None,
        progress: Progress,
    ) -> Outcome:
        """A session's turn: ``session_id`` ``None`` starts one; ``parent_id`` ``LATEST``
        continues its latest turn, else the turn (a generation id) named."""
        ...

    async def generation(self, generation_id: str) -> Outcome: ...

    async def models(self) -> list[ModelSpec]: ...

    def missing_key_advice(self, exc: MissingKeyError) -> str: ...


BackendFor = Callable[[Context], Backend]
"""The backend a tool call runs on (``Context``: the call's, with its HTTP request if any)."""


# ---------------------------------------------------------------------------- parameters
Prompt = Annotated[str, Field(description="What the image should show, or what to change.")]
AspectRatio = Annotated[
    str | None,
    Field(description="Width:height of the image; the model's default (usually 1:1) if left out."),
]
ImageSize = Annotated[
    str | None,
    Field(description="Resolution class: 1K is about 1024 px on the longer side (the default)."),
]
Model = Annotated[str | None, Field(description="Model id or alias; see list_models.")]
ProviderName = Annotated[
    str | None,
    Field(description="openrouter or google; left out, the first one with a key is used."),
]
Count = Annotated[
    int, Field(ge=1, le=MAX_IMAGES, description=f"How many images (1 to {MAX_IMAGES}).")
]
Negative = Annotated[str | None, Field(description="What the image should avoid.")]
Seed = Annotated[
    int | None, Field(description="A seed, for the models that take one (best effort).")
]
FullSize = Annotated[
    bool,
    Field(
        description="Also return the full-size image inline. Off by default: the result "
        "carries a small preview and a link to the saved file, which fit every client's limits."
    ),
]
SessionId = Annotated[str, Field(description="The session_id an earlier turn returned.")]
GenerationId = Annotated[
    str, Field(description="The generation_id a generate, edit or session call returned.")
]


References = Annotated[list[str], Field(min_length=1, description="Images to edit or draw from.")]
MoreReferences = Annotated[list[str], Field(description="Images to edit or draw from.")]


# ---------------------------------------------------------------------------- the server
def build_server(
    backend_for: BackendFor,
    *,
    catalog: Catalog,
    references_help: str,
    name: str = "nanobanana",
    instructions: str = "",
) -> MCPServer:
    """The MCP server whose tools call the backend ``backend_for`` gives each call (stdio: one
    for all; HTTP: the caller's).  ``catalog`` fills the schemas' choices, ``references_help``
    says what a reference image may be."""

    async def answer(
        ctx: Context, full_size: bool, work: Callable[[Backend, Progress], Awaitable[Outcome]]
    ) -> CallToolResult:
        """Run ``work`` on the call's backend, reporting progress; its result, or the tool
        error that says what to do."""
        async with _reporting(ctx) as progress:
            backend = backend_for(ctx)
            outcome = await _run(backend, work(backend, progress))
        return tool_result(outcome, full_size=full_size)

    async def generate_image(
        prompt: Prompt,
        ctx: Context,
        aspect_ratio: AspectRatio = None,
        image_size: ImageSize = None,
        model: Model = None,
        provider: ProviderName = None,
        n: Count = 1,
        negative_prompt: Negative = None,
        seed: Seed = None,
        full_size: FullSize = False,
    ) -> CallToolResult:
        request = _request(
            prompt, aspect_ratio, image_size, model, provider, n, negative_prompt, seed
        )
        return await answer(ctx, full_size, lambda b, progress: b.generate(request, [], progress))

    async def edit_image(
        prompt: Prompt,
        images: References,
        ctx: Context,
        aspect_ratio: AspectRatio = None,
        image_size: ImageSize = None,
        model: Model = None,
        provider: ProviderName = None,
        n: Count = 1,
        negative_prompt: Negative = None,
        seed: Seed = None,
        full_size: FullSize = False,
    ) -> CallToolResult:
        request = _request(
            prompt, aspect_ratio, image_size, model, provider, n, negative_prompt, seed
        )
        return await answer(
            ctx, full_size, lambda b, progress: b.generate(request, images, progress)
        )

    async def continue_session(
        prompt: Prompt,
        ctx: Context,
        session_id: Annotated[
            str | None,
            Field(description="The session to continue; left out, a new session starts."),
        ] = None,
        images: MoreReferences = [],  # noqa: B006 - a schema default, never mutated
        aspect_ratio: AspectRatio = None,
        image_size: ImageSize = None,
        model: Model = None,
        provider: ProviderName = None,
        full_size: FullSize = False,
    ) -> CallToolResult:
        request = _request(prompt, aspect_ratio, image_size, model, provider)
        parent = LATEST if session_id else None
        return await answer(
            ctx,
            full_size,
            lambda b, progress: b.turn(request, images, session_id, parent, progress),
        )

    async def branch_session(
        prompt: Prompt,
        session_id: SessionId,
        turn_id: Annotated[
            str,
            Field(description="The generation_id of the turn to build on instead of the latest."),
        ],
        ctx: Context,
        images: MoreReferences = [],  # noqa: B006 - a schema default, never mutated
        aspect_ratio: AspectRatio = None,
        image_size: ImageSize = None,
        model: Model = None,
        provider: ProviderName = None,
        full_size: FullSize = False,
    ) -> CallToolResult:
        request = _request(prompt, aspect_ratio, image_size, model, provider)
        return await answer(
            ctx,
            full_size,
            lambda b, progress: b.turn(request, images, session_id, turn_id, progress),
        )

    async def list_models(
        ctx: Context,
        provider: Annotated[
            str | None, Field(description="Only the models this provider serves.")
        ] = None,
    ) -> CallToolResult:
        backend = backend_for(ctx)
        specs = await _run(backend, backend.models())
        if provider:
            specs = [s for s in specs if provider.lower() in s.providers]
        return models_result(specs)

    async def get_generation(
        generation_id: GenerationId, ctx: Context, full_size: FullSize = False
    ) -> CallToolResult:
        backend = backend_for(ctx)
        outcome = await _run(backend, backend.generation(generation_id))
        return tool_result(outcome, full_size=full_size)

    specs = list(catalog)
    ratios = _union(s.aspect_ratios for s in specs)
    sizes = _union(s.sizes for s in specs)
    providers = _union(s.providers for s in specs)
    paid = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    takes = _reference_note(specs)
    tools = [
        _tool(
            generate_image,
            "Generate images from a text prompt. Returns each image as a link to the saved "
            "file with a small preview, the model's text, the cost and any warnings.",
            paid,
        ),
        _tool(
            edit_image,
            "Edit or combine images: send them with an instruction (change, restyle, "
            f"compose). Use this, not generate_image, when the result must keep an image's "
            f"content. {takes}",
            paid,
        ),
        _tool(
            continue_session,
            "A conversation about one picture: each turn sees the earlier turns, so 'now make "
            "the sky darker' works. Without session_id a new session starts (pass images to "
            "start from an existing picture); with it, the latest turn is continued.",
            paid,
        ),
        _tool(
            branch_session,
            "Continue a session from an earlier turn instead of the latest one (try another "
            "direction without losing the first).",
            paid,
        ),
        _tool(
            list_models,
            "The image models available: id, providers, aspect ratios, sizes, how many "
            "reference images each takes, and the price per image.",
            read,
        ),
        _tool(get_generation, "An earlier result again, by its generation_id.", read),
    ]
    for tool in tools:
        _choices(tool, "aspect_ratio", ratios)
        _choices(tool, "image_size", sizes)
        _choices(tool, "provider", providers)
        _choices(tool, "model", [s.id for s in specs], open_ended=True)
        images = tool.parameters.get("properties", {}).get("images")
        if images is not None:
            images["description"] = f"Images to edit or draw from: {references_help}."
    return MCPServer(
        name=name,
        instructions=instructions or None,
        tools=tools,
        # Tool failures are told to the agent as results; the SDK's INFO log of each one
        # would say the same again on stderr.
        log_level="WARNING",
    )


def _tool(fn: Callable[..., Any], description: str, annotations: ToolAnnotations) -> Tool:
    return Tool.from_function(
        fn, description=description, annotations=annotations, structured_output=False
    )


def _union(groups: Iterable[Iterable[str]]) -> list[str]:
    return list(dict.fromkeys(v for group in groups for v in group))


def _choices(tool: Tool, name: str, values: list[str], *, open_ended: bool = False) -> None:
    """Put the catalog's choices into a parameter's schema: an ``enum``, or for an open-ended
    one (a model id discovery may find) ``examples``."""
    prop = tool.parameters.get("properties", {}).get(name)
    if prop is None or not values:
        return
    keyword = "examples" if open_ended else "enum"
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch[keyword] = values


def _reference_note(catalog: list[ModelSpec]) -> str:
    takes = [f"{s.id} (up to {s.max_input_images})" for s in catalog if s.accepts_images]
    refuses = [s.id for s in catalog if not s.accepts_images]
    note = f"Models that take reference images: {', '.join(takes)}."
    return f"{note} Not: {', '.join(refuses)}." if refuses else note


def _request(
    prompt: str,
    aspect_ratio: str | None,
    image_size: str | None,
    model: str | None,
    provider: str | None,
    n: int = 1,
    negative_prompt: str | None = None,
    seed: int | None = None,
) -> GenerationRequest:
    """The request a tool's arguments make (its images travel apart: only the backend knows
    what a reference names; a session turn's history is the session's)."""
    return GenerationRequest(
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        image_size=image_size,
        model=model,
        provider=provider,
        n=n,
        negative_prompt=negative_prompt,
        seed=seed,
    )


async def _run(backend: Backend, work: Awaitable[T]) -> T:
    """``work``, with the library's errors told as tool errors that say what to do."""
    try:
        return await work
    except MissingKeyError as exc:
        raise ToolError(backend.missing_key_advice(exc)) from exc
    except NanobananaError as exc:
        raise ToolError(advice(Failure.of(exc))) from exc


# ---------------------------------------------------------------------------- progress
@contextlib.asynccontextmanager
async def _reporting(ctx: Context) -> AsyncIterator[Progress]:
    """Progress notifications for one generation: a heartbeat while waiting, a step per image
    arrived.  The value always grows (the spec asks it): images arrived, plus a fraction that
    creeps towards the next one."""
    started = time.monotonic()
    state = {"images": 0, "beats": 0}
    lock = asyncio.Lock()

    async def report(message: str, image_arrived: bool) -> None:
        async with lock:
            if image_arrived:
                state["images"] += 1
                state["beats"] = 0
            else:
                state["beats"] += 1
            creep = 0.9 * (1 - 0.8 ** state["beats"])
            elapsed = time.monotonic() - started
            await ctx.report_progress(state["images"] + creep, None, f"{message} ({elapsed:.0f} s)")

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await report("generating", False)

    await report("started", False)
    task = asyncio.create_task(beat())
    try:
        yield report
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def event_message(event: StreamEvent) -> tuple[str, bool] | None:
    """What a library event says as progress (``None``: nothing worth a notification)."""
    if isinstance(event, ImageEvent):
        image = event.image
        return f"image {image.index + 1} arrived ({image.width}x{image.height})", True
    if isinstance(event, AttemptEvent) and event.attempt.status != "ok":
        attempt = event.attempt
        return f"{attempt.provider} failed ({attempt.error}); trying again", False
    return None
