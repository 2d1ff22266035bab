"""``nanobanana batch FILE``: the command, its report, its checks, and stopping it for real.

The in-process tests build the command's parser with ``add_parser`` (as the CLI registers it);
the signal tests run it in a child process and stop it with SIGINT and SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nanobanana.batch import MANIFEST_NAME
from nanobanana.cli import batch as batch_cli
from nanobanana.cli.common import exit_code_for
from nanobanana.errors import NanobananaError

from .conftest import OPENROUTER_CANARY
from .support import calls_for, generation_calls

CHILD = (
    "import argparse, sys\n"
    "from nanobanana.cli import batch\n"
    "p = argparse.ArgumentParser(prog='nanobanana')\n"
    "batch.add_parser(p.add_subparsers())\n"
    "a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(a.func(a))\n"
)


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nanobanana")
    batch_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["batch", *argv])
    try:
        return int(args.func(args))
    except NanobananaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code_for(exc)


def write_csv(path: Path, prompts: list[str], header: str = "prompt") -> Path:
    path.write_text(header + "\n" + "\n".join(f'"{p}"' for p in prompts) + "\n", "utf-8")
    return path


def test_json_report_and_files(emu_env: Any, tmp_path: Path, capsys: Any) -> None:
    f = write_csv(tmp_path / "jobs.csv", ["row-01 a fox", "row-02 a cat"])
    code = cli([str(f), "--json", "-j", "2", "-a", "16:9"])
    out, err = capsys.readouterr()
    assert code == 0
    report = json.loads(out)  # stdout is the report and nothing else
    assert (report["total"], report["done"], report["failed"], report["complete"]) == (
        2,
        2,
        0,
        True,
    )
    folder = tmp_path / "jobs-images"
    assert report["output_dir"] == str(folder)
    assert [r["files"] for r in report["rows"]] == [
        ["0001-row-01-a-fox.png"],
        ["0002-row-02-a-cat.png"],
    ]
    assert all((folder / r["files"][0]).exists() for r in report["rows"])
    assert (folder / MANIFEST_NAME).exists()
    assert "done   0001: 0001-row-01-a-fox.png" in err  # one line per row off a terminal
    bodies = [json.dumps(r["body"]) for r in generation_calls(emu_env)]
    assert all('"aspect_ratio": "16:9"' in b for b in bodies)  # the default for empty cells
    assert OPENROUTER_CANARY not in out + err


def test_summary_table_and_exit_code_when_rows_fail(
    emu_env: Any, tmp_path: Path, capsys: Any
) -> None:
    f = write_csv(tmp_path / "jobs.csv", ["row-01 fine", "row-02 [emulator:safety]"])
    assert cli([str(f), "-o", str(tmp_path / "out")]) == 1
    out, _ = capsys.readouterr()
    assert "1 done · 0 done earlier · 1 failed · 0 pending" in out
    assert "content_blocked" not in out or "IMAGE_SAFETY" in out
    assert "IMAGE_SAFETY" in out and "Run the same command again" in out
    assert str(tmp_path / "out") in out.replace("\n", "")


def test_rows_are_checked_before_anything_is_paid_for(
    emu_env: Any, tmp_path: Path, capsys: Any
) -> None:
    f = tmp_path / "jobs.csv"
    f.write_text('prompt,aspect_ratio\n"ok",1:1\n"bad ratio",7:3\n', "utf-8")
    assert cli([str(f)]) == 2
    assert "line 3: Aspect ratio '7:3' is not supported" in capsys.readouterr().err
    f.write_text('prompt,colour\n"x",red\n', "utf-8")
    assert cli([str(f)]) == 2
    assert "unknown column 'colour'" in capsys.readouterr().err
    assert generation_calls(emu_env) == []
    assert not (tmp_path / "jobs-images").exists()


def test_every_problem_of_every_row_is_reported_in_one_run(
    emu_env: Any, tmp_path: Path, capsys: Any
) -> None:
    """An unknown column, an empty prompt, a ratio the model lacks, a misspelt model and a bad
    n: one run names them all, one line each, and nothing is sent."""
    from nanobanana.cli.main import main

    f = tmp_path / "jobs.csv"
    f.write_text(
        "prompt,colour,aspect_ratio,model,n\n"
        '"",red,,,\n'
        '"a fox",,7:3,gemini-3-pro-imag,\n'
        '"a cat",,7:3,,two\n'
        '"fine",,1:1,,\n',
        "utf-8",
    )
    assert main(["batch", str(f)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: jobs.csv has 5 problems; nothing was sent:"
    assert err[1].startswith("jobs.csv line 1: unknown column 'colour'.")
    assert err[2] == "jobs.csv line 2: the prompt is empty."
    assert err[3].startswith("jobs.csv line 3: Unknown model 'gemini-3-pro-imag'. Did you mean")
    assert err[4] == "jobs.csv line 4: n must be a whole number, not 'two'."
    assert err[5].startswith("jobs.csv line 4: Aspect ratio '7:3' is not supported")
    assert len(err) == 6
    assert generation_calls(emu_env) == []


def test_emulator_flag_needs_no_key(tmp_path: Path, capsys: Any) -> None:
    f = write_csv(tmp_path / "jobs.csv", ["a test card"])
    assert cli([str(f), "--emulator", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 1 and (tmp_path / "jobs-images" / "0001-a-test-card.png").exists()


def test_bad_options(tmp_path: Path, capsys: Any) -> None:
    f = write_csv(tmp_path / "jobs.csv", ["x"])
    assert cli([str(f), "--budget", "0"]) == 2
    assert cli([str(f), "-j", "0"]) == 2
    assert cli([str(f), "--emulator", "--server", "http://127.0.0.1:9"]) == 2
    capsys.readouterr()
    assert cli([str(f), "--emulator", "--gemini-base-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--emulator serves its own endpoints; drop --gemini-base-url" in err


# ------------------------------------------------------------------------- real signals
def _child(f: Path, emu: Any, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "OPENROUTER_API_KEY": OPENROUTER_CANARY,
        "OPENROUTER_BASE_URL": emu.openrouter_url,
        "GEMINI_BASE_URL": emu.gemini_url,
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, "batch", str(f), "-j", "2", "-o", str(tmp_path / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_done(manifest: Path, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if manifest.exists():
            text = manifest.read_text()
            if text.count('"status": "done"') >= count:
                return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} rows done in {timeout} s")


def _states(manifest: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in manifest.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "row":
            out[event["key"]] = event["status"]
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_resumes_without_paying_twice(
    emu_env: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    prompts = [f"row-{i:02d} a harbour [emulator:latency:0.3]" for i in range(1, 9)]
    f = write_csv(tmp_path / "jobs.csv", prompts)
    manifest = tmp_path / "out" / MANIFEST_NAME
    child = _child(f, emu_env, tmp_path)
    try:
        _wait_for_done(manifest, 2)
        child.send_signal(sig)
        code = child.wait(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    err = child.stderr.read() if child.stderr else ""
    states = _states(manifest)
    cut_off = [k for k, s in states.items() if s == "running"]
    if sig == signal.SIGINT:
        # Ctrl-C: no new rows, rows in flight finish and are kept; pending rows -> exit 1.
        assert code == 1, err
        assert "Stopping" in err
        assert cut_off == []
    else:
        assert code == -signal.SIGKILL
    done_before = [k for k, s in states.items() if s == "done"]
    assert len(done_before) >= 2
    # A row logged as running may have been killed before or after its request left.
    sent_cut_off = len(generation_calls(emu_env)) - len(done_before)
    assert 0 <= sent_cut_off <= len(cut_off)

    resumed = _child(f, emu_env, tmp_path)
    _, err = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, err
    assert set(_states(manifest).values()) == {"done"}
    for i, _ in enumerate(prompts, start=1):
        key = f"{i:04d}"
        # Done rows are never paid twice; only a call cut off by SIGKILL may be.
        assert calls_for(emu_env, f"row-{i:02d} ") in ((1, 2) if key in cut_off else (1,))
    assert len(generation_calls(emu_env)) == len(prompts) + sent_cut_off
    assert len(list((tmp_path / "out").glob("*.png"))) == 8


def test_sigkill_keeps_the_image_of_a_row_caught_half_done(emu_env: Any, tmp_path: Path) -> None:
    """A 2-image row whose first image came back, killed while the second is in flight: the
    image is on disk and in the manifest, and the next run pays for the other one only."""
    tag = f"t{time.monotonic_ns()}"
    f = tmp_path / "jobs.csv"
    f.write_text(f'prompt,n\n"half {tag} [emulator:stagger:60:{tag}]",2\n', "utf-8")
    out = tmp_path / "out"
    child = _child(f, emu_env, tmp_path)
    try:
        deadline = time.monotonic() + 20
        while not list(out.glob("0001-*.png")):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    [kept] = list(out.glob("0001-*.png"))
    events = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    recorded = {
        name for e in events if e.get("type") == "row" for name in e.get("files", {}).values()
    }
    assert kept.name in recorded
    assert calls_for(emu_env, f"half {tag}") == 2

    emu_env.reset()  # forgets the calls so far; the next call of that spec answers at once
    resumed = _child(f, emu_env, tmp_path)
    _, err = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, err
    assert calls_for(emu_env, f"half {tag}") == 1  # only the missing image was asked for
    assert len(list(out.glob("0001-*.png"))) == 2 and kept.exists()


def test_a_missing_key_stops_the_batch_before_it_starts(
    emu: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = write_csv(tmp_path / "jobs.csv", ["row-01 a fox"])
    monkeypatch.setenv("OPENROUTER_BASE_URL", emu.openrouter_url)
    assert cli([str(f)]) == 2
    assert "OPENROUTER_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    f.write_text('prompt,provider\n"row-01 a fox",google\n', "utf-8")
    assert cli([str(f)]) == 2
    assert "No google API key" in capsys.readouterr().err
    assert generation_calls(emu) == []
    assert not (tmp_path / "jobs-images").exists()


def test_progress_bar_shows_done_failed_and_cost(
    emu_env: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_cli, "stderr_is_tty", lambda: True)
    monkeypatch.setenv("COLUMNS", "160")
    f = write_csv(tmp_path / "jobs.csv", ["row-01 a fox", "row-02 [emulator:safety]"])
    assert cli([str(f), "--json"]) == 1
    err = capsys.readouterr().err
    # rich draws the final state of the bar when it stops (stderr is not a real terminal here)
    last = err.strip().splitlines()[-1]
    assert "jobs.csv" in last and "2/2" in last and "1 failed" in last
    assert re.search(r"\$0\.067\d", last)  # one image's cost so far
    assert "ETA" in last


def test_rows_may_name_the_design_notes_model_ids(
    emu_env: Any, tmp_path: Path, capsys: Any
) -> None:
    f = tmp_path / "jobs.csv"
    f.write_text(
        'prompt,model,provider\n"a fox",gemini-2.5-flash-image-preview,\n'
        '"a cat",google/gemini-3-pro-image-preview,\n',
        "utf-8",
    )
    assert cli([str(f), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 2
    models = [r["body"]["model"] for r in generation_calls(emu_env)]
    assert sorted(models) == [
        "google/gemini-2.5-flash-image",
        "google/gemini-3-pro-image-preview",
    ]


def test_a_variant_row_with_google_is_refused_before_anything_is_paid_for(
    emu_env: Any, tmp_path: Path, capsys: Any
) -> None:
    f = tmp_path / "jobs.csv"
    f.write_text('prompt,model,provider\n"a fox",gemini-3.1-flash-image:free,google\n', "utf-8")
    assert cli([str(f)]) == 2
    assert "line 2: ':free' is an OpenRouter model variant" in capsys.readouterr().err
    assert generation_calls(emu_env) == []


def test_rows_may_name_models_only_the_providers_list(
    emu_env: Any, tmp_path: Path, capsys: Any
) -> None:
    """A model the built-in catalog lacks is looked up in the listing before the rows are
    checked; an id no listing has is still refused before anything is paid for."""
    f = tmp_path / "jobs.csv"
    rows = '"a fox",openai/gpt-5-image-mini\n"a cat",black-forest-labs/flux.2-klein-4b\n'
    f.write_text("prompt,model\n" + rows + '"a typo",acme/painter\n', "utf-8")
    assert cli([str(f)]) == 2
    assert "line 4: Unknown model 'acme/painter'" in capsys.readouterr().err
    assert generation_calls(emu_env) == []
    f.write_text("prompt,model\n" + rows, "utf-8")
    assert cli([str(f), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 2
    sent = {r["body"]["model"]: r["body"]["modalities"] for r in generation_calls(emu_env)}
    assert sent == {
        "openai/gpt-5-image-mini": ["image", "text"],
        "black-forest-labs/flux.2-klein-4b": ["image"],
    }


def test_rows_carry_a_thinking_level_checked_before_anything_is_paid_for(
    emu_env: Any, tmp_path: Path, capsys: Any
) -> None:
    """A ``thinking`` cell (or ``--thinking`` for empty cells) is sent as OpenRouter's
    ``reasoning.effort``; a level the row's model does not take stops the run first."""
    f = tmp_path / "jobs.csv"
    f.write_text(
        'prompt,model,thinking\n"a fox",,high\n"a cat",gemini-3.1-flash-lite-image,low\n',
        "utf-8",
    )
    assert cli([str(f)]) == 2
    err = capsys.readouterr().err
    assert "line 3: Thinking level 'low' is not supported by gemini-3.1-flash-lite-image" in err
    assert generation_calls(emu_env) == []
    f.write_text('prompt,thinking\n"a fox",high\n"a cat",\n', "utf-8")
    assert cli([str(f), "--thinking", "minimal", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 2
    efforts = sorted(r["body"]["reasoning"]["effort"] for r in generation_calls(emu_env))
    assert efforts == ["high", "minimal"]


def test_rows_may_ask_for_google_search(emu_env: Any, tmp_path: Path, capsys: Any) -> None:
    f = tmp_path / "jobs.csv"
    f.write_text(
        'prompt,model,google_search\n"a fox",,yes\n"a cat",nano-banana-2-lite,yes\n'
        '"a dog",,maybe\n',
        "utf-8",
    )
    assert cli([str(f)]) == 2
    err = capsys.readouterr().err
    assert "line 3: gemini-3.1-flash-lite-image cannot ground its images" in err
    assert "line 4: google_search must be true or false, not 'maybe'." in err
    assert generation_calls(emu_env) == []
    f.write_text('prompt,google_search\n"a fox",yes\n"a cat",no\n', "utf-8")
    assert cli([str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 2
    plugins = sorted(str(r["body"].get("plugins")) for r in generation_calls(emu_env))
    assert plugins == ["None", "[{'id': 'web', 'engine': 'native'}]"]


def test_rows_may_carry_image_options(emu_env: Any, tmp_path: Path, capsys: Any) -> None:
    f = tmp_path / "jobs.csv"
    f.write_text(
        'prompt,provider,image_options\n"a fox",,"{""style"": ""Photorealism""}"\n'
        '"a cat",google,"{""style"": ""x""}"\n"a dog",,\n',
        "utf-8",
    )
    assert cli([str(f)]) == 2
    err = capsys.readouterr().err
    assert "line 3: Image options (style) are model-specific settings that only openrouter" in err
    assert generation_calls(emu_env) == []
    f.write_text(
        'prompt,image_options\n"a fox","{""style"": ""Photorealism""}"\n"a dog",\n', "utf-8"
    )
    assert cli([str(f), "--json", "--image-option", "style=Vector"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 2
    styles = sorted(r["body"]["image_config"]["style"] for r in generation_calls(emu_env))
    assert styles == ["Photorealism", "Vector"]
