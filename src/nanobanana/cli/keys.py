"""``nanobanana keys set|list|remove``: the provider keys file (mode 0600), shown masked.

The file is ``$NANOBANANA_KEYS_FILE`` or ``<user config dir>/nanobanana/keys.json``.  A key is
best given at the prompt (``getpass``) or on stdin, not as an argument, which shells keep in
their history; the command says so when one is passed that way.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import UsageError
from .common import eprint


def register(sub: Any) -> None:
    p = sub.add_parser(
        "keys",
        help="store, list or remove provider API keys",
        description="Manage the provider API keys stored in the keys file (mode 0600).",
    )
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", title="actions")
    ks.required = True
    s = ks.add_parser(
        "set",
        help="store a key (prompted, or read from stdin, when KEY is omitted)",
        description="Store a provider key. Without KEY it is prompted for (hidden) or read "
        "from stdin when stdin is not a terminal.",
    )
    s.add_argument("provider", metavar="PROVIDER", help="openrouter or google (gemini)")
    s.add_argument("key", metavar="KEY", nargs="?", help="the key (better: omit it)")
    s.set_defaults(func=run_set)
    ls = ks.add_parser("list", help="show stored and environment keys, masked")
    ls.set_defaults(func=run_list)
    rm = ks.add_parser("remove", help="delete a stored key")
    rm.add_argument("provider", metavar="PROVIDER", help="openrouter or google (gemini)")
    rm.set_defaults(func=run_remove)


def _keys_file() -> Any:
    from ..config import KeysFile, keys_file_path

    return KeysFile(keys_file_path())


def _read_key(provider: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"{provider} API key (input hidden): ")
    if sys.stdin is None:
        raise UsageError("No KEY given and no stdin to read it from.")
    return sys.stdin.readline()


def run_set(args: argparse.Namespace) -> int:
    from ..config import mask_key
    from ..providers import canonical_provider

    provider = canonical_provider(args.provider)
    key = args.key if args.key is not None else _read_key(provider)
    key = key.strip()
    if not key:
        raise UsageError(f"No key given for {provider}; nothing was stored.")
    if any(c.isspace() for c in key):
        raise UsageError("The key contains whitespace; paste the key alone.")
    if args.key is not None:
        eprint(
            "note: a key given as an argument may stay in your shell history; "
            "omit KEY to be prompted instead."
        )
    store = _keys_file()
    store.set(provider, key)
    print(f"Stored the {provider} key {mask_key(key)} in {store.path}.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..config import mask_key
    from ..providers import INFOS

    store = _keys_file()
    stored = store.load()
    print(f"Keys file: {store.path}{'' if store.path.exists() else ' (none yet)'}")
    for provider, info in INFOS.items():
        rows = []
        for var in info.key_env_vars:
            if os.environ.get(var):
                rows.append(f"{mask_key(os.environ[var])}  (environment ${var})")
        if stored.get(provider):
            rows.append(f"{mask_key(stored[provider])}  (keys file)")
        if not rows:
            rows.append(f"not set  (run `nanobanana keys set {provider}`)")
        # The first row is the key in use: the environment wins over the file.
        print(f"  {provider.ljust(10)}  {rows[0]}")
        for extra in rows[1:]:
            print(f"  {'':10}  {extra}  [not used]")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from ..providers import INFOS, canonical_provider

    provider = canonical_provider(args.provider)
    store = _keys_file()
    if not store.remove(provider):
        raise UsageError(f"No {provider} key is stored in {store.path}.")
    print(f"Removed the {provider} key from {store.path}.")
    still = [v for v in INFOS[provider].key_env_vars if os.environ.get(v)]
    if still:
        eprint(f"note: ${still[0]} still provides a {provider} key.")
    return 0
