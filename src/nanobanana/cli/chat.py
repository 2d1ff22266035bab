"""``nanobanana chat``: conversational editing at the prompt (docs/sessions.md).

Each line is the next turn of one session: it continues the turn before it, with the path that
led there sent upstream, and its image is saved as ``<turn>.png`` (``t1.png``, ``t2.png``...)
in the ``-o`` folder.  Lines that start with ``/`` are commands::

    /image PATH    a reference image for the next turn (repeatable)
    /branch T      continue from turn T (``/branch`` alone: start over)
    /tree          the turns so far, as a tree; ``*`` marks the one the next line continues
    /quit          leave (end of input does too)

It reads standard input, so a script of lines runs a whole session.  A failed turn prints its
error and the session goes on from where it was.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import NanobananaError
from .common import (
    SYNTHETIC_NOTE,
    add_image_option,
    client_endpoints,
    command_client,
    eprint,
    error_message,
    generation_options,
    warn,
)
from .generate import add_model_options, add_upstream_options

if TYPE_CHECKING:
    from ..conversation import AsyncSession, Turn

HELP = "commands: /image PATH, /branch TURN, /tree, /quit"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "chat",
        help="edit an image over several turns, each building on the last",
        description="Conversational editing: each line of input is the next turn of one "
        "session (it continues the turn before it, or the one /branch names); each turn's "
        "image is saved as <turn>.png. " + HELP + ".",
    )
    add_model_options(p)
    p.add_argument(
        "-i",
        "--image",
        action="append",
        default=[],
        metavar="IMAGE",
        help="reference image for the first turn, path or URL (repeatable)",
    )
    add_image_option(p)
    p.add_argument(
        "-o", "--output", metavar="FOLDER", default=".", help="where the images go (default: .)"
    )
    add_upstream_options(p)
    p.set_defaults(func=run, n=1, negative=None, seed=None, google_search=False)


def run(args: argparse.Namespace) -> int:
    import asyncio

    folder = Path(args.output).expanduser()
    if folder.exists() and not folder.is_dir():
        from ..errors import UsageError

        raise UsageError(f"-o {args.output} is a file; chat saves into a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        endpoints = client_endpoints(args, stack)
        return asyncio.run(_chat(args, endpoints, folder, sys.stdin, sys.stdout))


async def _chat(
    args: argparse.Namespace, endpoints: Any, folder: Path, lines: TextIO, out: TextIO
) -> int:
    options = {k: v for k, v in generation_options(args).items() if k != "n"}
    failed = 0
    async with command_client(args, endpoints) as client:
        session = client.session(**options)
        pending: list[str] = list(args.image)
        if sys.stdin.isatty():
            print(f"Describe an image, then what to change. {HELP}.", file=sys.stderr)
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not _command(session, line, pending, out):
                    break
                continue
            try:
                turn = await session.send(line, images=pending)
            except NanobananaError as exc:
                failed += 1
                warn(f"turn not made: {error_message(exc)}")
                continue
            pending = []
            _report(turn, folder, out)
    if any(t.result.synthetic for t in session.turns):
        eprint(SYNTHETIC_NOTE)
    return 1 if failed and not session.turns else 0


def _command(session: AsyncSession, line: str, pending: list[str], out: TextIO) -> bool:
    """Run a ``/`` command; False to leave."""
    name, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    if name in ("quit", "exit", "q"):
        return False
    if name == "image" and rest:
        pending.append(rest)
    elif name == "branch":
        found = next((t for t in session.turns if t.id == rest), None)
        if rest and found is None:
            known = ", ".join(t.id for t in session.turns) or "none yet"
            warn(f"no turn {rest!r} (turns: {known}).")
        else:
            session.branch(found)
            print(f"next: continues {found.id}" if found else "next: a new first turn", file=out)
    elif name == "tree":
        for text in tree_lines(session):
            print(text, file=out)
    else:
        warn(f"unknown command {line!r}; {HELP}.")
    return True


def tree_lines(session: AsyncSession) -> list[str]:
    """The turns as an indented tree, oldest first; ``*`` marks the head."""
    lines: list[str] = []

    def walk(parent: Turn | None, depth: int) -> None:
        for turn in session.children(parent):
            mark = "*" if turn is session.head else " "
            lines.append(f"{mark} {'  ' * depth}{turn.id}  {turn.prompt}")
            walk(turn, depth + 1)

    walk(None, 0)
    return lines


def _report(turn: Turn, folder: Path, out: TextIO) -> None:
    result = turn.result
    saved = [str(img.save(folder / f"{turn.id}{img.extension}")) for img in result.images]
    parent = f" <- {turn.parent.id}" if turn.parent is not None else ""
    cost = "" if result.cost is None else f", ${result.cost:.4f}"
    print(
        f"{turn.id}{parent}: {', '.join(saved)} ({result.provider} {result.model}{cost})", file=out
    )
    if result.text:
        print(f"  {result.text.strip()}", file=out)
    for w in result.warnings:
        warn(w)
