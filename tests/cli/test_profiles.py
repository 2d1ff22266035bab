"""``nanobanana profiles``: stored 0600, tokens never echoed, read back by the remote client."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from nanobanana.remote.profiles import resolve_server

TOKEN = "nbt_CANARY_profile_token_0123456789"


@pytest.fixture
def profiles_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "conf" / "profiles.json"
    monkeypatch.setenv("NANOBANANA_PROFILES_FILE", str(path))
    return path


def test_set_list_remove(cli, profiles_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
    r = cli("profiles", "set", "studio", "http://127.0.0.1:8000/")
    assert r.code == 0, r.err
    assert TOKEN not in r.out + r.err
    assert stat.S_IMODE(profiles_path.stat().st_mode) == 0o600
    stored = json.loads(profiles_path.read_text())["profiles"]["studio"]
    assert stored == {"url": "http://127.0.0.1:8000", "token": TOKEN}
    server = resolve_server(
        url=None, profile="studio", token=None, env={"NANOBANANA_PROFILES_FILE": str(profiles_path)}
    )
    assert server.url == "http://127.0.0.1:8000" and server.token == TOKEN

    r = cli("profiles", "list")
    assert r.code == 0 and "studio" in r.out and TOKEN[-4:] in r.out
    assert TOKEN not in r.out

    r = cli("profiles", "remove", "studio")
    assert r.code == 0
    assert json.loads(profiles_path.read_text())["profiles"] == {}
    r = cli("profiles", "remove", "studio")
    assert r.code == 2 and "No profile" in r.err


def test_bad_url_and_empty_token_are_refused(
    cli, profiles_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
    r = cli("profiles", "set", "studio", "ftp://example")
    assert r.code == 2 and "https://host" in r.err
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    r = cli("profiles", "set", "studio", "http://127.0.0.1:8000")
    assert r.code == 2 and "token" in r.err
    assert not profiles_path.exists()
