"""Batch generation from a CSV or JSON Lines file: resumable, budgeted, local or on a server.

``read_rows`` checks the file, ``Manifest`` remembers what is done, ``BatchRunner`` runs what is
left through an ``Executor`` (``LocalExecutor`` for the library, ``ServerExecutor`` for a
nanobanana server).  ``nanobanana batch FILE`` is the command-line face.
"""

from __future__ import annotations

from .executors import Executor, LocalExecutor, RowOutcome, ServerExecutor
from .manifest import MANIFEST_NAME, Manifest, RowState
from .rows import BatchRow, named_models, parse_rows, read_rows
from .runner import BatchProgress, BatchReport, BatchRunner, RowReport

__all__ = [
    "MANIFEST_NAME",
    "BatchProgress",
    "BatchReport",
    "BatchRow",
    "BatchRunner",
    "Executor",
    "LocalExecutor",
    "Manifest",
    "RowOutcome",
    "RowReport",
    "RowState",
    "ServerExecutor",
    "named_models",
    "parse_rows",
    "read_rows",
]
