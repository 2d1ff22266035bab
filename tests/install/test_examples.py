"""Every Python example of the README and docs/ passes ``mypy --strict`` as it is written.

A block that starts with an import begins an example; one that does not goes on with the
example before it on the same page (README's ``client.stream`` block uses the ``client`` of
the block above).  Examples of the library alone are checked against the wheel installed with
no extras (``.venv-bare``: ``pip install .`` and nothing else); those that use a published
client (``openai``, ``requests``) against the test tools' environment, which has them and
their type stubs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..docs.reader import ROOT, blocks_of
from .test_wheel import bare_bin

PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


@dataclass
class Example:
    page: str
    line: int
    parts: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def source(self) -> str:
        return "\n".join(self.parts)

    @property
    def imports(self) -> set[str]:
        found: set[str] = set()
        for node in ast.walk(ast.parse(self.source)):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.partition(".")[0])
        return found

    @property
    def library_only(self) -> bool:
        return self.imports <= {"nanobanana", *sys.stdlib_module_names}


def examples() -> list[Example]:
    found: list[Example] = []
    for page in PAGES:
        current: Example | None = None
        for block in blocks_of(page):
            if block.lang != "python":
                continue
            code = [ln.strip() for ln in block.text.splitlines()]
            first = next(ln for ln in code if ln and not ln.startswith("#"))
            if current is None or first.startswith(("import ", "from ")):
                current = Example(page, block.line)
                found.append(current)
            current.parts.append(textwrap.dedent(block.text))
    return found


EXAMPLES = examples()


def test_the_pages_have_examples_of_both_kinds() -> None:
    assert sum(e.library_only for e in EXAMPLES) >= 3
    assert sum(not e.library_only for e in EXAMPLES) >= 5


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, str]:
    """One ``mypy --strict`` run per environment over its examples, one file each: what it
    said, by the python it checked against."""
    said: dict[Path, str] = {}
    for library_only in (True, False):
        python = bare_bin("python") if library_only else Path(sys.executable)
        folder = tmp_path_factory.mktemp("bare" if library_only else "clients")
        for i, example in enumerate(EXAMPLES):
            if example.library_only is library_only:
                (folder / f"example_{i}.py").write_text(example.source)
        # A known error, to show the run checks these files and is read right.
        (folder / "example_wrong.py").write_text('count: int = "three"\n')
        mypy = [sys.executable, "-m", "mypy", "--strict", "--no-incremental"]
        checked = subprocess.run(
            [*mypy, "--python-executable", str(python), "."],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=600,
        )
        said[python] = checked.stdout + checked.stderr
        assert checked.returncode == 1, said[python]
        wrong = "example_wrong.py:1: error: Incompatible types"
        assert any(ln.startswith(wrong) for ln in said[python].splitlines()), said[python]
    return said


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=lambda i: EXAMPLES[i].name)
def test_the_example_passes_mypy_strict(mypy_output: dict[Path, str], index: int) -> None:
    example = EXAMPLES[index]
    python = bare_bin("python") if example.library_only else Path(sys.executable)
    errors = [
        ln for ln in mypy_output[python].splitlines() if ln.startswith(f"example_{index}.py:")
    ]
    assert not errors, f"{example.name}\n" + "\n".join(errors)
