"""Batch tests run against the emulator with canary keys, isolated from the developer's setup.

Every variable that could bring a real key, a real base URL, a keys file, a server token or a
profiles file into a test is removed; the keys and profiles files point into ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nanobanana.batch import BatchRunner, LocalExecutor, Manifest
from nanobanana.client import AsyncClient

OPENROUTER_CANARY = "sk-or-v1-CANARY-batch-0123456789abcdef"
GEMINI_CANARY = "AIzaCANARY-batch-0123456789abcdefghij"


@pytest.fixture
def emu_env(emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The process environment pointing the library at the emulator, with a canary key."""
    emu.reset()
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", emu.openrouter_url)
    monkeypatch.setenv("GEMINI_BASE_URL", emu.gemini_url)
    return emu


def make_client(emu: Any, **kw: Any) -> AsyncClient:
    return AsyncClient(
        api_keys={"openrouter": OPENROUTER_CANARY},
        base_urls={"openrouter": emu.openrouter_url, "google": emu.gemini_url},
        env={},
        use_keys_file=False,
        **kw,
    )


async def run_batch(
    rows: list[Any],
    out: Path,
    emu: Any,
    *,
    runner_hook: Any = None,
    **kw: Any,
) -> Any:
    """Run ``rows`` locally against the emulator into ``out``; returns the report."""
    with Manifest.open(out, source="test.csv") as manifest:
        executor = LocalExecutor(make_client(emu))
        runner = BatchRunner(
            rows, executor=executor, manifest=manifest, output_dir=out, source="test.csv", **kw
        )
        if runner_hook is not None:
            runner_hook(runner)
        try:
            return await runner.run()
        finally:
            await executor.aclose()
