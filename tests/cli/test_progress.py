"""The progress display: what it says while waiting, and where it says it."""

from __future__ import annotations

import io
import re
import time

import pytest

from nanobanana.cli.progress import Progress
from nanobanana.types import Attempt, AttemptEvent, Image, ImageEvent


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def attempt(provider: str, status: str = "ok", index: int = 0) -> AttemptEvent:
    return AttemptEvent(
        Attempt(
            provider=provider,
            model="m",
            status=status,  # type: ignore[arg-type]
            index=index,
            error=None if status == "ok" else "HTTP 429\nquota",
            error_code=None if status == "ok" else "quota_exceeded",
        )
    )


def test_line_shows_elapsed_images_attempts_and_fallback() -> None:
    p = Progress(live=False, n=2, label="Generating 2 images")
    p.on_event(attempt("google", "error"))
    p.on_event(attempt("openrouter"))
    p.on_event(ImageEvent(Image(b"", "image/png", 1, 1)))
    line = p._line()
    assert line.startswith("Generating 2 images · ")
    assert line.endswith(
        " s · 1/2 images · fallback google → openrouter · 2 attempts, 1 failed"
        " · last: google quota_exceeded"
    )


def test_plain_mode_reports_failures_once_the_next_step_is_known(
    capsys: pytest.CaptureFixture[str],
) -> None:
    p = Progress(live=False, n=1, label="x")
    p.on_event(attempt("google", "error"))
    assert capsys.readouterr().err == ""  # not yet known whether a retry follows
    p.on_event(attempt("google", "error"))
    p.on_event(attempt("openrouter", "error"))
    p.stop()  # the last failure is the run's error line, not a progress line
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "google attempt failed [quota_exceeded]: HTTP 429 quota (retried)",
        "google attempt failed [quota_exceeded]: HTTP 429 quota (fell back to openrouter)",
    ]


def test_live_display_draws_on_stderr_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tty = FakeTty()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.setenv("COLUMNS", "200")
    p = Progress(live=True, n=1, label="Generating 1 image")
    p.start()
    p.on_event(attempt("google", "error"))
    time.sleep(0.3)  # a few refreshes at 8 per second
    p.stop()
    drawn = tty.getvalue()
    assert "Generating 1 image" in drawn
    assert "1 attempt, 1 failed · last: google quota_exceeded" in drawn
    assert "attempt failed" not in drawn  # no plain lines while the live line is up
    assert capsys.readouterr().out == ""


def test_live_line_never_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeTty()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.setenv("COLUMNS", "40")
    p = Progress(live=True, n=3, label="Generating 3 images with a long label")
    p.start()
    p.on_event(attempt("google", "error"))
    p.stop()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.getvalue())
    frames = [line for line in re.split(r"[\r\n]", text) if line.strip()]
    # every frame is one cut line: no continuation lines carrying the rest
    assert frames and all(f[2:].startswith("Generating") and f.endswith("…") for f in frames)
    assert all(len(f) <= 40 for f in frames)
