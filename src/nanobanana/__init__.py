"""nanobanana: generate, verify and keep images from Gemini (Nano Banana) and OpenRouter models.

The public API is what ``__all__`` lists. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "Image",
    "Result",
    "Usage",
    "__version__",
    "errors",
]

if TYPE_CHECKING:
    from . import errors
    from .client import AsyncClient, Client
    from .types import Image, Result, Usage

_LAZY = {
    "AsyncClient": ("client", "AsyncClient"),
    "Client": ("client", "Client"),
    "Image": ("types", "Image"),
    "Result": ("types", "Result"),
    "Usage": ("types", "Usage"),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "errors":
        return importlib.import_module(".errors", __name__)
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(name)
