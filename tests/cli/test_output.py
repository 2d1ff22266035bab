"""Output naming: explicit files are refused before the call, existing files are never replaced."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image as PILImage

from nanobanana.cli.output import OutputTarget
from nanobanana.errors import UsageError
from nanobanana.files import read_metadata, write_new_file
from nanobanana.types import Image


def _png(w: int = 8, h: int = 4) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), "orange").save(buf, format="PNG")
    return buf.getvalue()


def _image(index: int = 0, mime: str = "image/png") -> Image:
    return Image(_png(), mime, 8, 4, index=index, metadata={"prompt": "p", "index": index})


def test_default_names_are_timestamped_in_the_current_folder(isolated: Path) -> None:
    target = OutputTarget.parse(None)
    saved = target.save([_image(0), _image(1)], n=2, stamp="20250101-120000")
    assert [s.path.name for s in saved] == [
        "nanobanana-20250101-120000-1.png",
        "nanobanana-20250101-120000-2.png",
    ]
    assert all(s.path.parent == isolated for s in saved)
    assert read_metadata(saved[1].path.read_bytes())["index"] == 1


def test_existing_default_name_gets_the_next_free_name(isolated: Path) -> None:
    taken = isolated / "nanobanana-20250101-120000-1.png"
    taken.write_bytes(b"precious")
    saved = OutputTarget.parse(None).save([_image()], n=1, stamp="20250101-120000")
    assert saved[0].path.name == "nanobanana-20250101-120000-1-2.png"
    assert saved[0].renamed_from == taken
    assert taken.read_bytes() == b"precious"


def test_explicit_existing_file_is_refused_before_the_call(isolated: Path) -> None:
    (isolated / "fox.png").write_bytes(b"precious")
    with pytest.raises(UsageError, match="--force"):
        OutputTarget.parse("fox.png").precheck(1)
    (isolated / "many-2.png").write_bytes(b"precious")
    with pytest.raises(UsageError, match=r"many-2\.png"):
        OutputTarget.parse("many.png").precheck(3)
    OutputTarget.parse("fox.png", force=True).precheck(1)


def test_force_overwrites_the_explicit_file(isolated: Path) -> None:
    (isolated / "fox.png").write_bytes(b"old")
    saved = OutputTarget.parse("fox.png", force=True).save([_image()], n=1)
    assert saved[0].path == isolated / "fox.png"
    assert (isolated / "fox.png").read_bytes().startswith(b"\x89PNG")


def test_file_that_appears_during_the_call_is_kept(isolated: Path) -> None:
    target = OutputTarget.parse("fox.png")
    target.precheck(1)
    (isolated / "fox.png").write_bytes(b"appeared meanwhile")
    saved = target.save([_image()], n=1)
    assert saved[0].path == isolated / "fox-2.png"
    assert (isolated / "fox.png").read_bytes() == b"appeared meanwhile"


def test_folder_targets_and_numbered_files(isolated: Path) -> None:
    saved = OutputTarget.parse("out/").save([_image(0)], n=1, stamp="S")
    assert saved[0].path == isolated / "out" / "nanobanana-S-1.png"
    saved = OutputTarget.parse("shots").save([_image(0), _image(2)], n=3, stamp="S")
    assert [s.path.name for s in saved] == ["nanobanana-S-1.png", "nanobanana-S-3.png"]
    saved = OutputTarget.parse("sub/fox.png").save([_image(0), _image(1)], n=2)
    assert [s.path.relative_to(isolated).as_posix() for s in saved] == [
        "sub/fox-1.png",
        "sub/fox-2.png",
    ]


def test_a_png_is_never_saved_under_a_jpeg_name(isolated: Path) -> None:
    saved = OutputTarget.parse("fox.jpg").save([_image()], n=1)
    assert saved[0].path.name == "fox.png"


def test_write_leaves_no_temp_files_and_normal_permissions(isolated: Path) -> None:
    path = write_new_file(isolated / "a.png", b"data")
    assert path.read_bytes() == b"data"
    assert [p.name for p in isolated.iterdir()] == ["a.png"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # what open() gives
