"""``nanobanana chat``: a session typed (or piped) line by line, against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nanobanana.emulator import EmulatorServer

from .conftest import GEMINI_CANARY, OPENROUTER_CANARY
from .test_generate import generations, pngs, urls


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_CANARY)


SCRIPT = """a red fox in the snow
make the sky purple
/tree
/branch t1
make it autumn
/tree
/branch t9
/quit
never sent
"""


@pytest.mark.parametrize("provider", ["google", "openrouter"])
def test_a_piped_session_with_a_branch(
    cli_proc: Callable[..., Any], emu: EmulatorServer, keys: None, isolated: Path, provider: str
) -> None:
    r = cli_proc(
        ["chat", "-m", "gemini-3-pro-image", "-p", provider, "-o", "out", *urls(emu)],
        input=SCRIPT,
    )
    assert r.code == 0, r.err
    assert [p.name for p in pngs(isolated / "out")] == ["t1.png", "t2.png", "t3.png"]
    lines = r.out.splitlines()
    assert lines[0].startswith("t1: ") and f"({provider} gemini-3-pro-image" in lines[0]
    assert any(ln.startswith("t2 <- t1: ") for ln in lines)
    assert any(ln.startswith("t3 <- t1: ") for ln in lines)
    # The last tree: t2 and t3 both under t1, t3 the head.
    assert lines[-3:] == [
        "  t1  a red fox in the snow",
        "    t2  make the sky purple",
        "*   t3  make it autumn",
    ]
    assert "no turn 't9'" in r.err
    bodies = [g["body"] for g in generations(emu)]
    assert "never sent" not in str(bodies)
    if provider == "google":
        sent = [b["contents"] for b in bodies]
        assert [len(c) for c in sent] == [1, 3, 3]
        assert sent[2][0]["parts"][0]["text"] == "a red fox in the snow"
        assert sent[2][1]["role"] == "model"
        assert sent[2][2]["parts"][0]["text"] == "make it autumn"
    else:
        sent = [b["messages"] for b in bodies]
        assert [len(m) for m in sent] == [1, 3, 3]
        assert sent[2][0]["content"][0]["text"] == "a red fox in the snow"
        assert sent[2][1]["role"] == "assistant" and sent[2][1]["reasoning_details"]
        assert sent[2][2]["content"][-1]["text"] == "make it autumn"


def test_a_failed_turn_is_reported_and_the_session_goes_on(
    cli_proc: Callable[..., Any], emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    script = "a fox\n[emulator:safety] purple\nmake it night\n"
    r = cli_proc(
        ["chat", "-p", "google", "-m", "gemini-3-pro-image", "--no-fallback", *urls(emu)],
        input=script,
    )
    assert r.code == 0, r.err
    assert "turn not made" in r.err
    assert [ln.split(":")[0] for ln in r.out.splitlines() if ln.startswith("t")] == [
        "t1",
        "t2 <- t1",
    ]


def test_references_and_the_emulator_flag(cli_proc: Callable[..., Any], isolated: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(isolated / "red.png")
    r = cli_proc(
        ["chat", "--emulator", "-i", "red.png"], input="this, but blue\n/image red.png\nagain\n"
    )
    assert r.code == 0, r.err
    assert [p.name for p in pngs(isolated)] == ["red.png", "t1.png", "t2.png"]
    assert "synthetic" in r.err
