"""Give memory back to the system once a burst of generations is over.

Each generation allocates a few multi-megabyte buffers (the answer body, the decoded image, its
base64 for the response: ~10 MB for a 1K image, ~100 MB for a 4K one).  glibc serves the first
ones with ``mmap`` and unmaps them on free, but it raises its mmap threshold each time one is
freed, so from then on they come from the heap, where freed space stays mapped: after 200 1K
generations landed at once, RSS stayed ~180 MB above idle.  ``malloc_trim(0)`` returns those
free pages (measured: back to about +20 MB).  Pinning the threshold instead would unmap every buffer
and pay the page faults again on each generation (measured: ~3-4 ms of CPU per 1K image), so
the job manager calls ``release_free_memory`` once the service has been idle for a moment
(``JobManager``), which costs nothing while it is busy.

glibc's automatic trimming undid that between generations, though: the dynamic trim threshold is
twice the mmap threshold (a few MB), so every time the in-flight buffers were freed (at one
request at a time, after each generation) the top of the heap went back to the system and the
next generation faulted ~7 MB in again: ~1,900 page faults and ~6 ms of CPU per 1K generation.
``keep_buffers_mapped`` fixes both thresholds at start (mmap 32 MiB, glibc's own upper bound
for the dynamic one; trim 16 MiB, above one generation's buffers), so buffers are reused from
the heap.  The trim threshold stays low because ``malloc_trim`` cannot shrink the top of a
worker thread's arena: each of those keeps up to that much after a burst (measured with
128 MiB: +230 MB after 200 landings instead of +59 MB with 16 MiB).  The idle
``malloc_trim(0)`` still returns the rest once the service is quiet.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    # glibc only: musl and macOS have no malloc_trim (and keep no such free pages).
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system (glibc); True if it released any.

    Takes a few milliseconds on a fragmented heap: call it from a worker thread."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


#: mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 16 * 1024 * 1024


def keep_buffers_mapped() -> bool:
    """Fix glibc's mmap and trim thresholds (see the module docstring); True if set.

    Left alone when the environment already sets them (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``): an operator's choice wins."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    mallopt: Callable[[int, int], int] | None = getattr(libc, "mallopt", None)
    if mallopt is None or not hasattr(libc, "malloc_trim"):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def prepare_process() -> None:
    """What every service process (``serve``, each of its ``--workers``, ``worker``) sets once
    for itself: its log lines, and no page faults on every generation's buffers."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    keep_buffers_mapped()
