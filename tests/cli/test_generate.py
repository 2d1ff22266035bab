"""``nanobanana generate`` / ``edit`` against the emulator: files, provenance, JSON, errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image as PILImage

from nanobanana.catalog import DEFAULT_MODEL
from nanobanana.emulator import EmulatorServer
from nanobanana.files import read_metadata
from nanobanana.transport import PROXY_VARIABLES

from .conftest import GEMINI_CANARY, NANOBANANA, OPENROUTER_CANARY


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_CANARY)


def urls(emu: EmulatorServer) -> list[str]:
    return ["--openrouter-base-url", emu.openrouter_url, "--gemini-base-url", emu.gemini_url]


def pngs(folder: Path) -> list[Path]:
    """The images saved (not a temporary file being written)."""
    return sorted(p for p in folder.glob("*.png") if not p.name.startswith("."))


def generations(emu: EmulatorServer) -> list[dict]:
    return [r for r in emu.requests() if r["method"] == "POST"]


def test_generate_writes_a_png_of_the_right_size_with_provenance(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a red fox in the snow", "-a", "16:9", "-o", "fox.png", *urls(emu))
    assert r.code == 0, r.err
    data = (isolated / "fox.png").read_bytes()
    with PILImage.open(io.BytesIO(data)) as img:
        assert img.size == (1344, 768)
        img.load()  # the whole image decodes
    meta = read_metadata(data)
    assert meta["prompt"] == "a red fox in the snow"
    assert meta["model"] == DEFAULT_MODEL
    assert meta["provider"] == "openrouter"
    assert meta["aspect_ratio"] == "16:9"
    assert OPENROUTER_CANARY.encode() not in data and GEMINI_CANARY.encode() not in data
    assert b"CANARY" not in data
    assert "Saved fox.png (1344x768 PNG)" in r.out
    assert OPENROUTER_CANARY not in r.out + r.err

    info = cli("info", "fox.png", "--json")
    assert info.code == 0
    assert json.loads(info.out)["provenance"] == meta
    # the request carried the key in the header it belongs in, and nowhere else
    (req,) = generations(emu)
    assert req["auth_header"] == "authorization" and req["api_key"] == OPENROUTER_CANARY
    assert not req["key_in_query"]


def test_json_result_shape_has_everything_but_image_bytes(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    # An old model by its alias: the answer also carries its shutdown warning.
    argv = ["a lighthouse", "-m", "nano-banana", "-s", "1k", "--seed", "42", "--json"]
    r = cli("generate", *argv, *urls(emu))
    assert r.code == 0, r.err
    assert len(r.out) < 10_000  # a 1K PNG is ~1 MB of base64: none of it is here
    out = json.loads(r.out)
    assert {
        "files",
        "model",
        "provider",
        "cost",
        "usage",
        "attempts",
        "warnings",
        "text",
        "elapsed_s",
        "synthetic",
    } <= set(out)
    (f,) = out["files"]
    assert Path(f["path"]).parent == isolated and Path(f["path"]).exists()
    assert (f["width"], f["height"], f["mime_type"]) == (1024, 1024, "image/png")
    assert f["bytes"] == Path(f["path"]).stat().st_size
    assert out["image_size"] == "1K"  # "1k" normalised
    assert out["seed"] == 42
    assert out["provider"] == "openrouter"
    assert out["cost"] is not None and out["usage"]["cost"] == out["cost"]
    assert [a["status"] for a in out["attempts"]] == ["ok"]
    assert out["synthetic"] is False
    assert out["model"] == "gemini-2.5-flash-image"
    assert any("shutdown date" in w for w in out["warnings"])
    assert (
        "warning: gemini-2.5-flash-image is past its announced shutdown date (2026-10-02) and "
        "may be refused at any time; use gemini-3.1-flash-image." in r.err
    )


def test_thinking_is_sent_kept_and_checked(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a fox", "--thinking", "high", "-o", "fox.png", "--json", *urls(emu))
    assert r.code == 0, r.err
    assert json.loads(r.out)["thinking"] == "high"
    [call] = generations(emu)
    assert call["body"]["reasoning"] == {"effort": "high"}
    assert read_metadata((isolated / "fox.png").read_bytes())["thinking"] == "high"
    info = cli("info", "fox.png")
    assert info.code == 0 and "high" in info.out
    r = cli("generate", "a fox", "-m", "nano-banana-2-lite", "--thinking", "low", *urls(emu))
    assert r.code == 2
    assert "Thinking level 'low' is not supported by gemini-3.1-flash-lite-image" in r.err
    assert len(generations(emu)) == 1


def test_google_search_is_sent_kept_and_checked(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a fox", "--google-search", "-p", "google", "--json", *urls(emu))
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["google_search"] is True
    assert out["grounding"]["queries"] == ["a fox"] and len(out["grounding"]["sources"]) == 2
    [call] = generations(emu)
    assert call["body"]["tools"] == [{"googleSearch": {}}]
    # Without --json the pages are listed after the summary.
    r = cli("generate", "a fox", "--google-search", "-p", "google", *urls(emu))
    assert r.code == 0, r.err
    assert "Searched: a fox" in r.out + r.err and "Source: example.com <https://" in r.out + r.err
    emu.reset()
    r = cli("generate", "a fox", "-m", "nano-banana-2-lite", "--google-search", *urls(emu))
    assert r.code == 2
    assert "cannot ground its images in Google Search" in r.err
    assert generations(emu) == []


def test_image_options_are_sent_kept_and_checked(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli(
        "generate", "a fox", "--json", "-o", "fox.png",
        "--image-option", "style=Photorealism",
        "--image-option", "strength=0.7",
        "--image-option", "rgb_colors=[[255, 0, 0]]",
        "--image-option", 'code="123"',
        *urls(emu),
    )  # fmt: skip
    assert r.code == 0, r.err
    options = {"style": "Photorealism", "strength": 0.7, "rgb_colors": [[255, 0, 0]], "code": "123"}
    assert json.loads(r.out)["image_options"] == options
    [call] = generations(emu)
    assert call["body"]["image_config"] == options
    assert read_metadata((isolated / "fox.png").read_bytes())["image_options"] == options
    r = cli("info", "fox.png")
    assert r.code == 0 and "image_options" in r.out and "Photorealism" in r.out
    emu.reset()
    for bad, says in [
        ("style", "--image-option takes KEY=VALUE, such as style=Photorealism"),
        ("transparent=true", "Image option transparent is bool"),
        ("aspect_ratio=16:9", "set aspect_ratio, not an image option"),
    ]:
        r = cli("generate", "a fox", "--image-option", bad, *urls(emu))
        assert r.code == 2 and says in r.err, r.err
    r = cli("generate", "a fox", "-p", "google", "--image-option", "style=x", *urls(emu))
    assert r.code == 2 and "only openrouter passes on" in r.err
    assert generations(emu) == []


def test_n3_writes_three_distinct_files(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "three pears", "-n", "3", "-o", "pears/", "--json", *urls(emu))
    assert r.code == 0, r.err
    out = json.loads(r.out)
    files = pngs(isolated / "pears")
    assert len(files) == 3 == len(out["files"])
    assert {Path(f["path"]).name for f in out["files"]} == {p.name for p in files}
    assert sorted(read_metadata(p.read_bytes())["index"] for p in files) == [0, 1, 2]
    assert len(generations(emu)) == 3


def test_negative_prompt_is_folded_and_recorded(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a garden", "--negative", "people", "--json", *urls(emu))
    out = json.loads(r.out)
    assert out["prompt"] == "a garden"
    assert out["negative_prompt"] == "people"
    assert "a garden" in out["effective_prompt"] and "people" in out["effective_prompt"]
    sent = json.dumps(generations(emu)[0]["body"])
    assert "Avoid the following in the image: people" in sent


def test_edit_sends_the_reference_first_text_then_image(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    PILImage.new("RGB", (64, 48), "navy").save(isolated / "ref.png")
    r = cli("edit", "ref.png", "make it sunset orange", "-o", "edited.png", *urls(emu))
    assert r.code == 0, r.err
    assert (isolated / "edited.png").exists()
    assert read_metadata((isolated / "edited.png").read_bytes())["prompt"] == (
        "make it sunset orange"
    )
    (req,) = generations(emu)
    content = req["body"]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "make it sunset orange"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_edit_with_a_missing_reference_is_a_usage_error(
    cli, emu: EmulatorServer, keys: None
) -> None:
    r = cli("edit", "nope.png", "make it blue", *urls(emu))
    assert r.code == 2
    assert r.err.count("\n") == 1 and "nope.png does not exist" in r.err
    assert generations(emu) == []


def test_stream_prints_the_text_as_it_arrives(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a kite", "--stream", *urls(emu))
    assert r.code == 0, r.err
    assert r.out.startswith("Here is a synthetic image for: a kite")
    assert len(pngs(isolated)) == 1
    assert generations(emu)[0]["body"]["stream"] is True


def test_streamed_texts_of_several_images_each_say_which_image(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a kite", "--stream", "-n", "2", *urls(emu))
    assert r.code == 0, r.err
    said = [line for line in r.out.splitlines() if line.startswith("[image ")]
    assert sorted(line[:9] for line in said) == ["[image 1]", "[image 2]"]
    assert all("Here is a synthetic image for: a kite" in line for line in said)


def test_interleaved_texts_are_told_apart() -> None:
    import io

    from nanobanana.cli.generate import _TextStreamer
    from nanobanana.types import TextDelta

    streamer = _TextStreamer(None, to_stderr=True, n=2)
    streamer.out = io.StringIO()
    for index, text in ((0, "A fox "), (1, "A whale "), (1, "in the sea."), (0, "in snow.")):
        streamer.on_event(TextDelta(text, index=index))
    streamer.finish()
    assert streamer.out.getvalue() == (
        "[image 1] A fox \n[image 2] A whale in the sea.\n[image 1] in snow.\n"
    )
    single = _TextStreamer(None, to_stderr=True)
    single.out = io.StringIO()
    single.on_event(TextDelta("Just this."))
    assert single.out.getvalue() == "Just this."


def test_gemini_provider_and_key_header(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a cat", "-p", "gemini", "-a", "9:16", "--json", *urls(emu))
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["provider"] == "google"
    assert (out["files"][0]["width"], out["files"][0]["height"]) == (768, 1344)
    assert out["cost_is_estimate"] is True
    (req,) = generations(emu)
    assert ":generateContent" in req["path"]
    assert req["auth_header"] == "x-goog-api-key" and not req["key_in_query"]


def test_base_url_flow_decodes_files(
    cli, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    """The seed's flow: chat completions at a base URL -> message.images -> decoded files."""
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    r = cli("generate", "a boat", "--base-url", emu.openrouter_url, "-n", "2")
    assert r.code == 0, r.err
    files = pngs(isolated)
    assert len(files) == 2
    for p in files:
        with PILImage.open(p) as img:
            assert img.size == (1024, 1024)
    assert [q["path"] for q in generations(emu)] == ["/api/v1/chat/completions"] * 2


def test_base_url_follows_the_chosen_provider(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a boat", "-p", "google", "--base-url", emu.gemini_url)
    assert r.code == 0, r.err
    assert "via google" in r.out
    assert [q["service"] for q in generations(emu)] == ["gemini"]


def test_emulator_option_needs_no_key(cli_proc, isolated: Path) -> None:
    r = cli_proc(["generate", "a synthetic test card", "--emulator", "-s", "1K"])
    assert r.code == 0, r.err
    (path,) = pngs(isolated)
    assert "synthetic" in r.err
    assert "synthetic" in r.out
    info = cli_proc(["info", path.name, "--json"])
    assert json.loads(info.out)["provenance"]["synthetic"] is True


def test_emulator_option_never_sends_real_keys(
    cli, monkeypatch: pytest.MonkeyPatch, keys: None, isolated: Path
) -> None:
    started: list[EmulatorServer] = []

    class Spy(EmulatorServer):
        def start(self) -> EmulatorServer:
            started.append(self)
            return super().start()

    monkeypatch.setattr("nanobanana.emulator.EmulatorServer", Spy)
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:9/unused")
    r = cli("generate", "a card", "--emulator", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["synthetic"] is True
    (emu,) = started
    sent = [q["api_key"] for q in emu.requests() if q["method"] == "POST"]
    assert sent and not any("CANARY" in k for k in sent)


def test_quota_per_day_exits_3_with_one_line(
    cli_proc, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli_proc(["generate", "a fox [emulator:quota-day]", "-p", "openrouter", *urls(emu)])
    assert r.code == 3
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "429" in lines[0]
    assert "Traceback" not in r.err
    assert pngs(isolated) == []
    assert len(generations(emu)) == 1  # a daily quota is not retried


def test_safety_block_exits_4_with_the_reason(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a fox [emulator:safety]", "-p", "google", *urls(emu))
    assert r.code == 4
    assert r.err.startswith("error: ") and "IMAGE_SAFETY" in r.err
    assert r.err.count("\n") == 1
    assert pngs(isolated) == []


def test_text_only_answer_exits_4_and_shows_what_the_model_said(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a fox [emulator:text-only]", "--json", *urls(emu))
    assert r.code == 4
    err = json.loads(r.out)["error"]
    assert err["code"] == "no_image" and err["exit_code"] == 4
    assert "synthetic text answer" in err["text"]
    assert [a["status"] for a in err["attempts"]] == ["no_image"]


def test_fallback_is_reported_as_progress_and_warning(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    # Google refuses three times (its retries), the fourth request, on OpenRouter, succeeds.
    r = cli("generate", "a fox [emulator:flaky:3:429:fb]", "-p", "google", "--json", *urls(emu))
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["provider"] == "openrouter" and out["fallback_used"] is True
    assert [(a["provider"], a["status"]) for a in out["attempts"]] == [
        ("google", "error"),
        ("google", "error"),
        ("google", "error"),
        ("openrouter", "ok"),
    ]
    progress = [line for line in r.err.splitlines() if "attempt failed" in line]
    assert progress[:2] == [progress[0]] * 2 and progress[0].endswith("(retried)")
    assert progress[2].endswith("(fell back to openrouter)")
    assert "warning: google failed; the image came from the fallback provider." in r.err


#: Runs the CLI with httpx unimportable: what a user's install has (google-genai 3.x depends on
#: httpx2, not httpx; only the test tools bring httpx).
WITHOUT_HTTPX = (
    "import sys; sys.modules['httpx'] = None; "
    "from nanobanana.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def run_without_httpx(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_HTTPX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_google_quota_falls_back_without_httpx_installed(
    emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    prompt = "a fox [emulator:flaky:3:429:nohttpx]"
    proc = run_without_httpx("generate", prompt, "-p", "google", "--json", *urls(emu))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["provider"] == "openrouter" and out["fallback_used"] is True


def test_google_refusal_without_httpx_is_an_error_not_a_crash(
    emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    prompt = "a fox [emulator:flaky:3:429:nohttpx2]"
    proc = run_without_httpx("generate", prompt, "-p", "google", "--no-fallback", *urls(emu))
    assert proc.returncode == 3, proc.stderr
    assert "429" in proc.stderr


def test_no_fallback_keeps_to_the_first_provider(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli(
        "generate", "a fox [emulator:flaky:3:429:nofb]", "-p", "google", "--no-fallback", *urls(emu)
    )
    assert r.code == 3
    sent = generations(emu)
    assert len(sent) == 3  # Google's three attempts, then nothing
    assert {q["service"] for q in sent} == {"gemini"}
    assert pngs(isolated) == []


def test_size_mismatch_is_a_warning(cli, emu: EmulatorServer, keys: None, isolated: Path) -> None:
    r = cli("generate", "a fox [emulator:size:640x480]", "-a", "4:3", *urls(emu))
    assert r.code == 0, r.err
    assert "warning: Image 1 is 640x480; 4:3 at 1K should be 1184x864." in r.err


def test_existing_output_file_is_refused_before_any_call(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    (isolated / "fox.png").write_bytes(b"precious")
    r = cli("generate", "a fox", "-o", "fox.png", *urls(emu))
    assert r.code == 2 and "--force" in r.err
    assert generations(emu) == []
    assert (isolated / "fox.png").read_bytes() == b"precious"


def test_subprocess_generate_against_the_emulator(
    cli_proc, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli_proc(["generate", "a pier at dusk", "-a", "3:2", "-o", "out/pier.png", *urls(emu)])
    assert r.code == 0, r.err
    with PILImage.open(isolated / "out" / "pier.png") as img:
        assert img.size == (1248, 832)
    assert "Saved out/pier.png (1248x832 PNG)" in r.out


def test_on_a_terminal_the_live_line_stays_on_stderr_and_text_on_stdout(
    cli, emu: EmulatorServer, keys: None, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.setattr("nanobanana.cli.generate.stderr_is_tty", lambda: True)
    monkeypatch.setattr("nanobanana.cli.generate.stdout_is_tty", lambda: True)
    r = cli("generate", "a kite [emulator:latency:0.4]", "--stream", *urls(emu))
    assert r.code == 0, tty.getvalue()
    assert "Generating 1 image" in tty.getvalue()  # the live line was drawn on stderr
    assert r.out.startswith("Here is a synthetic image for: a kite")
    assert "Generating" not in r.out and "\x1b[" not in r.out


def test_emulator_option_refuses_other_endpoints(cli, isolated: Path) -> None:
    r = cli("generate", "a fox", "--emulator", "--openrouter-base-url", "http://127.0.0.1:9")
    assert r.code == 2 and "serves its own endpoints; drop --openrouter-base-url " in r.err


def test_output_folder_that_is_a_file_is_refused_before_any_call(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    (isolated / "blocker").write_text("a file")
    r = cli("generate", "a fox", "-o", "blocker/fox.png", *urls(emu))
    assert r.code == 2 and "not a folder" in r.err
    assert generations(emu) == []


def test_output_that_cannot_be_written_is_refused_before_the_call(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a fox", "-o", "/proc/fox.png", *urls(emu))
    assert r.code == 2 and r.err.startswith("error: Cannot create a file in /proc")
    r = cli("generate", "a fox", "-o", "fox.jpg", *urls(emu))
    assert r.code == 2 and "name a .png file" in r.err
    assert generations(emu) == [] and pngs(isolated) == []


def ctrl_c_when(args: list[str], ready: Callable[[], bool]) -> tuple[int, str, str]:
    """Run ``nanobanana ARGS``, press Ctrl-C once ``ready()``; (exit code, stdout, stderr)."""
    proc = subprocess.Popen(
        [str(NANOBANANA), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_ctrl_c_while_waiting_exits_130_without_a_traceback(
    emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    code, out, err = ctrl_c_when(
        ["generate", "a fox [emulator:latency:20]", *urls(emu)],
        lambda: bool(generations(emu)),  # the request is in flight
    )
    assert code == 130
    assert err.strip().splitlines() == ["error: interrupted."]
    assert out == "" and pngs(isolated) == []


def test_ctrl_c_keeps_the_images_that_had_arrived(
    emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    """Two images, the second 60 s behind the first: Ctrl-C once the first is in keeps it, with
    its provenance (it was paid for)."""
    tag = uuid.uuid4().hex
    code, _out, err = ctrl_c_when(
        ["generate", f"a fox [emulator:stagger:60:{tag}]", "-n", "2", *urls(emu)],
        lambda: bool(pngs(isolated)),  # the first image has been saved
    )
    assert code == 130 and "interrupted" in err
    [saved] = pngs(isolated)  # whichever of the two calls was answered first
    meta = read_metadata(saved.read_bytes())
    assert tag in meta["prompt"] and meta["provider"] == "openrouter"
    assert saved.name.endswith(f"-{meta['index'] + 1}.png")


def test_images_saved_on_arrival_get_the_whole_provenance_at_the_end(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a fox", "-n", "2", *urls(emu))
    assert r.code == 0, r.err
    files = pngs(isolated)
    assert len(files) == 2
    for f in files:
        meta = read_metadata(f.read_bytes())
        assert meta["cost"] is not None and "elapsed_s" in meta and meta["fallback"]


IMPORTED_AIOHTTP = (
    "import sys\n"
    "from nanobanana.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print('aiohttp imported:', 'aiohttp' in sys.modules)\n"
    "sys.exit(code)\n"
)


def _generate_in_python(
    emu: EmulatorServer, env: dict[str, str], out: str
) -> subprocess.CompletedProcess[str]:
    argv = ["generate", "a lighthouse", "-p", "openrouter", "-o", out, *urls(emu)]
    return subprocess.run(
        [sys.executable, "-c", IMPORTED_AIOHTTP, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _without_proxies() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES | {"no_proxy"}}


def test_one_generation_sends_without_importing_aiohttp(
    emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    # aiohttp's import alone takes longer than a local 1K generation: a one-shot command
    # sends with the standard library when no proxy is configured.
    r = _generate_in_python(emu, _without_proxies(), "plain.png")
    assert r.returncode == 0, r.stderr
    assert "aiohttp imported: False" in r.stdout
    with PILImage.open(isolated / "plain.png") as img:
        assert img.size == (1024, 1024)
    assert len(generations(emu)) == 1


def test_a_configured_proxy_is_honoured(
    emu: EmulatorServer, keys: None, isolated: Path, closed_port: int
) -> None:
    # With a proxy in the environment the call goes through aiohttp, which honours it: here
    # the proxy is a closed port, so nothing reaches the emulator.
    env = {**_without_proxies(), "HTTP_PROXY": f"http://127.0.0.1:{closed_port}"}
    r = _generate_in_python(emu, env, "proxied.png")
    assert r.returncode != 0 and "Could not connect" in r.stderr
    assert "aiohttp imported: True" in r.stdout
    assert generations(emu) == [] and not (isolated / "proxied.png").exists()


def test_the_design_notes_model_id_generates_with_a_warning(
    cli, emu: EmulatorServer, keys: None, isolated: Path
) -> None:
    r = cli("generate", "a fox", "-m", "openrouter/gemini-2.5-flash-image-preview", *urls(emu))
    assert r.code == 0, r.err
    assert (
        "warning: 'openrouter/gemini-2.5-flash-image-preview' is a retired preview id; using "
        "'gemini-2.5-flash-image': write 'gemini-2.5-flash-image' instead." in r.err
    )
    assert len(pngs(isolated)) == 1
