"""The Python examples of docs/compat.md run as written, against a live service, with only the
base URL replaced (the token is the example's $NB_TOKEN); tests/docs runs them unchanged."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..support import image_size
from .conftest import OPENROUTER_CANARY, Live

pytestmark = pytest.mark.timeout(60)
DOC = Path(__file__).resolve().parents[2] / "docs" / "compat.md"
DOC_BASE = "http://127.0.0.1:8000"


def js_block(heading: str) -> str:
    """The one ``js`` block of the section under ``heading``."""
    section = DOC.read_text().split(f"\n{heading}\n", 1)[1].split("\n### ", 1)[0]
    [code] = re.findall(r"```js\n(.*?)```", section, flags=re.S)
    return code


def run_node(script: Path, cwd: Path, **env: str) -> str:
    """Run ``script`` with the machine's Node.js in ``cwd`` with only ``PATH`` and ``env``;
    its standard output (a failure shows its standard error)."""
    node = shutil.which("node")
    assert node, "Node.js (`node`) is needed for this test: install it (Debian: nodejs)."
    proc = subprocess.run(
        [node, str(script)],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def run_js_example(heading: str, live: Live, workdir: Path) -> str:
    """The ``js`` example under ``heading``, pointed at ``live`` and run in ``workdir`` by a new
    user with an OpenRouter key; that user's token."""
    code = js_block(heading)
    assert DOC_BASE in code and "process.env.NB_TOKEN" in code
    script = workdir / "example.mjs"
    script.write_text(code.replace(DOC_BASE, live.url))
    token = live.new_user(keys={"openrouter": OPENROUTER_CANARY})
    run_node(script, workdir, NB_TOKEN=token)
    return token


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_the_examples() -> None:
    blocks = python_blocks()
    assert len(blocks) == 4
    assert "requests.post" in blocks[0] and "stream=True" in blocks[0]
    assert "chat.completions.create" in blocks[1] and "stream=True" in blocks[1]
    assert "from openrouter import" in blocks[2] and "images.generate" in blocks[2]
    assert "images.generate" in blocks[3] and "images.edit" in blocks[3]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_python_example_runs(
    index: int, live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = live.new_user(keys={"openrouter": OPENROUTER_CANARY})
    code = python_blocks()[index]
    assert DOC_BASE in code and 'os.environ["NB_TOKEN"]' in code
    code = code.replace(DOC_BASE, live.url)
    monkeypatch.setenv("NB_TOKEN", token)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"docs/compat.md example {index + 1}", "exec"), {})
    written = {p.name: image_size(p.read_bytes()) for p in tmp_path.glob("*.png")}
    expected = {
        0: {"fox-0.png": (1344, 768), "owl.png": (1024, 1024)},
        1: {"fox.png": (1344, 768), "lighthouse.png": (512, 2048)},
        2: {"fox-0.png": (1344, 768), "fox-1.png": (1344, 768), "owl.png": (1024, 1024)},
        3: {"fox-0.png": (1344, 768), "fox-1.png": (1344, 768)},
    }[index]
    assert written == expected
    with live.http(token) as c:
        items = c.get("/api/generations").json()["items"]
    assert items and all(i["status"] == "succeeded" for i in items)
    assert {i["kind"] for i in items} == ({"openai"} if index == 3 else {"openrouter"})


def test_the_node_example_runs(live: Live, tmp_path: Path) -> None:
    """The Node.js example, run by the machine's ``node`` (its built-in ``fetch``), against
    the service: the images arrive in OpenRouter's object form and are written."""
    token = run_js_example("### Node.js (`fetch`)", live, tmp_path)
    assert image_size((tmp_path / "sunset-0.png").read_bytes()) == (1024, 1024)
    with live.http(token) as c:
        [item] = c.get("/api/generations").json()["items"]
    assert item["status"] == "succeeded" and item["kind"] == "openrouter"
