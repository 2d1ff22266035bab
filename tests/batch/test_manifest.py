"""The manifest: an append-only log whose last event per row is the row's state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nanobanana.batch import MANIFEST_NAME, Manifest
from nanobanana.errors import UsageError


def test_events_are_replayed_on_open(tmp_path: Path) -> None:
    with Manifest.open(tmp_path, source="a.csv") as m:
        m.record("0001", "f1", "running")
        m.record("0001", "f1", "failed", error="boom", error_code="upstream_unavailable", cost=0.01)
        m.record("0001", "f1", "running")
        m.record("0001", "f1", "done", files={0: "0001-a.png"}, cost=0.04)
        m.record("0002", "f2", "submitted", job_id="job-9")
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert json.loads(lines[0])["type"] == "batch"
    again = Manifest.open(tmp_path, source="a.csv")
    try:
        one, two = again.states["0001"], again.states["0002"]
        assert (one.status, one.files, one.failures) == ("done", {0: "0001-a.png"}, 1)
        assert (two.status, two.job_id) == ("submitted", "job-9")
        assert again.recorded_cost == pytest.approx(0.05)
        assert again.source == "a.csv"
    finally:
        again.close()


def test_new_parameters_start_the_row_afresh(tmp_path: Path) -> None:
    with Manifest.open(tmp_path, source="a.csv") as m:
        m.record("k", "old", "done", files={0: "k.png"}, cost=0.04)
        state = m.record("k", "new", "running")
        assert state.files == {} and state.failures == 0
        assert m.recorded_cost == pytest.approx(0.04)  # what was paid stays paid


def test_a_torn_last_line_is_ignored_but_damage_elsewhere_is_not(tmp_path: Path) -> None:
    with Manifest.open(tmp_path, source="a.csv") as m:
        m.record("k", "f", "done", files={0: "k.png"})
    path = tmp_path / MANIFEST_NAME
    with path.open("a") as fh:
        fh.write('{"type": "row", "key": "j", "fingerp')  # killed mid-write
    with Manifest.open(tmp_path, source="a.csv") as m:
        assert set(m.states) == {"k"}
        m.record("j", "f", "done", files={0: "j.png"})  # starts on a line of its own
    with Manifest.open(tmp_path, source="a.csv") as m:
        assert set(m.states) == {"k", "j"}
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0], "garbage", *text[1:]]) + "\n")
    with pytest.raises(UsageError, match="line 2 is damaged"):
        Manifest.open(tmp_path, source="a.csv")


def test_an_image_is_logged_before_it_shows_under_its_name(tmp_path: Path) -> None:
    with Manifest.open(tmp_path, source="a.csv") as m:
        m.stage("k-1.png", b"first")
        assert not (tmp_path / "k-1.png").exists()  # staged, not yet logged
        state = m.land("k", "f", "running", {0: "k-1.png"})
        assert state.files == {0: "k-1.png"}
        assert (tmp_path / "k-1.png").read_bytes() == b"first"
        assert {p.name for p in tmp_path.iterdir()} == {MANIFEST_NAME, "k-1.png"}


def test_an_image_logged_but_not_yet_renamed_is_put_in_place_on_open(tmp_path: Path) -> None:
    """A run killed between the log line and the rename: the paid image is kept."""
    with Manifest.open(tmp_path, source="a.csv") as m:
        m.stage("k-2.png", b"paid for")
        m.record("k", "f", "running", files={1: "k-2.png"})  # what land() does before renaming
    assert not (tmp_path / "k-2.png").exists()
    with Manifest.open(tmp_path, source="a.csv") as m:
        assert m.states["k"].files == {1: "k-2.png"}
    assert (tmp_path / "k-2.png").read_bytes() == b"paid for"
    assert {p.name for p in tmp_path.iterdir()} == {MANIFEST_NAME, "k-2.png"}


def test_a_logged_rewrite_not_yet_renamed_replaces_the_earlier_file(tmp_path: Path) -> None:
    """An image saved on arrival, then staged again with the whole provenance and logged as
    done, killed before the rename: the logged version is the one kept."""
    with Manifest.open(tmp_path, source="a.csv") as m:
        m.stage("k-1.png", b"on arrival")
        m.land("k", "f", "running", {0: "k-1.png"})
        m.stage("k-1.png", b"with provenance")
        m.record("k", "f", "done", files={0: "k-1.png"})
    with Manifest.open(tmp_path, source="a.csv"):
        pass
    assert (tmp_path / "k-1.png").read_bytes() == b"with provenance"
    assert {p.name for p in tmp_path.iterdir()} == {MANIFEST_NAME, "k-1.png"}
