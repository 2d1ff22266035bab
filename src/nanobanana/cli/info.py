"""``nanobanana info FILE``: the provenance nanobanana wrote into an image it saved."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import UsageError

#: Shown first, in this order; anything else follows alphabetically.
ORDER = (
    "prompt",
    "negative_prompt",
    "effective_prompt",
    "model",
    "provider",
    "provider_model",
    "aspect_ratio",
    "image_size",
    "seed",
    "thinking",
    "google_search",
    "image_options",
    "cost",
    "cost_is_estimate",
    "elapsed_s",
    "fallback",
    "synthetic",
    "index",
    "nanobanana_version",
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "info",
        help="show the provenance stored in an image",
        description="Show the parameters nanobanana stored in a PNG it saved.",
    )
    p.add_argument("file", metavar="FILE", help="an image saved by nanobanana")
    p.add_argument("--json", action="store_true", help="print the provenance as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..files import read_metadata
    from ..imaging import inspect_image

    path = Path(args.file).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder; give an image file.") from None
    try:
        mime, width, height = inspect_image(data, verify=False)
    except ValueError as exc:
        raise UsageError(f"{path} is not a PNG, JPEG or WEBP image.") from exc
    meta = read_metadata(data) if mime == "image/png" else {}
    if args.json:
        out = {"file": str(path), "mime_type": mime, "width": width, "height": height}
        print(json.dumps({**out, "provenance": meta}, indent=2, ensure_ascii=False))
        return 0 if meta else 1
    print(f"{path}: {width}x{height} {mime.split('/')[-1].upper()}")
    if not meta:
        print("No nanobanana provenance in this file.")
        return 1
    keys = [k for k in ORDER if k in meta] + sorted(k for k in meta if k not in ORDER)
    width_col = max(len(k) for k in keys)
    for key in keys:
        print(f"  {key.ljust(width_col)}  {_fmt(meta[key])}")
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)
