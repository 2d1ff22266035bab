"""``nanobanana profiles set|list|remove``: named nanobanana servers (URL + personal API token).

ComfyUI nodes and ``nanobanana batch --profile NAME`` run their jobs on the server a profile
names, with the keys stored there, so no key ever sits in a workflow.  The file is
``$NANOBANANA_PROFILES_FILE`` or ``<user config dir>/nanobanana/profiles.json``, mode 0600.
The token is prompted for (hidden) or read from stdin, never taken as an argument.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "profiles",
        help="store, list or remove nanobanana server profiles",
        description="Manage named nanobanana servers (URL + personal API token) used by "
        "ComfyUI nodes and `batch --profile`.",
    )
    ps = p.add_subparsers(dest="profiles_command", metavar="ACTION", title="actions")
    ps.required = True
    s = ps.add_parser(
        "set",
        help="store a profile; the token is prompted for or read from stdin",
        description="Store a server profile. The personal API token (create one on the "
        "server's settings page) is prompted for, hidden, or read from stdin.",
    )
    s.add_argument("name", metavar="NAME")
    s.add_argument("url", metavar="URL", help="the server, e.g. https://images.example.com")
    s.set_defaults(func=run_set)
    ls = ps.add_parser("list", help="show the profiles, tokens masked")
    ls.set_defaults(func=run_list)
    rm = ps.add_parser("remove", help="delete a profile")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=run_remove)


def _file() -> Any:
    from ..remote.profiles import ProfilesFile, profiles_file_path

    return ProfilesFile(profiles_file_path())


def _read_token(name: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"API token for {name} (input hidden): ")
    if sys.stdin is None:
        raise UsageError("No stdin to read the token from.")
    return sys.stdin.readline()


def run_set(args: argparse.Namespace) -> int:
    from ..config import mask_key

    name = args.name.strip()
    if not name or any(c.isspace() for c in name):
        raise UsageError("A profile name is one word, e.g. `studio`.")
    token = _read_token(name).strip()
    if not token or any(c.isspace() for c in token):
        raise UsageError("No usable token given (one line, no spaces); nothing was stored.")
    store = _file()
    store.set(name, args.url, token)
    print(f"Stored profile {name!r} -> {store.get(name).url} (token {mask_key(token)}).")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..config import mask_key

    store = _file()
    profiles = store.load()
    print(f"Profiles file: {store.path}{'' if store.path.exists() else ' (none yet)'}")
    for name in sorted(profiles):
        p = profiles[name]
        print(f"  {name.ljust(12)}  {p.url}  token {mask_key(p.token)}")
    if not profiles:
        print("  none (add one with `nanobanana profiles set NAME URL`)")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    store = _file()
    if not store.remove(args.name):
        raise UsageError(f"No profile named {args.name!r} in {store.path}.")
    print(f"Removed profile {args.name!r}.")
    return 0
