"""Where image bytes live: the ``ImageStore`` interface and its local implementation."""

from __future__ import annotations

from .base import ImageStore
from .local import LocalImageStore

__all__ = ["ImageStore", "LocalImageStore"]
