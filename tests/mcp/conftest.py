"""The MCP server as agents' clients meet it: ``nanobanana mcp`` started by the official MCP
Python client over stdio, its generations going to the suite's emulator.

``mcp_server(*args, keys=...)`` connects a client to a fresh server process (its stderr kept
in ``stderr_path`` for the tests that read it); the images go to ``folder``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp.client.stdio import stdio_client

from mcp import Client, StdioServerParameters
from nanobanana.emulator import EmulatorServer
from nanobanana.providers import INFOS

NANOBANANA = Path(sys.executable).with_name("nanobanana")
#: Keys the emulator accepts.
EMULATOR_KEYS = {
    "OPENROUTER_API_KEY": INFOS["openrouter"].emulator_key,
    "GEMINI_API_KEY": INFOS["google"].emulator_key,
}
OPENROUTER_CANARY = "sk-or-v1-CANARYmcp0123456789abcdef0123456789"
GEMINI_CANARY = "AIzaCANARYmcp0123456789abcdefghijklmno"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def stderr_path(tmp_path: Path) -> Path:
    return tmp_path / "server-stderr.txt"


@pytest.fixture
def mcp_server(
    emu: EmulatorServer, folder: Path, stderr_path: Path, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[Client]]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)

    @contextlib.asynccontextmanager
    async def connect(*args: str, keys: dict[str, str] | None = None) -> AsyncIterator[Client]:
        env = {**os.environ, **(EMULATOR_KEYS if keys is None else keys)}
        params = StdioServerParameters(
            command=str(NANOBANANA),
            args=[
                "mcp",
                "--out",
                str(folder),
                "--openrouter-base-url",
                emu.openrouter_url,
                "--gemini-base-url",
                emu.gemini_url,
                *args,
            ],
            env=env,
            cwd=work,
        )
        with stderr_path.open("a") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                yield client

    return connect


def posts(emu: EmulatorServer) -> list[dict[str, Any]]:
    """The generation calls the emulator received."""
    return [r for r in emu.requests() if r["method"] == "POST"]
