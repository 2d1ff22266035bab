"""``nanobanana keys``: stored with mode 0600, listed masked, removed; the canary never shows."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from .conftest import GEMINI_CANARY, OPENROUTER_CANARY


def test_set_from_stdin_writes_a_0600_file_and_never_echoes_the_key(
    cli, keys_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(OPENROUTER_CANARY + "\n"))
    r = cli("keys", "set", "openrouter")
    assert r.code == 0, r.err
    assert OPENROUTER_CANARY not in r.out + r.err
    assert "sk-…" in r.out
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    assert json.loads(keys_path.read_text()) == {"openrouter": OPENROUTER_CANARY}


def test_set_with_argument_warns_about_shell_history(cli, keys_path: Path) -> None:
    r = cli("keys", "set", "gemini", GEMINI_CANARY)
    assert r.code == 0
    assert "shell history" in r.err
    # "gemini" is stored under the canonical provider name
    assert json.loads(keys_path.read_text()) == {"google": GEMINI_CANARY}
    assert GEMINI_CANARY not in r.out + r.err


def test_set_prompts_with_getpass_on_a_terminal(
    cli, keys_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return GEMINI_CANARY

    monkeypatch.setattr("sys.stdin", Tty(""))
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    r = cli("keys", "set", "google")
    assert r.code == 0
    assert prompts and "google" in prompts[0]
    assert json.loads(keys_path.read_text()) == {"google": GEMINI_CANARY}


def test_list_is_masked_and_shows_where_each_key_comes_from(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("keys", "set", "openrouter", OPENROUTER_CANARY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_CANARY)
    r = cli("keys", "list")
    assert r.code == 0
    assert OPENROUTER_CANARY not in r.out and GEMINI_CANARY not in r.out
    assert OPENROUTER_CANARY[-4:] in r.out and GEMINI_CANARY[-4:] in r.out
    lines = {line.split()[0]: line for line in r.out.splitlines()[1:] if line.strip()}
    assert "keys file" in lines["openrouter"]
    assert "$GEMINI_API_KEY" in lines["google"]


def test_list_without_keys_names_the_fix(cli) -> None:
    r = cli("keys", "list")
    assert r.code == 0
    assert "nanobanana keys set openrouter" in r.out
    assert "nanobanana keys set google" in r.out


def test_remove_deletes_only_that_provider(cli, keys_path: Path) -> None:
    cli("keys", "set", "openrouter", OPENROUTER_CANARY)
    cli("keys", "set", "google", GEMINI_CANARY)
    r = cli("keys", "remove", "google")
    assert r.code == 0
    assert json.loads(keys_path.read_text()) == {"openrouter": OPENROUTER_CANARY}
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    again = cli("keys", "remove", "google")
    assert again.code == 2
    assert again.err.startswith("error: No google key is stored")
    assert len(again.err.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", ["", "   ", "two words"])
def test_set_refuses_empty_or_spaced_keys(cli, keys_path: Path, bad: str) -> None:
    r = cli("keys", "set", "openrouter", bad)
    assert r.code == 2
    assert not keys_path.exists()


def test_unknown_provider_is_a_usage_error(cli) -> None:
    r = cli("keys", "set", "openai", "x" * 20)
    assert r.code == 2
    assert "Unknown provider" in r.err and "Traceback" not in r.err


def test_stored_key_is_used_by_the_client(cli, keys_path: Path) -> None:
    from nanobanana.providers import resolve_provider_configs

    cli("keys", "set", "openrouter", OPENROUTER_CANARY)
    configs = resolve_provider_configs(env={"NANOBANANA_KEYS_FILE": str(keys_path)})
    assert configs["openrouter"].api_key == OPENROUTER_CANARY


def test_subprocess_set_list_remove(cli_proc, keys_path: Path) -> None:
    r = cli_proc(["keys", "set", "openrouter"], input=OPENROUTER_CANARY + "\n")
    assert r.code == 0, r.err
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    listed = cli_proc(["keys", "list"])
    assert OPENROUTER_CANARY not in listed.out + listed.err
    assert OPENROUTER_CANARY[-4:] in listed.out
    assert cli_proc(["keys", "remove", "openrouter"]).code == 0
    assert json.loads(keys_path.read_text()) == {}
