"""Running the emulator: in a background thread for tests (``EmulatorServer``) or in the
foreground for ``nanobanana emulator`` (``serve``)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from .app import create_app
from .config import EmulatorConfig
from .state import EmulatorState

__all__ = ["EmulatorServer", "serve"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
# Connections held open by slow scenarios must not delay shutdown for long.
_GRACEFUL_SHUTDOWN = 1


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> uvicorn.Config:
    # No access log: a Gemini key may travel in the query string (?key=) and must not be logged.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        timeout_keep_alive=30,
    )


def serve(host: str, port: int, config: EmulatorConfig) -> None:
    """Serve the emulator until interrupted (blocking)."""
    server = uvicorn.Server(_uvicorn_config(create_app(config), host, port, "info"))
    server.run()


class EmulatorServer:
    """An emulator on a free loopback port, served by uvicorn in a background thread.

    Use as a context manager (``with`` or ``async with``)::

        with EmulatorServer() as emu:
            client = OpenAI(base_url=emu.openrouter_url, api_key="sk-or-v1-CANARY")
    """

    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self.app = create_app(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- addresses ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openrouter_url(self) -> str:
        return self.url + "/api/v1"

    @property
    def gemini_url(self) -> str:
        return self.url

    # -- control ----------------------------------------------------------------------------------

    @property
    def state(self) -> EmulatorState:
        state: EmulatorState = self.app.state.emulator
        return state

    def requests(self) -> list[dict[str, Any]]:
        """Recently recorded requests, oldest first (see ``/_emulator/requests``)."""
        return self.state.requests.snapshot()

    def reset(self) -> None:
        """Forget recorded requests, generation stats, the ``flaky`` and ``stagger`` counters
        and the models retired by ``retire``."""
        self.state.reset()

    def retire(self, *model_ids: str) -> None:
        """Answer ``model_ids`` as retired (unlisted and refused) until the next ``reset``."""
        self.state.retired = self.state.retired | frozenset(model_ids)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            raise RuntimeError("the emulator server is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_uvicorn_config(self.app, self.host, self.port, "warning"))
        self._server = server
        self._thread = threading.Thread(
            target=self._run,
            args=(server, sock),
            name=f"nanobanana-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        if not server.started:
            self.stop()
            raise RuntimeError(f"the emulator server did not start: {self._error!r}")
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported by start() in the caller's thread
            self._error = exc
        finally:
            sock.close()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT)
        self._server = self._thread = None

    close = stop

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmulatorServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
