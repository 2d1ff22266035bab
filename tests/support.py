"""Helpers shared by several test folders."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class ServerThread:
    """The app served by uvicorn on a free loopback port, in a background thread.

    The socket is bound before uvicorn starts, so the port is ours before anyone can take it;
    entering returns once the lifespan has run and the server is listening."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        import uvicorn

        self._sock = sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            self.__exit__()
            raise RuntimeError("the server did not start; see the log above")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
        if self._sock is not None:
            self._sock.close()
