"""glibc keeps a generation's buffers between generations (``memory.keep_buffers_mapped``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nanobanana.server import memory

# A generation's buffers in miniature: an answer body, a PNG, its copy with metadata, a
# base64 answer.  Run in a fresh interpreter: the allocator settings are process-wide.
_FAULTS_PER_ROUND = """
import resource, sys
from nanobanana.server.memory import keep_buffers_mapped
if sys.argv[1] == "on":
    assert keep_buffers_mapped()
def generation():
    body = bytes(1_740_000); png = bytearray(1_300_000); out = bytes(png) + b"x"
    answer = bytearray(body)
    return len(body) + len(out) + len(answer)
for _ in range(5):
    generation()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    generation()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def _faults(mode: str) -> float:
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* settings from the outer environment
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_PER_ROUND, mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return float(out.stdout.strip())


@pytest.mark.skipif(memory._malloc_trim() is None, reason="glibc only (mallopt)")
def test_buffers_are_reused_without_page_faults() -> None:
    # glibc's defaults return the freed buffers and fault them in again each round (~1,800
    # faults for ~7 MB); with the thresholds fixed the heap keeps them.
    assert _faults("off") > 500
    assert _faults("on") < 50


def test_allocator_thresholds_left_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert memory.keep_buffers_mapped() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    expected = memory._malloc_trim() is not None  # glibc: mallopt accepts both values
    assert memory.keep_buffers_mapped() is expected
