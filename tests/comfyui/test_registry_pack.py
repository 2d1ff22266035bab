"""The pack as the Comfy Registry and ComfyUI-Manager take it (scripts/comfyui_pack.py).

Built into a temporary folder, checked against the registry's pyproject specification and by
comfy-cli (``comfy node validate``, ``comfy node pack``), then the zip comfy-cli makes is
unpacked into a ``custom_nodes`` folder and run against the emulator in a fresh Python where the
installed nanobanana and every dependency the pack does not list cannot be imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import nanobanana

from .conftest import OPENROUTER_CANARY, generate_node

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT / "scripts" / "comfyui_pack.py"
REPOSITORY = "https://example.org/nanobanana"

#: Run in a fresh interpreter: only what the pack's requirements.txt names may be imported (plus
#: torch and numpy, which ComfyUI brings), and nanobanana only from the pack's own lib/.
GUARD = """
import importlib.machinery, json, sys
from pathlib import Path
folder = Path(sys.argv[1])
lib = str(folder / "lib")
BLOCKED = {blocked}

class Guard:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not required by the pack)")
        if top == "nanobanana":
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or not str(spec.origin).startswith(lib):
                where = spec and spec.origin
                raise ModuleNotFoundError(f"{{name}} from outside the pack: {{where}}")
            return spec
        return None

sys.meta_path.insert(0, Guard())
"""

LOAD_AND_RUN = """
import importlib.util
spec = importlib.util.spec_from_file_location(folder.name, folder / "__init__.py")
module = importlib.util.module_from_spec(spec)
sys.modules[folder.name] = module
spec.loader.exec_module(module)
node = module.NODE_CLASS_MAPPINGS["NanoBananaGenerate"]()
images, text, info = getattr(node, node.FUNCTION)(**json.loads(sys.argv[2]))
print(json.dumps({
    "nodes": sorted(module.NODE_DISPLAY_NAME_MAPPINGS.values()),
    "library": sys.modules["nanobanana"].__file__,
    "shape": list(images.shape),
    "info": json.loads(info),
}))
"""

IMPORT_ALL = """
import importlib, pkgutil
sys.path.insert(0, lib)
walked = pkgutil.walk_packages([lib + "/nanobanana"], "nanobanana.")
names = [m.name for m in walked if not m.name.endswith("__main__")]  # that one runs the CLI
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def blocked_modules(pack: Path) -> list[str]:
    """Top-level modules of installed distributions outside what the pack's requirements (and
    ComfyUI's torch and numpy) bring, with everything those require in turn."""
    wanted = [*(pack / "requirements.txt").read_text().split(), "torch", "numpy"]
    allowed: set[str] = set()
    while wanted:
        requirement = Requirement(wanted.pop())
        name = _name(requirement.name)
        if name in allowed:
            continue
        allowed.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for need in needs:
            r = Requirement(need)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                wanted.append(str(r.name) + "".join(f"[{e}]" for e in sorted(r.extras)))
        # an extra asked for (uvicorn[standard], say) adds its own requirements
        for extra in requirement.extras:
            for need in needs:
                r = Requirement(need)
                if r.marker is not None and r.marker.evaluate({"extra": extra}):
                    wanted.append(r.name)
    blocked = {
        module
        for module, dists in packages_distributions().items()
        if module != "nanobanana" and not {_name(d) for d in dists} & allowed
    }
    return sorted(blocked - set(sys.stdlib_module_names))


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("pack")
    proc = subprocess.run(
        [sys.executable, str(BUILDER), "--out", str(out), "--repository", REPOSITORY,
         "--publisher", "nanobanana"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    yield out / "nanobanana-nodes"


def comfy_cli(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "DO_NOT_TRACK": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(Path(sys.executable).parent / "comfy"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_pyproject_follows_the_registry_specification(built: Path) -> None:
    meta = tomllib.loads((built / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    name = project["name"]
    # docs.comfy.org/registry/specifications: under 100 characters, letters, digits, - _ . with
    # no two special characters in a row, starting with a letter; "ComfyUI" best left out.
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name)
    assert "comfyui" not in name.lower() and name != "nanobanana" and name == built.name
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["version"] == nanobanana.__version__
    assert project["license"] == {"text": "Apache-2.0"}
    assert project["urls"]["Repository"] == REPOSITORY
    assert comfy["PublisherId"] == "nanobanana" and comfy["DisplayName"]
    # ComfyUI-Manager installs requirements.txt; the registry reads dependencies: the same list.
    requirements = (built / "requirements.txt").read_text().split()
    assert project["dependencies"] == requirements
    library = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(requirements) <= set(library)
    assert not [r for r in requirements if _name(r) == "nanobanana"]  # not on PyPI: carried
    assert not (built / "lib" / "nanobanana" / "server").exists()


def test_comfy_cli_validates_and_packs_it(built: Path, tmp_path: Path) -> None:
    validated = comfy_cli(["node", "validate"], built, tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    said = validated.stdout + validated.stderr
    assert "Security warnings" not in said and "All validation checks passed" in said
    packed = comfy_cli(["node", "pack"], built, tmp_path)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    names = zipfile.ZipFile(built / "node.zip").namelist()
    assert {"__init__.py", "pyproject.toml", "requirements.txt", "README.md"} <= set(names)
    assert "lib/nanobanana/comfyui/nodes.py" in names
    assert not [n for n in names if "__pycache__" in n or ".ruff_cache" in n]


def test_the_registry_zip_runs_in_comfyui_with_only_its_requirements(
    built: Path, tmp_path: Path, emu_env: Any
) -> None:
    packed = comfy_cli(["node", "pack"], built, tmp_path)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    folder = tmp_path / "ComfyUI" / "custom_nodes" / "nanobanana-nodes"
    zipfile.ZipFile(built / "node.zip").extractall(folder)
    inputs = generate_node("a lighthouse at dusk", aspect_ratio="16:9")["inputs"]
    script = GUARD.format(blocked=blocked_modules(built)) + LOAD_AND_RUN
    proc = subprocess.run(
        [sys.executable, "-c", script, str(folder), json.dumps(inputs)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.splitlines()[-1])
    assert answer["nodes"] == ["Nano Banana Edit", "Nano Banana Generate"]
    assert answer["library"].startswith(str(folder / "lib" / "nanobanana"))
    batch, height, width, channels = answer["shape"]
    assert batch == 1 and channels == 3 and width > height  # 16:9, as asked
    assert answer["info"]["model"]
    assert OPENROUTER_CANARY not in proc.stdout + proc.stderr


def test_every_module_it_carries_imports_with_only_its_requirements(built: Path) -> None:
    script = GUARD.format(blocked=blocked_modules(built)) + IMPORT_ALL
    proc = subprocess.run(
        [sys.executable, "-c", script, str(built)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) > 30


def test_its_cli_stores_a_key_for_the_nodes(built: Path, tmp_path: Path) -> None:
    """The pack's README: ``PYTHONPATH=<pack>/lib python -m nanobanana keys set openrouter``."""
    keys = tmp_path / "keys.json"
    env = {**os.environ, "PYTHONPATH": str(built / "lib"), "NANOBANANA_KEYS_FILE": str(keys)}
    proc = subprocess.run(
        [sys.executable, "-m", "nanobanana", "keys", "set", "openrouter"],
        input=OPENROUTER_CANARY + "\n", env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert OPENROUTER_CANARY in keys.read_text()
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    assert OPENROUTER_CANARY not in proc.stdout + proc.stderr


def test_a_folder_named_nanobanana_is_refused_clearly(built: Path, tmp_path: Path) -> None:
    folder = tmp_path / "custom_nodes" / "nanobanana"
    shutil.copytree(built, folder)
    script = GUARD.format(blocked=[]) + LOAD_AND_RUN
    proc = subprocess.run(
        [sys.executable, "-c", script, str(folder), "{}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Rename the custom_nodes folder" in proc.stderr
