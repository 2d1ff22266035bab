"""Nano Banana nodes for ComfyUI.

Two ways to install (see docs/comfyui.md): ``pip install nanobanana`` into ComfyUI's Python,
then either copy or symlink this folder into ``ComfyUI/custom_nodes/`` (under any name but
``nanobanana``), or put a one-line ``custom_nodes/nanobanana_nodes.py`` there::

    from nanobanana.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

Importing this package loads neither torch nor an HTTP client; the nodes do when they run.
"""

from __future__ import annotations

if __name__ == "nanobanana":
    # Loaded by ComfyUI from a folder named "nanobanana": that name would hide the library.
    # Give the name back, so other nodes can still import the real library.
    import sys

    sys.modules.pop(__name__, None)
    raise ImportError(
        "Rename the custom_nodes folder (e.g. to 'nanobanana-comfyui'): a folder named "
        "'nanobanana' hides the nanobanana library the nodes need."
    )

try:
    import nanobanana.catalog as _catalog  # noqa: F401 (fails early with a clear message)
except ImportError as _exc:
    raise ImportError(
        "The Nano Banana nodes need the nanobanana library in ComfyUI's Python: run "
        "`python -m pip install nanobanana` with that interpreter."
    ) from _exc

from .nodes import NanoBananaEdit, NanoBananaGenerate

NODE_CLASS_MAPPINGS = {
    "NanoBananaGenerate": NanoBananaGenerate,
    "NanoBananaEdit": NanoBananaEdit,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "NanoBananaGenerate": "Nano Banana Generate",
    "NanoBananaEdit": "Nano Banana Edit",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
