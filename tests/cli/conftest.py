"""Every CLI test runs with no real key, no real base URL and a keys file in a temp folder.

The developer's environment and keys file must never leak into a test: the key and base-URL
variables are removed, ``NANOBANANA_KEYS_FILE`` points into ``tmp_path``, and the working folder
(where images are saved by default) is ``tmp_path`` too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from nanobanana.cli.main import main

OPENROUTER_CANARY = "sk-or-v1-CANARY0123456789abcdef0123456789"
GEMINI_CANARY = "AIzaCANARY0123456789abcdefghijklmnopq"
NANOBANANA = Path(sys.executable).with_name("nanobanana")


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def isolated(isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The suite's ``isolated_env`` (no developer keys or settings; the keys file in
    ``tmp_path/config``), plain output, and a working folder of its own."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "keys.json"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``main(argv)`` in-process; return its exit code and what it printed."""

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_proc() -> Callable[..., Run]:
    """Run the installed ``nanobanana`` script in a subprocess with the isolated environment."""

    def run(
        args: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> Run:
        proc = subprocess.run(
            [str(NANOBANANA), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    return run
