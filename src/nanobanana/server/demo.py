"""Demo mode: the built-in emulator on a free loopback port, standing in for both providers.

Its images are synthetic (rendered locally, never from a model); every result made through it
is labelled ``synthetic: true`` in responses, pages and logs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("nanobanana.server")


class DemoUpstream:
    def __init__(self) -> None:
        self._server: Any = None
        self.base_urls: dict[str, str] = {}

    async def start(self) -> None:
        from ..emulator import EmulatorServer

        server = EmulatorServer()
        # Starting binds a socket and waits for the server thread: keep the event loop free.
        await asyncio.to_thread(server.__enter__)
        self._server = server
        self.base_urls = {"openrouter": server.openrouter_url, "google": server.gemini_url}
        log.warning(
            "DEMO MODE: users without an API key of their own get SYNTHETIC images from the "
            "built-in emulator (%s), not from a real model. Add a key on the settings page, or "
            "set OPENROUTER_API_KEY / GEMINI_API_KEY, for real images.",
            server.url,
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.__exit__, None, None, None)
