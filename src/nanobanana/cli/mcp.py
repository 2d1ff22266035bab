"""``nanobanana mcp``: image generation as tools for agents, over stdio (docs/mcp.md).

The agent's client starts this command and speaks MCP on its stdin and stdout; nothing else is
ever written to stdout.  Keys come from the environment or the keys file, as for every other
command; the images are saved in a folder (``--out``) and returned as links with a preview.
The MCP SDK comes with the package's ``mcp`` extra, imported only when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import Endpoints, client_endpoints, command_client
from .generate import add_upstream_options

#: Where images go by default: this folder under the one the client starts the server in.
DEFAULT_FOLDER = "nanobanana-images"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve image generation to agents over MCP (stdio)",
        description="Serve nanobanana's tools (generate_image, edit_image, continue_session, "
        "branch_session, list_models, get_generation) to an MCP client over stdin/stdout. "
        "Configure it as a stdio server in the client: command `nanobanana`, args ['mcp'].",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help=f"folder for the images (default ./{DEFAULT_FOLDER}, or the user's pictures "
        "folder when the current one is not writable)",
    )
    p.add_argument("-m", "--model", help="default model id or alias (see `nanobanana models`)")
    p.add_argument("-p", "--provider", help="default provider: openrouter or google (gemini)")
    add_upstream_options(p)
    p.set_defaults(func=run_mcp)


def run_mcp(args: argparse.Namespace) -> int:
    import asyncio

    try:
        from ..mcp.local import LocalBackend
        from ..mcp.tools import build_server
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith(("mcp", "nanobanana.mcp")):
            raise
        raise UsageError(
            "nanobanana mcp needs the package's mcp extra (the MCP SDK is not installed): "
            "pip install 'nanobanana[mcp]', or pip install '.[mcp]' in a clone."
        ) from exc
    folder = image_folder(args.out)
    with contextlib.ExitStack() as stack:
        endpoints = client_endpoints(args, stack)

        async def serve() -> None:
            async with _client(args, endpoints) as client:
                backend = LocalBackend(client, folder)
                server = build_server(
                    lambda _ctx: backend,
                    catalog=client.catalog,
                    references_help=LocalBackend.references_help,
                    instructions=_instructions(folder, args.emulator),
                )
                await server.run_stdio_async()

        asyncio.run(serve())
    return 0


def _client(args: argparse.Namespace, endpoints: Endpoints) -> Any:
    return command_client(args, endpoints, model=args.model, provider=args.provider)


def image_folder(out: str | None) -> Path:
    """``--out``, else ``./nanobanana-images`` (or the user's pictures folder when the
    client starts the server somewhere it cannot write, such as ``/``)."""
    if out:
        return Path(out).expanduser().resolve()
    here = Path.cwd()
    if os.access(here, os.W_OK):
        return here / DEFAULT_FOLDER
    import platformdirs

    return platformdirs.user_pictures_path() / "nanobanana"


def _instructions(folder: Path, synthetic: bool) -> str:
    note = (
        " This server runs the built-in emulator: its images are synthetic test pictures."
        if synthetic
        else ""
    )
    return (
        "Image generation with Google's Gemini image models (Nano Banana) and OpenRouter's "
        f"image models. Images are saved in {folder}; each result links the file and carries a "
        "small preview (full_size=true for the whole image). Use edit_image to change an "
        "existing picture, continue_session for a series of edits that build on each other."
        f"{note}"
    )
