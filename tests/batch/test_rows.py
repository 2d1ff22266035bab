"""Reading batch files: CSV and JSON Lines, defaults, checks, names and fingerprints."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage

from nanobanana import GenerationRequest
from nanobanana.batch import parse_rows, read_rows
from nanobanana.batch.rows import BatchRow, slugify
from nanobanana.errors import UsageError


def png(path: Path, color: tuple[int, int, int] = (10, 20, 30)) -> Path:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), color).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


def test_csv_columns_aliases_and_defaults(tmp_path: Path) -> None:
    png(tmp_path / "ref.png")
    f = tmp_path / "jobs.csv"
    f.write_text(
        "Prompt,Aspect Ratio,size,count,Negative,seed,images,name\n"
        "a fox in the snow,16:9,,2,blur,7,ref.png,fox\n"
        '"a cat, sleeping",,2K,,,,,\n'
        "\n",
        "utf-8",
    )
    rows = read_rows(
        f, GenerationRequest(prompt="", model="gemini-3-pro-image", image_size="1K", n=1)
    )
    assert len(rows) == 2
    fox, cat = rows
    assert (
        fox.request.prompt,
        fox.request.aspect_ratio,
        fox.request.image_size,
        fox.request.n,
    ) == (
        "a fox in the snow",
        "16:9",
        "1K",
        2,
    )
    assert (fox.request.negative_prompt, fox.request.seed, fox.name, fox.request.model) == (
        "blur",
        7,
        "fox",
        "gemini-3-pro-image",
    )
    # Relative reference paths are resolved against the batch file's folder, not the cwd.
    assert fox.request.images == (str((tmp_path / "ref.png").resolve()),)
    assert (cat.request.prompt, cat.request.image_size, cat.request.n, cat.name, cat.line) == (
        "a cat, sleeping",
        "2K",
        1,
        None,
        3,
    )
    assert cat.key == "0002"


def test_jsonl_and_json_array(tmp_path: Path) -> None:
    f = tmp_path / "jobs.jsonl"
    f.write_text(
        json.dumps({"prompt": "one", "n": 3, "seed": 5})
        + "\n\n"
        + json.dumps({"prompt": "two", "images": [], "aspect_ratio": None})
        + "\n",
        "utf-8",
    )
    rows = read_rows(f)
    assert [(r.request.prompt, r.request.n, r.request.seed, r.line) for r in rows] == [
        ("one", 3, 5, 1),
        ("two", 1, None, 3),
    ]
    arr = parse_rows(json.dumps([{"prompt": "x"}, {"prompt": "y"}]), fmt="jsonl")
    assert [r.request.prompt for r in arr] == ["x", "y"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("prompt,colour\nred fox,red\n", "unknown column 'colour'"),
        ("prompt,n\nfox,11\n", "line 2: n must be a whole number from 1 to 10"),
        ("prompt,n\nfox,two\n", "line 2: n must be a whole number"),
        ("prompt,seed\nfox,-1\n", "seed must be a whole number from 0"),
        ("prompt,name\n,x\n", "line 2: the prompt is empty"),
        ("prompt,name\nfox,../../etc/passwd\n", "name '../../etc/passwd' must be"),
        ("prompt,name\nfox,a\nfox,a\n", "line 3: the name 'a' is already used on line 2"),
        ("prompt,images\nfox,missing.png\n", "reference image 'missing.png' does not exist"),
        ("prompt\n", "has no rows"),
        ("prompt,model\nfox,x,extra\n", "3 cells but the header has 2"),
    ],
)
def test_bad_rows_are_refused_with_the_line(tmp_path: Path, text: str, fragment: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text, "utf-8")
    with pytest.raises(UsageError) as info:
        read_rows(f)
    assert fragment in str(info.value)


def test_every_bad_row_is_reported_at_once(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"prompt": ""}\n{"prompt": "ok"}\n{"prompt": "x", "n": 0}\nnot json\n', "utf-8")
    with pytest.raises(UsageError) as info:
        read_rows(f)
    assert "line 4: not valid JSON" in str(info.value)
    f.write_text('{"prompt": ""}\n{"prompt": "ok"}\n{"prompt": "x", "n": 0}\n', "utf-8")
    with pytest.raises(UsageError) as info:
        read_rows(f)
    assert "line 1" in str(info.value) and "line 3" in str(info.value)


def test_output_names_are_predictable() -> None:
    rows = parse_rows(
        "prompt,name,n\nÉté à Paris: a café!,,1\nsecond,,3\nthird,hero-shot,1\n", fmt="csv"
    )
    assert rows[0].file_name(0, ".png") == "0001-ete-a-paris-a-cafe.png"
    assert [rows[1].file_name(i, ".png") for i in range(3)] == [
        "0002-second-1.png",
        "0002-second-2.png",
        "0002-second-3.png",
    ]
    assert rows[2].file_name(0, ".jpg") == "hero-shot.jpg"
    assert slugify("x" * 100) == "x" * 40
    assert slugify("日本語") == ""


def test_fingerprint_follows_what_is_paid_for(tmp_path: Path) -> None:
    ref = png(tmp_path / "ref.png")
    base = "prompt,name,seed,images\nfox,a,1,ref.png\n"
    f = tmp_path / "b.csv"
    f.write_text(base, "utf-8")
    first = read_rows(f)[0].fingerprint
    assert read_rows(f)[0].fingerprint == first  # stable
    f.write_text("prompt,name,seed,images\nfox,a,2,ref.png\n", "utf-8")
    assert read_rows(f)[0].fingerprint != first  # a parameter changed
    f.write_text(base, "utf-8")
    png(ref, color=(200, 0, 0))
    assert read_rows(f)[0].fingerprint != first  # the reference image's content changed
    # Moving the whole folder changes nothing: references count by content.
    png(ref)
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "b.csv").write_text(base, "utf-8")
    png(moved / "ref.png")
    assert read_rows(moved / "b.csv")[0].fingerprint == first


def test_fingerprints_of_finished_rows_survive_upgrades() -> None:
    """Manifests keep fingerprints: the same row must keep its fingerprint across versions, or
    every finished row of every batch would be paid for again.  Values from the first
    manifests' format."""
    request = GenerationRequest(
        prompt="a fox", model="nano-banana-2", aspect_ratio="16:9", n=2, seed=3, images=("/x.png",)
    )
    row = BatchRow(index=1, line=2, request=request, image_ids=("abc",))
    assert row.fingerprint == "2af8e41607777537"
    assert (
        BatchRow(index=1, line=2, request=GenerationRequest(prompt="a fox")).fingerprint
        == "6011f328cd611ed9"
    )


def test_later_fields_count_only_when_asked_for() -> None:
    """A field added after the first manifests (thinking, google_search) leaves the
    fingerprint alone at its default and changes it once set."""
    plain = BatchRow(index=1, line=2, request=GenerationRequest(prompt="a fox")).fingerprint
    for change in ({"thinking": "high"}, {"google_search": True}):
        request = GenerationRequest(prompt="a fox", **change)  # type: ignore[arg-type]
        assert BatchRow(index=1, line=2, request=request).fingerprint != plain
