"""nanobanana: generate, verify and keep images from Gemini (Nano Banana) and OpenRouter models.

The public API is what ``__all__`` lists. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AsyncSession",
    "Client",
    "GenerationRequest",
    "Image",
    "PriorTurn",
    "Result",
    "Session",
    "Turn",
    "Usage",
    "__version__",
    "errors",
    "read_provenance",
]

if TYPE_CHECKING:
    from . import errors
    from .client import AsyncClient, Client
    from .conversation import AsyncSession, Session, Turn
    from .files import read_provenance
    from .request import GenerationRequest
    from .types import Image, PriorTurn, Result, Usage

_LAZY = {
    "AsyncClient": ("client", "AsyncClient"),
    "Client": ("client", "Client"),
    "AsyncSession": ("conversation", "AsyncSession"),
    "Session": ("conversation", "Session"),
    "Turn": ("conversation", "Turn"),
    "PriorTurn": ("types", "PriorTurn"),
    "GenerationRequest": ("request", "GenerationRequest"),
    "Image": ("types", "Image"),
    "Result": ("types", "Result"),
    "Usage": ("types", "Usage"),
    "read_provenance": ("files", "read_provenance"),
}


def __dir__() -> list[str]:
    """The public names too (they load on first use), for completion in a REPL or notebook."""
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    import importlib

    if name == "errors":
        return importlib.import_module(".errors", __name__)
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(name)
