"""Nano Banana nodes for ComfyUI.

Installs (see docs/comfyui.md): the registry pack (``make comfyui-pack``), which carries the
library; or the library installed from its folder into ComfyUI's Python
(``python -m pip install /path/to/nanobanana``), then this folder copied or symlinked into
``ComfyUI/custom_nodes/`` (under any name but ``nanobanana``), or a one-line
``custom_nodes/nanobanana_nodes.py``::

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
        "The Nano Banana nodes need the nanobanana library in ComfyUI's Python: install it "
        "from its folder with that interpreter (`python -m pip install /path/to/nanobanana`), "
        "or use the registry pack, which carries it (`make comfyui-pack`, docs/comfyui.md)."
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
