"""``nanobanana serve``, ``nanobanana worker`` and ``nanobanana users create``: the web
service's command-line doors.

The service lives in ``nanobanana.server`` (an optional extra); both commands import it only
when they run, and say how to install it when it is missing.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ..errors import NanobananaError, UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the web service (API and web UI)",
        description="Run the nanobanana web service. Settings come from NANOBANANA_* "
        "environment variables; the options below override them.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="synthetic images from the built-in emulator for users without a key "
        "(default: on when no provider key is configured)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="database, images and master key folder")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="web processes on this port (default 1); each runs the jobs it accepts unless "
        "NANOBANANA_JOBS=external, and NANOBANANA_REDIS_URL makes them share events and limits",
    )
    p.set_defaults(func=run_serve)

    w = sub.add_parser(
        "worker",
        help="run generation jobs for the web service (no HTTP)",
        description="Run the generation jobs that web processes started with "
        "NANOBANANA_JOBS=external queue, from the PostgreSQL database they share "
        "(NANOBANANA_DATABASE_URL). Start as many as wanted, on any host with the same "
        "NANOBANANA_* settings and master key. SIGTERM or Ctrl-C stops taking jobs and lets "
        "running ones finish for NANOBANANA_SHUTDOWN_GRACE_SECONDS.",
    )
    w.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="jobs run at once (default NANOBANANA_MAX_CONCURRENT_JOBS, 512)",
    )
    w.add_argument("--data-dir", metavar="DIR", help="images and master key folder")
    w.set_defaults(func=run_worker)

    cp = sub.add_parser(
        "copy-data",
        help="copy the service's data folder into PostgreSQL (and images into S3)",
        description="Copy the embedded service's data (the data folder's SQLite database and, "
        "with --storage-url, its image files) into a new PostgreSQL database and S3 bucket, "
        "for several processes to share (docs/deploy.md). Stop the service first; the source "
        "is only read. S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    )
    cp.add_argument(
        "--database-url",
        required=True,
        metavar="URL",
        help="the new database: postgresql+asyncpg://user@host/db (must hold no account)",
    )
    cp.add_argument("--storage-url", metavar="URL", help="s3://bucket/prefix for the images")
    cp.add_argument("--s3-endpoint-url", metavar="URL", help="the S3 endpoint, if not AWS")
    cp.add_argument("--data-dir", metavar="DIR", help="the data folder to copy from")
    cp.set_defaults(func=run_copy_data)

    users = sub.add_parser("users", help="manage web service accounts")
    us = users.add_subparsers(dest="users_command", metavar="ACTION", title="actions")
    us.required = True
    c = us.add_parser(
        "create",
        help="create an account",
        description="Create a web service account. The password is prompted for, or read "
        "from stdin with --password-stdin.",
    )
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--admin", action="store_true", help="give the account admin rights")
    c.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    c.add_argument("--data-dir", metavar="DIR", help="database, images and master key folder")
    c.set_defaults(func=run_users_create)


def _needs_server_extra(exc: ModuleNotFoundError) -> UsageError:
    return UsageError(
        f"The web service needs the package's server extra ({exc.name} is not installed): "
        "install nanobanana with it, e.g. pip install '.[server]' in a clone of nanobanana, or "
        "pip install 'nanobanana-<version>-py3-none-any.whl[server]' from a built wheel."
    )


def _settings(args: argparse.Namespace, **overrides: Any) -> Any:
    from ..server.settings import Settings

    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:  # pydantic's ValidationError; its text would echo the values
        errors = getattr(exc, "errors", None)
        if errors is None:
            raise
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in errors(include_input=False, include_url=False)
        )
        raise UsageError(f"Invalid service settings (NANOBANANA_* variables): {problems}.") from exc


def run_serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError("--workers must be 1 or more.")
    settings = _settings(args, demo=args.demo)
    from ..server import run

    try:
        from ..server.security import StartupError

        run(settings, args.host, args.port, workers=args.workers)
    except ModuleNotFoundError as exc:  # fastapi & co. are imported when the app is built
        raise _needs_server_extra(exc) from exc
    except StartupError as exc:  # a port in use, a bad master key: one line, not a traceback
        raise UsageError(str(exc)) from None
    except SystemExit as exc:
        if exc.code == 3:  # uvicorn's "startup failed": its log above says why
            raise NanobananaError("The service could not start; see the messages above.") from None
        raise
    return 0


def run_worker(args: argparse.Namespace) -> int:
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be 1 or more.")
    settings = _settings(args, max_concurrent_jobs=args.concurrency)
    try:
        from ..server.security import StartupError
        from ..server.worker import run_worker as run
    except ModuleNotFoundError as exc:
        raise _needs_server_extra(exc) from exc
    try:
        run(settings)
    except ModuleNotFoundError as exc:  # procrastinate comes with the postgres extra
        raise UsageError(
            f"nanobanana worker needs the package's server and postgres extras ({exc.name} is "
            "not installed): pip install '.[server,postgres]' in a clone of nanobanana."
        ) from exc
    except StartupError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return 0


def run_copy_data(args: argparse.Namespace) -> int:
    import asyncio

    settings = _settings(args)
    try:
        from ..server.copydata import copy_data
        from ..server.security import StartupError
    except ModuleNotFoundError as exc:
        raise _needs_server_extra(exc) from exc
    try:
        done = asyncio.run(
            copy_data(
                settings,
                args.database_url,
                args.storage_url,
                args.s3_endpoint_url,
                say=lambda line: print(line, flush=True),
            )
        )
    except StartupError as exc:
        raise UsageError(str(exc)) from None
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"copy-data needs the postgres and s3 extras ({exc.name} is not installed)."
        ) from exc
    for key in done.missing:
        print(f"missing in the data folder: images/{key}", file=sys.stderr)
    key_file = settings.resolved_master_key_file
    print(
        "Copied. Start the new processes with NANOBANANA_MASTER_KEYS set to the key in "
        f"{key_file} (the stored provider keys are encrypted with it)."
    )
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("stdin is not a terminal: pass --password-stdin and pipe the password.")
    first = getpass.getpass(f"Password for {args.username}: ")
    second = getpass.getpass("Repeat it: ")
    if first != second:
        raise UsageError("The two passwords differ; nothing was created.")
    return first


def run_users_create(args: argparse.Namespace) -> int:
    password = _read_password(args)
    if not password:
        raise UsageError("The password is empty; nothing was created.")
    settings = _settings(args)
    try:
        from ..server.users import create_user
    except ModuleNotFoundError as exc:
        raise _needs_server_extra(exc) from exc

    user_id = create_user(settings, args.username, password, args.admin)
    role = "admin" if args.admin else "user"
    print(f"Created {role} {args.username!r} (id {user_id}).")
    return 0
