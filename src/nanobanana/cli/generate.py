"""``nanobanana generate PROMPT`` and ``nanobanana edit IMAGE... INSTRUCTION``.

Both run one ``AsyncClient.generate`` call: check the output names, build the client from
options, env and the keys file (or from an in-process emulator with ``--emulator``), show
progress on stderr while waiting, save the images with their provenance, then print a summary
(or ``--json``) on stdout and warnings on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

from ..errors import NanobananaError
from .common import (
    SYNTHETIC_NOTE,
    add_base_url_options,
    add_image_option,
    client_endpoints,
    command_client,
    eprint,
    generation_options,
    stderr_is_tty,
    stdout_is_tty,
    warn,
)

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..request import GenerationRequest
    from ..types import Result, StreamEvent
    from .output import ArrivalSaver, OutputTarget


def register(sub: Any) -> None:
    gen = sub.add_parser(
        "generate",
        help="generate images from a prompt",
        description="Generate images from a prompt and save them with their provenance.",
    )
    gen.add_argument("prompt", metavar="PROMPT", help="what the image should show")
    add_generation_options(gen)
    gen.set_defaults(func=run_generate)

    edit = sub.add_parser(
        "edit",
        help="edit or combine images with an instruction",
        description="Send reference images with an instruction (editing, composition).",
    )
    edit.add_argument("images", nargs="+", metavar="IMAGE", help="reference image: path or URL")
    edit.add_argument("instruction", metavar="INSTRUCTION", help="what to change or make")
    add_generation_options(edit)
    edit.set_defaults(func=run_edit)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model, the provider and the picture's shape: what every generating command takes."""
    p.add_argument("-m", "--model", help="model id or alias (see `nanobanana models`)")
    p.add_argument("-p", "--provider", help="openrouter or google (gemini)")
    p.add_argument("-a", "--aspect-ratio", metavar="RATIO", help="e.g. 1:1, 16:9, 9:16, 21:9")
    p.add_argument("-s", "--size", metavar="SIZE", help="image size: 0.5K, 1K, 2K or 4K")
    p.add_argument(
        "--thinking",
        metavar="LEVEL",
        help="how much the model thinks first: minimal, low, medium or high (model default)",
    )


def add_upstream_options(p: argparse.ArgumentParser) -> None:
    """Where the calls go: fallback, base URLs, or the built-in emulator."""
    p.add_argument(
        "--no-fallback", action="store_true", help="use only the first provider, no fallback"
    )
    add_base_url_options(p)
    p.add_argument(
        "--emulator",
        action="store_true",
        help="run a built-in emulator and make synthetic images (no key, no cost)",
    )


def add_generation_options(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    p.add_argument("-n", type=int, default=1, metavar="N", help="number of images (default 1)")
    p.add_argument("--negative", metavar="TEXT", help="what the image should avoid")
    p.add_argument(
        "-i",
        "--image",
        action="append",
        default=[],
        metavar="IMAGE",
        help="reference image, path or URL (repeatable)",
    )
    p.add_argument("--seed", type=int, help="seed, where the model accepts one (best effort)")
    p.add_argument(
        "--google-search",
        action="store_true",
        help="ground the image in Google Search results (Google's models)",
    )
    add_image_option(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="file name, or folder (default: the current folder, nanobanana-<time>-<i>.png)",
    )
    p.add_argument("--force", action="store_true", help="overwrite the -o file if it exists")
    p.add_argument("--stream", action="store_true", help="show the model's text as it arrives")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")
    p.add_argument("--base-url", metavar="URL", help="API base URL for the chosen provider")
    add_upstream_options(p)


def run_generate(args: argparse.Namespace) -> int:
    return _run(args, args.prompt, list(args.image))


def run_edit(args: argparse.Namespace) -> int:
    return _run(args, args.instruction, [*args.images, *args.image])


def _run(args: argparse.Namespace, prompt: str, images: list[str]) -> int:
    import asyncio

    from ..errors import ContentError
    from ..request import GenerationRequest
    from .output import OutputTarget

    request = GenerationRequest(prompt=prompt, images=tuple(images), **generation_options(args))
    try:
        target = OutputTarget.parse(args.output, force=args.force)
        target.precheck(args.n)  # before anything is paid for
        with contextlib.ExitStack() as stack:
            urls, keys, env = client_endpoints(args, stack)
            return asyncio.run(_generate(args, request, target, urls, keys, env))
    except NanobananaError as exc:
        if args.json:
            print(json.dumps(error_json(exc), indent=2, ensure_ascii=False))
        elif isinstance(exc, ContentError) and exc.text and not args.stream:
            print(exc.text.strip())  # what the model said instead of an image
        raise


def error_json(exc: NanobananaError) -> dict[str, Any]:
    """``--json`` output for a failed run: the same fields an error line carries, and attempts."""
    from dataclasses import asdict, is_dataclass

    from .common import error_message, exit_code_for

    err: dict[str, Any] = {
        "code": exc.code,
        "message": error_message(exc),
        "exit_code": exit_code_for(exc),
    }
    for attr in ("provider", "status", "reason", "text", "finish_reason", "may_be_billed"):
        value = getattr(exc, attr, None)
        if value is not None:
            err[attr] = value
    attempts = getattr(exc, "attempts", [])
    err["attempts"] = [asdict(a) for a in attempts if is_dataclass(a) and not isinstance(a, type)]
    return {"error": err}


async def _generate(
    args: argparse.Namespace,
    request: GenerationRequest,
    target: OutputTarget,
    urls: dict[str, str | None],
    keys: dict[str, str | None],
    env: dict[str, str] | None,
) -> int:
    from ..transport import one_shot_transport
    from ..types import ImageEvent
    from .output import ArrivalSaver
    from .progress import Progress

    async with command_client(
        args,
        (urls, keys, env),
        # One call: the standard library sends it unless a proxy is configured (then aiohttp).
        transport=one_shot_transport(env),
    ) as client:
        if args.base_url:
            provider = _provider_for_base_url(client, args)
            client.configs[provider] = _with_base_url(client, provider, args.base_url)
            request = request.with_(provider=provider)
        label = f"Generating {args.n} image{'s' if args.n > 1 else ''}"
        progress = Progress(live=stderr_is_tty(), n=args.n, label=label)
        streamer = _TextStreamer(progress, to_stderr=args.json, n=args.n) if args.stream else None

        saver = ArrivalSaver(target, args.n)

        def on_event(event: StreamEvent) -> None:
            progress.on_event(event)
            if isinstance(event, ImageEvent):
                saver.on_image(event.image)
            if streamer is not None:
                streamer.on_event(event)

        progress.start()
        try:
            result = await client.run(request, on_event=on_event, stream=args.stream)
        finally:
            progress.stop()
            if streamer is not None:
                streamer.finish()
    return _finish(args, result, saver, streamed=streamer is not None)


def _provider_for_base_url(client: AsyncClient, args: argparse.Namespace) -> str:
    """``--base-url`` needs one provider: ``-p``, else the one the client would call first."""
    from ..providers import PROVIDERS, canonical_provider, missing_key

    if args.provider:
        return canonical_provider(args.provider)
    spec = client.catalog.get(args.model) if args.model else None
    candidates = [p for p in PROVIDERS if spec is None or p in spec.provider_ids]
    for p in candidates:
        if client.has_key(p):
            return p
    raise missing_key(candidates[0] if candidates else PROVIDERS[0])


def _with_base_url(client: AsyncClient, provider: str, url: str) -> Any:
    import dataclasses

    return dataclasses.replace(client.configs[provider], base_url=url)


class _TextStreamer:
    """Prints text deltas as they come; on a shared terminal the spinner is cleared first.

    The calls of an n-image request run at once and their texts interleave: with more than one
    image, each run of text starts on its own line, saying which image it is about."""

    def __init__(self, progress: Any, *, to_stderr: bool, n: int = 1) -> None:
        self.progress = progress
        self.out = sys.stderr if to_stderr else sys.stdout
        self.wrote = False
        self.many = n > 1
        self.current: int | None = None  # the image whose text was printed last

    def on_event(self, event: Any) -> None:
        from ..types import TextDelta

        if not isinstance(event, TextDelta) or not event.text:
            return
        if not self.wrote and self.out is sys.stdout and stdout_is_tty():
            self.progress.stop()
        if self.many and event.index != self.current:
            self.out.write(f"{chr(10) if self.wrote else ''}[image {event.index + 1}] ")
            self.current = event.index
        self.out.write(event.text)
        self.out.flush()
        self.wrote = True

    def finish(self) -> None:
        if self.wrote:
            self.out.write("\n")
            self.out.flush()


def _finish(
    args: argparse.Namespace, result: Result, saver: ArrivalSaver, *, streamed: bool
) -> int:
    from .output import result_json, summary_lines

    saved = saver.finish(result.images)
    for s in saved:
        if s.renamed_from is not None:
            warn(f"{s.renamed_from} exists; saved as {s.path} instead.")
    for w in result.warnings:
        warn(w)
    for f in result.failures:
        warn(f"image {f.index + 1} of {args.n} failed: {f.error}")
    if args.emulator:
        eprint(SYNTHETIC_NOTE)
    if args.json:
        print(json.dumps(result_json(result, saved), indent=2, ensure_ascii=False))
        return 0
    if result.text and not streamed:
        print(result.text.strip())
    for line in summary_lines(result, saved):
        print(line)
    return 0
