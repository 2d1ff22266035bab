"""The published package: the wheel ``make dist`` builds (and ``twine check`` passes), installed
with no extras into ``.venv-bare`` (``make bare-env``, part of ``make test``), as ``pip install
nanobanana`` would install it.  The library is typed there, the CLI works with the built-in
emulator, and the service says how to get what it lacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nanobanana import __version__
from nanobanana.emulator import EmulatorServer
from nanobanana.files import read_metadata

from ..core.test_client_emulator import async_client_without_with, run_quietly
from ..core.test_discovery import UNLISTED, discovery_script
from ..core.test_typing import MISSPELT, RIGHT
from ..support import clean_env

ROOT = Path(__file__).resolve().parents[2]
BARE_ENV = Path(os.environ.get("NANOBANANA_BARE_ENV", ROOT / ".venv-bare"))
DIST = ROOT / "dist"


def bare_bin(name: str) -> Path:
    path = BARE_ENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: `make bare-env` (part of `make test`) installs the wheel.")
    return path


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
        timeout=300,
        check=False,
    )


def test_the_wheel_and_sdist_are_built_with_what_the_package_needs() -> None:
    [wheel] = DIST.glob(f"nanobanana-{__version__}-py3-none-any.whl")
    assert (DIST / f"nanobanana-{__version__}.tar.gz").is_file()
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "nanobanana/py.typed",
        "nanobanana/server/web/static/js/api.js",
        "nanobanana/server/db/migrations/env.py",
    ):
        assert needed in names
    assert not any(n.startswith("tests/") for n in names)


def test_the_bare_install_has_no_extras() -> None:
    code = (
        "import importlib.util as u\n"
        "print([m for m in ('fastapi', 'sqlalchemy', 'torch') if u.find_spec(m)])"
    )
    out = run(bare_bin("python"), "-c", code)
    assert out.stdout.strip() == "[]", out.stderr
    installed = run(bare_bin("python"), "-c", "import nanobanana; print(nanobanana.__file__)")
    assert str(BARE_ENV) in installed.stdout  # the wheel's copy, not this checkout


def test_the_cli_generates_from_the_wheel(tmp_path: Path) -> None:
    made = run(
        bare_bin("nanobanana"), "generate", "a red fox", "--emulator", "-o", "fox.png", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    meta = read_metadata((tmp_path / "fox.png").read_bytes())
    assert meta["prompt"] == "a red fox" and meta["synthetic"] is True


def test_a_library_client_needs_no_close_in_the_wheel(emu: EmulatorServer) -> None:
    """An AsyncClient never closed, from the wheel with no extras: no unclosed session at
    exit (aiohttp's warnings are errors in that interpreter)."""
    python = str(bare_bin("python"))
    assert run_quietly(async_client_without_with(emu), python) == ["1", "1", "1", "1"]


def test_a_model_only_a_listing_has_works_from_the_wheel(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    out = run(bare_bin("python"), "-c", discovery_script(emu, tmp_path / "cache"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [UNLISTED, "1"]


def test_serve_says_how_to_add_the_service(tmp_path: Path) -> None:
    out = run(bare_bin("nanobanana"), "serve", "--port", "8999", cwd=tmp_path)
    assert out.returncode == 2
    assert "server extra" in out.stderr and "pip install '.[server]'" in out.stderr


@pytest.mark.parametrize(("script", "ok"), [(RIGHT, True), (MISSPELT, False)])
def test_mypy_strict_on_a_users_script_against_the_wheel(
    tmp_path: Path, script: str, ok: bool
) -> None:
    """The wheel's own py.typed and signatures: mypy (from the test tools) reads the bare
    install's site-packages, where nothing of this checkout is."""
    path = tmp_path / "script.py"
    path.write_text(script)
    checked = run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-incremental",
        "--python-executable",
        bare_bin("python"),
        path,
        cwd=tmp_path,
    )
    assert (checked.returncode == 0) is ok, checked.stdout + checked.stderr
    if not ok:
        assert 'Unexpected keyword argument "opnrouter_api_key"' in checked.stdout
        assert "import-untyped" not in checked.stdout


def test_mcp_says_how_to_add_the_mcp_extra(tmp_path: Path) -> None:
    out = run(bare_bin("nanobanana"), "mcp", "--emulator", cwd=tmp_path)
    assert out.returncode == 2
    assert "mcp extra" in out.stderr and "pip install 'nanobanana[mcp]'" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
