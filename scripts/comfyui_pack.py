"""Build the ComfyUI node pack as the Comfy Registry and ComfyUI-Manager take it.

    python scripts/comfyui_pack.py [--out build/comfyui] [--repository URL] [--publisher ID]

writes ``<out>/nanobanana-nodes/``, a folder that works as it is in ``ComfyUI/custom_nodes/``:

- ``__init__.py``: the two nodes, from the copy of the library below;
- ``lib/nanobanana/``: the nanobanana library this pack was built from, without the web service
  and the emulator (nanobanana is not on PyPI, so a pack that only named it could not install);
- ``requirements.txt``: what that library needs, which ComfyUI-Manager installs; the same list is
  ``[project] dependencies`` in ``pyproject.toml``, which also holds the registry's
  ``[tool.comfy]`` table;
- ``README.md``: install, keys, the two nodes.

Publishing to the registry needs ``--repository`` (the public source of the pack) and
``--publisher`` (your registry publisher id); then ``cd <out>/nanobanana-nodes && comfy node
publish``.  Only the standard library is used: this runs before any environment exists.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "src" / "nanobanana"
PACK_NAME = "nanobanana-nodes"  # the registry's node id and the custom_nodes folder's name
DISPLAY_NAME = "Nano Banana (Gemini and OpenRouter image models)"
DESCRIPTION = (
    "Generate and edit images in ComfyUI with Google's Gemini image models (Nano Banana) and "
    "OpenRouter's image models; keys stay out of workflows."
)
#: Parts of the library the nodes never load: the web service (it needs the server extra),
#: the emulator of the providers' APIs (``nanobanana emulator``, demo mode) and the MCP server.
LEFT_OUT = ("server", "emulator", "mcp")
#: Dependencies only those parts use.
LEFT_OUT_DEPENDENCIES = {"starlette", "uvicorn"}

INIT = '''"""Nano Banana nodes for ComfyUI: Generate and Edit with Google's Gemini image models
("Nano Banana") and OpenRouter's image models.  Keys come from the environment or the keys
file, never from the workflow: see README.md.

Built from nanobanana {version}; that library is in lib/ (it is not on PyPI).
"""

import os
import sys

if __name__ == "nanobanana":
    # ComfyUI imports a pack under its folder's name: this one would hide the library.
    sys.modules.pop(__name__, None)
    raise ImportError(
        "Rename the custom_nodes folder (e.g. to '{pack}'): a folder named "
        "'nanobanana' hides the nanobanana library the nodes need."
    )

_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
if "nanobanana" not in sys.modules and _LIB not in sys.path:
    sys.path.insert(0, _LIB)  # the library this pack was built with comes first

from nanobanana.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
'''

README = """# Nano Banana nodes for ComfyUI

**Nano Banana Generate** and **Nano Banana Edit**: images from Google's Gemini image models
(`gemini-3.1-flash-image`, `gemini-3-pro-image`, `gemini-2.5-flash-image`, ...) through
OpenRouter or Google's Gemini API, or through a nanobanana server.

Built from nanobanana {version}, whose library this folder carries in `lib/`.

## Install

- ComfyUI-Manager or `comfy node install {pack}`; or
- copy this folder into `ComfyUI/custom_nodes/` (any name but `nanobanana`) and run, with the
  Python that runs ComfyUI, `python -m pip install -r custom_nodes/{pack}/requirements.txt`.

Restart ComfyUI. The nodes are in the **Nano Banana** category.

## Keys: never in the workflow

The nodes have no key widget (ComfyUI saves widget values into workflows and PNGs). Keys come
from the environment ComfyUI starts in (`OPENROUTER_API_KEY`, `GEMINI_API_KEY`), or from the
keys file, written with the key typed hidden:

```
PYTHONPATH=custom_nodes/{pack}/lib python -m nanobanana keys set openrouter
```

or from a server profile (`python -m nanobanana profiles set NAME URL`, same `PYTHONPATH`):
the job then runs on that nanobanana server with the keys stored there for your account.

The full guide is docs/comfyui.md in the nanobanana repository.
"""

IGNORE = "__pycache__/\n*.pyc\n.ruff_cache/\nnode.zip\n"


def requirement_name(requirement: str) -> str:
    """The distribution name a PEP 508 requirement starts with, normalized (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"Not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of printable text is a TOML basic string


def pyproject(project: dict, dependencies: list[str], repository: str, publisher: str) -> str:
    lines = [
        "# The Comfy Registry's description of this pack (docs.comfy.org/registry/specifications).",
        "[project]",
        f"name = {toml_string(PACK_NAME)}",
        f"description = {toml_string(DESCRIPTION)}",
        f"version = {toml_string(project['version'])}",
        f"license = {{ text = {toml_string(project['license'])} }}",
        f"requires-python = {toml_string(project['requires-python'])}",
        "dependencies = [",
        *(f"  {toml_string(d)}," for d in dependencies),
        "]",
        "",
        "[project.urls]",
    ]
    if repository:
        lines.append(f"Repository = {toml_string(repository)}")
    lines += [
        "",
        "[tool.comfy]",
        f"PublisherId = {toml_string(publisher)}",
        f"DisplayName = {toml_string(DISPLAY_NAME)}",
        'Icon = ""',
        "",
    ]
    return "\n".join(lines)


def build(out: Path, repository: str = "", publisher: str = "") -> Path:
    """Write the pack folder under ``out`` (replacing an earlier one) and return it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dependencies = [
        d for d in project["dependencies"] if requirement_name(d) not in LEFT_OUT_DEPENDENCIES
    ]
    pack = out / PACK_NAME
    if pack.exists():
        shutil.rmtree(pack)
    shutil.copytree(
        LIBRARY,
        pack / "lib" / "nanobanana",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for part in LEFT_OUT:
        shutil.rmtree(pack / "lib" / "nanobanana" / part)
    version = project["version"]
    (pack / "__init__.py").write_text(INIT.format(version=version, pack=PACK_NAME), "utf-8")
    (pack / "README.md").write_text(README.format(version=version, pack=PACK_NAME), "utf-8")
    (pack / ".comfyignore").write_text(IGNORE, "utf-8")  # what `comfy node pack` leaves out
    (pack / "requirements.txt").write_text("\n".join([*dependencies, ""]), "utf-8")
    (pack / "pyproject.toml").write_text(
        pyproject(project, dependencies, repository, publisher), "utf-8"
    )
    return pack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "comfyui")
    parser.add_argument("--repository", default="", help="the pack's public source URL")
    parser.add_argument("--publisher", default="", help="your Comfy Registry publisher id")
    args = parser.parse_args(argv)
    pack = build(args.out, args.repository, args.publisher)
    print(f"Wrote {pack}")
    if not (args.repository and args.publisher):
        print(
            "To publish it to the Comfy Registry, build again with --repository URL and "
            "--publisher ID (make comfyui-pack REPOSITORY=URL PUBLISHER=ID), then run "
            "`comfy node publish` in that folder.",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
