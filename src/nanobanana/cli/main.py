"""``nanobanana``: parse the command line, run one command, turn errors into exit codes.

Exit codes: 0 ok, 1 other failure, 2 usage (bad option, missing key), 3 upstream (quota, auth,
outage), 4 no image (blocked, text only), 130 interrupted.  Expected errors (``NanobananaError``)
are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import NanobananaError
from . import batch, chat, emulator, generate, info, keys, mcp, models, profiles, serve
from .common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    error_message,
    exit_code_for,
    report_error,
)

__all__ = ["build_parser", "main"]

DESCRIPTION = (
    "Generate images with Google's Gemini image models (Nano Banana) and OpenRouter's image "
    "models, and keep their provenance."
)
EPILOG = (
    "examples:\n"
    '  nanobanana generate "a fox in the snow" -a 16:9 -s 2K -o fox.png\n'
    '  nanobanana edit fox.png "make it night"\n'
    '  nanobanana generate "a test card" --emulator      # synthetic images, no key\n'
    "  nanobanana keys set openrouter\n"
    "  nanobanana models\n"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanobanana",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nanobanana {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    generate.register(sub)
    chat.register(sub)
    models.register(sub)
    info.register(sub)
    keys.register(sub)
    profiles.register(sub)
    emulator.register(sub)
    serve.register(sub)
    mcp.register(sub)
    batch.add_parser(sub)
    return parser


def _unrecognized(parser: argparse.ArgumentParser, command: str, extra: list[str]) -> int:
    """What argparse would say ("unrecognized arguments", with the top-level usage), said
    about the command that was run: the nearest options it has, and where its help is."""
    import difflib

    sub = _subparser(parser, command)
    options = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
    lines = []
    after_option = False
    for word in extra:
        name = word.split("=", 1)[0]
        if not name.startswith("-"):
            if not after_option:  # else the value of the unknown option just reported
                lines.append(f"unexpected argument {word!r} (quote a value that has spaces).")
            after_option = False
            continue
        after_option = "=" not in word
        close = difflib.get_close_matches(name, options, n=2, cutoff=0.8)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        lines.append(f"{command} has no option {name!r}.{hint}")
    for line in lines:
        print(f"{parser.prog} {command}: error: {line}", file=sys.stderr)
    print(f"Run '{parser.prog} {command} --help' for its options.", file=sys.stderr)
    return 2


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse's own exit code
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if extra:
        return _unrecognized(parser, args.command, extra)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        report_error("interrupted.")
        return EXIT_INTERRUPTED
    except NanobananaError as exc:
        report_error(error_message(exc))
        return exit_code_for(exc)
    except BrokenPipeError:
        # The reader went away (`| head`); stop quietly, and keep Python's flush at exit quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        report_error(f"{exc.strerror or exc}{where}.")
        return EXIT_ERROR
