"""Saving results from the library: the CLI's rules (never replace a file unless asked, the
permissions ``open()`` gives), and reading a saved PNG's provenance back."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import nanobanana
from nanobanana import read_provenance

from .fakes import FakeProvider
from .test_client import KEYS


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def result(n: int = 2) -> nanobanana.Result:
    with nanobanana.Client(
        api_keys=KEYS,
        env={},
        use_keys_file=False,
        providers={"openrouter": FakeProvider("openrouter"), "google": FakeProvider("google")},
    ) as client:
        return client.generate("a fox", n=n)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_second_save_keeps_the_first(tmp_path: Path, umask_027: None) -> None:
    first = result().save(tmp_path / "out")
    second = result().save(tmp_path / "out")
    assert [p.name for p in first] == ["image-1.png", "image-2.png"]
    assert [p.name for p in second] == ["image-1-2.png", "image-2-2.png"]
    assert {p.read_bytes() for p in first} != set() and all(p.exists() for p in first)
    # What open() would give under this umask (0o640), not a private 0o600.
    assert {mode(p) for p in first + second} == {0o640}
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_a_file_name_is_never_replaced_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "fox.png"
    target.write_bytes(b"mine")
    [saved] = result(1).save(target)
    assert saved.name == "fox-2.png" and target.read_bytes() == b"mine"
    image = result(1).images[0]
    assert image.save(target) == tmp_path / "fox-3.png"
    assert image.save(target, overwrite=True) == target
    assert target.read_bytes() == (tmp_path / "fox-3.png").read_bytes()


def test_the_provenance_of_a_saved_png_is_read_back(tmp_path: Path) -> None:
    r = result(1)
    [saved] = r.save(tmp_path)
    meta = read_provenance(saved)
    assert meta["prompt"] == "a fox" and meta["provider"] == r.provider
    assert meta["cost"] == r.cost and meta["cost_is_estimate"] == r.cost_is_estimate
    assert read_provenance(saved.read_bytes()) == meta
    plain = tmp_path / "plain.png"
    r.images[0].save(plain, metadata=False)
    assert read_provenance(plain) == {}
