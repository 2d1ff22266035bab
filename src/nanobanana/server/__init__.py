"""The self-hosted web service (``nanobanana serve``): FastAPI on top of ``AsyncClient``.

``create_app(settings)`` builds the ASGI app; ``run(settings, host, port)`` serves it with
uvicorn.  Nothing is built or read at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .settings import Settings

__all__ = ["check_port", "create_app", "run", "worker_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    from .app import create_app as factory

    return factory(settings)


def worker_app() -> FastAPI:
    """The app of one of the processes of ``run(workers=N)``, from the environment."""
    from .memory import prepare_process

    prepare_process()
    return create_app()


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` for a moment, as uvicorn will (``StartupError`` saying what to do
    when it cannot): a port in use is found before anything is set up."""
    import errno
    import socket

    from .security import StartupError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"Port {port} on {host} is already in use (another nanobanana serve?): stop "
                    "what holds it, or choose another --port."
                ) from None
            if exc.errno == errno.EACCES:
                raise StartupError(
                    f"Port {port} needs privileges this user lacks; choose --port 1024 or above."
                ) from None
            raise StartupError(f"Cannot listen on {host}:{port} ({exc.strerror}).") from None


def run(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workers: int = 1,
    **uvicorn_options: Any,
) -> None:
    """Serve the app (blocking) until interrupted; ``workers`` processes share the port (each
    builds its app from the environment, which ``settings`` are written back to)."""
    import logging

    import uvicorn

    from .memory import prepare_process

    prepare_process()
    check_port(host, port)
    from .security import KeyVault, load_master_keys

    KeyVault(load_master_keys(settings))  # a bad master key stops here, not inside uvicorn
    from .db.migrate import migrate_in_child

    migrate_in_child(settings.resolved_database_url)
    if settings.demo_enabled:
        logging.getLogger("nanobanana.server").warning(
            "Starting in DEMO MODE: images for users without a key are synthetic."
        )
    app: Any
    if workers > 1:
        import os

        # Each process builds its own app, from the environment: the options given on the
        # command line go there first.
        os.environ["NANOBANANA_DATA_DIR"] = str(settings.data_dir)
        os.environ["NANOBANANA_DEMO"] = "true" if settings.demo_enabled else "false"
        app = "nanobanana.server:worker_app"
        uvicorn_options.update(factory=True, workers=workers)
    else:
        app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds) + 5),
        ws="none",  # no WebSocket routes: nothing to upgrade to, no websockets module loaded
        # Forwarded headers only from the configured proxies: uvicorn's default believes any
        # local client, which could then pick its own address for the login limits.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        **uvicorn_options,
    )
