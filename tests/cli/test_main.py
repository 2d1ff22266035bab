"""The command tree itself: help is fast and light, usage errors exit 2, Ctrl-C exits 130."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nanobanana.cli import main as main_mod
from nanobanana.errors import QuotaError

HEAVY = ("aiohttp", "PIL", "google.genai", "fastapi", "rich", "starlette", "uvicorn", "pydantic")


@pytest.mark.parametrize(
    "argv", [["--help"], ["generate", "--help"], ["models", "--help"], ["keys", "set", "--help"]]
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from nanobanana.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    rc = main({argv!r})\n"
        "import json\n"
        "print(json.dumps({'rc': rc, 'help': out.getvalue(), 'mods': sorted(sys.modules)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    data = json.loads(proc.stdout)
    assert data["rc"] == 0
    assert "usage: nanobanana" in data["help"]
    loaded = [m for m in data["mods"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []


def test_python_dash_m_and_version(cli_proc) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nanobanana", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("nanobanana ")
    r = cli_proc(["--help"])
    assert r.code == 0 and "generate" in r.out and "keys" in r.out


def test_no_command_and_bad_option_are_usage_errors(cli) -> None:
    assert cli().code == 2
    r = cli("generate", "a fox", "-n", "many")
    assert r.code == 2
    assert "invalid int value" in r.err


def test_mistakes_typed_at_a_terminal_get_the_nearest_fix(cli) -> None:
    """As a person types them: a misspelt option, an unquoted prompt, a misspelt model id."""
    r = cli("generate", "a fox", "--emulater")
    assert r.code == 2
    assert r.err.splitlines() == [
        "nanobanana generate: error: generate has no option '--emulater'. "
        "Did you mean '--emulator'?",
        "Run 'nanobanana generate --help' for its options.",
    ]
    r = cli("generate", "a", "fox", "--emulator", "--sead", "3")
    assert r.code == 2
    assert "unexpected argument 'fox' (quote a value that has spaces)" in r.err
    assert "Did you mean '--seed'?" in r.err and "'3'" not in r.err  # 3 was --sead's value
    r = cli("models", "--provder", "google")
    assert r.code == 2 and "Did you mean '--provider'?" in r.err
    r = cli("generate", "a fox", "--emulator", "-m", "gemini-3-pro-imag")
    assert r.code == 2
    assert "Did you mean 'gemini-3-pro-image'?" in r.err and "recraft" not in r.err
    r = cli("generate", "a fox", "--emulator", "-m", "nano-banan")
    assert "'nano-banana' or 'nano-banana-2'" in r.err
    r = cli("generate", "a fox", "--emulator", "-m", "something-else-entirely")
    assert "Known models: gemini-2.5-flash-image" in r.err  # nothing near: the whole list


def test_validation_error_is_one_line_exit_2_before_any_call(cli, monkeypatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-CANARYnotused0000")
    # An unreachable base URL: a request would fail with exit 3, validation stops it first.
    r = cli(
        "generate",
        "a fox",
        "-m",
        "gemini-2.5-flash-image",
        "-s",
        "4K",
        "--openrouter-base-url",
        "http://127.0.0.1:9/api/v1",
    )
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Allowed: 1K" in lines[0]
    assert "CANARY" not in r.err


def test_missing_key_names_the_env_var_and_the_keys_command(cli_proc) -> None:
    r = cli_proc(["generate", "a fox"])
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "OPENROUTER_API_KEY" in lines[0]
    assert "nanobanana keys set" in lines[0]
    assert "Traceback" not in r.err
    assert r.out == ""
    assert list(Path.cwd().iterdir()) == []


def test_missing_key_for_google_names_gemini_vars(cli) -> None:
    r = cli("generate", "a fox", "-p", "gemini")
    assert r.code == 2
    assert "GEMINI_API_KEY" in r.err and "nanobanana keys set google" in r.err


def test_missing_key_in_json_mode_also_prints_a_json_error(cli) -> None:
    r = cli("generate", "a fox", "--json")
    assert r.code == 2
    err = json.loads(r.out)["error"]
    assert err["code"] == "missing_api_key" and err["exit_code"] == 2
    assert "OPENROUTER_API_KEY" in err["message"]


def test_keyboard_interrupt_exits_130(cli, monkeypatch) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(main_mod.keys, "run_list", interrupted)
    r = cli("keys", "list")
    assert r.code == 130
    assert "Traceback" not in r.err


def test_upstream_errors_map_to_exit_3(cli, monkeypatch) -> None:
    def quota(args: object) -> int:
        raise QuotaError("Daily quota exhausted; try tomorrow.", provider="google", per_day=True)

    monkeypatch.setattr(main_mod.keys, "run_list", quota)
    r = cli("keys", "list")
    assert r.code == 3
    assert r.err == "error: Daily quota exhausted; try tomorrow.\n"
