"""What every command shares: exit codes, the one-line error report, stderr notes, options.

Only the standard library and ``nanobanana.errors`` (itself dependency-free) are imported here:
this module loads for ``nanobanana --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ContentError, MissingKeyError, NanobananaError, UpstreamError, UsageError

if TYPE_CHECKING:
    from ..client import AsyncClient

EXIT_OK = 0
EXIT_ERROR = 1
#: Usage errors: a bad option, a missing key, an unreadable reference (argparse also uses 2).
EXIT_USAGE = 2
#: The provider failed: quota, auth, 5xx, timeouts.
EXIT_UPSTREAM = 3
#: The call ran but gave no image: blocked by safety, or text only.
EXIT_CONTENT = 4
EXIT_INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    if isinstance(exc, UpstreamError):
        return EXIT_UPSTREAM
    if isinstance(exc, ContentError):
        return EXIT_CONTENT
    return EXIT_ERROR


def error_message(exc: NanobananaError) -> str:
    """The exception's message on one line (a usage error listing several problems, such as
    a batch file's, keeps one line per problem), with the block reason when the message lacks
    it.  A provider's message is always one line, whatever line breaks it came with."""
    if isinstance(exc, MissingKeyError):
        return missing_key_message(exc)
    lines = str(exc).splitlines() if isinstance(exc, UsageError) else [str(exc)]
    msg = "\n".join(" ".join(line.split()) for line in lines if line.strip())
    if isinstance(exc, ContentError) and exc.reason and exc.reason.lower() not in msg.lower():
        msg = f"{msg} (reason: {exc.reason})"
    return msg


def missing_key_message(exc: MissingKeyError) -> str:
    """The library's message names the client's arguments; at the terminal the fixes are these."""
    from ..providers import INFOS

    envs = " or ".join(INFOS[exc.provider].key_env_vars)
    return (
        f"No {exc.provider} API key. Set {envs}, or run `nanobanana keys set {exc.provider}` "
        "(or add --emulator for synthetic images without a key)."
    )


def eprint(message: str, *, file: TextIO | None = None) -> None:
    print(message, file=file or sys.stderr, flush=True)


def report_error(message: str) -> None:
    eprint(f"error: {message}")


def warn(message: str) -> None:
    eprint(f"warning: {message}")


def stderr_is_tty() -> bool:
    return _isatty(sys.stderr)


def stdout_is_tty() -> bool:
    return _isatty(sys.stdout)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams (tests, pipes)
        return False


def no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def generation_options(args: argparse.Namespace) -> dict[str, Any]:
    """The generation parameters on the command line, by the request's field names: the
    options ``generate``, ``edit`` and ``batch`` share (-m -p -a -s -n --negative --seed
    --thinking --google-search --image-option)."""
    return {
        "model": args.model,
        "provider": args.provider,
        "aspect_ratio": args.aspect_ratio,
        "image_size": args.size,
        "n": args.n,
        "negative_prompt": args.negative,
        "seed": args.seed,
        "thinking": args.thinking,
        "google_search": args.google_search,
        "image_options": image_options(args.image_option),
    }


def add_image_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--image-option KEY=VALUE`` (``generate``, ``edit``, ``batch``)."""
    parser.add_argument(
        "--image-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model-specific image option sent in OpenRouter's image_config, e.g. "
        "style=Photorealism or 'rgb_colors=[[255,0,0]]' (VALUE read as JSON when it is; "
        "repeatable)",
    )


def image_options(pairs: list[str]) -> dict[str, Any]:
    """``--image-option KEY=VALUE`` pairs: VALUE as JSON when it reads as JSON (``0.7``,
    ``[[255, 0, 0]]``, ``"123"``), else as the text it is (``Photorealism``)."""
    from ..catalog import validate_image_options

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--image-option takes KEY=VALUE, such as style=Photorealism; got {pair!r}."
            )
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        out[key.strip()] = value
    return validate_image_options(out)


def add_base_url_options(parser: argparse.ArgumentParser) -> None:
    # Spelled out, not read from the providers' INFO: `--help` imports no provider.  A test
    # holds them to each provider's ``base_url_argument``.
    group = parser.add_argument_group("endpoints")
    group.add_argument(
        "--openrouter-base-url",
        metavar="URL",
        help="OpenRouter API base (default $OPENROUTER_BASE_URL or https://openrouter.ai/api/v1).",
    )
    group.add_argument(
        "--gemini-base-url",
        metavar="URL",
        help="Gemini API base (default $GEMINI_BASE_URL or "
        "https://generativelanguage.googleapis.com).",
    )


def base_urls_from(args: argparse.Namespace) -> dict[str, str | None]:
    from ..providers import INFOS

    return {name: getattr(args, i.base_url_argument, None) for name, i in INFOS.items()}


SYNTHETIC_NOTE = (
    "note: these images are synthetic, made by the built-in emulator; "
    "no provider was called and nothing was billed."
)


#: Base URLs, explicit keys and the environment of a command's client (``client_endpoints``).
Endpoints = tuple[dict[str, str | None], dict[str, str | None], dict[str, str] | None]


def command_client(args: argparse.Namespace, endpoints: Endpoints, **options: Any) -> AsyncClient:
    """The ``AsyncClient`` a command's options and endpoints describe (``options``: more
    ``AsyncClient`` arguments)."""
    from ..client import AsyncClient

    urls, keys, env = endpoints
    return AsyncClient(
        api_keys=keys,
        base_urls=urls,
        env=env,
        use_keys_file=not args.emulator,
        synthetic=args.emulator,
        fallback=not args.no_fallback,
        **options,
    )


def client_endpoints(args: argparse.Namespace, stack: contextlib.ExitStack) -> Endpoints:
    """Base URLs, explicit keys and the environment the client should use.  ``--emulator``
    starts one in this process (closed with ``stack``), with an empty environment: neither
    real keys nor real base URLs reach it."""
    urls = base_urls_from(args)
    if not args.emulator:
        return urls, {}, None
    given = [
        option
        for option, attr in (
            ("--base-url", "base_url"),
            ("--openrouter-base-url", "openrouter_base_url"),
            ("--gemini-base-url", "gemini_base_url"),
        )
        if getattr(args, attr, None)
    ]
    if given:
        raise UsageError(
            f"--emulator serves its own endpoints; drop {' and '.join(given)} (or drop --emulator)."
        )
    from ..emulator import EmulatorServer
    from ..providers import INFOS

    emu = stack.enter_context(EmulatorServer())
    # Keys the emulator accepts: real keys are never sent to it.
    keys: dict[str, str | None] = {name: i.emulator_key for name, i in INFOS.items()}
    return {"openrouter": emu.openrouter_url, "google": emu.gemini_url}, keys, {}
