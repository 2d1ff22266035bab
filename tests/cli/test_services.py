"""Long-running commands (``emulator``, ``serve``) and ``users create``, as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import GEMINI_CANARY, NANOBANANA, OPENROUTER_CANARY

# Cheap Argon2 for tests: the parameters are settings, their strength is not what is tested here.
FAST_HASH = {
    "NANOBANANA_ARGON2_TIME_COST": "1",
    "NANOBANANA_ARGON2_MEMORY_KIB": "64",
    "NANOBANANA_ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
        return dict(json.loads(resp.read()))


@contextmanager
def running(args: list[str], health_url: str, env: dict[str, str] | None = None) -> Iterator[dict]:
    proc = subprocess.Popen(
        [str(NANOBANANA), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = get_json(health_url)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _, err = proc.communicate(timeout=5)
                    pytest.fail(f"{args[0]} did not start (rc={proc.returncode}): {err}")
                time.sleep(0.05)
        yield health
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_emulator_command_serves_both_apis_with_a_default_scenario(
    cli, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_CANARY)
    urls = ["--openrouter-base-url", base + "/api/v1", "--gemini-base-url", base]
    with running(
        ["emulator", "--port", str(port), "--scenario", "quota-day"], f"{base}/_emulator/health"
    ):
        quota = cli("generate", "a fox", "-p", "openrouter", *urls)
        # a marker in the prompt overrides the default scenario, on both APIs
        ok_or = cli("generate", "a fox [emulator:ok]", "-p", "openrouter", *urls)
        ok_gemini = cli("generate", "a fox [emulator:ok]", "-p", "google", *urls)
    assert quota.code == 3 and "429" in quota.err
    assert ok_or.code == 0, ok_or.err
    assert ok_gemini.code == 0, ok_gemini.err
    assert len(list(isolated.glob("*.png"))) == 2


def test_the_cli_follows_the_listing_run_as_users_run_it(
    cli, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator run as users run it, with a preview id retired: the CLI sends the id the
    listing has now, and generates with a model only the listing has."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    retired = "google/gemini-3-pro-image-preview"
    urls = ["--openrouter-base-url", base + "/api/v1"]
    with running(
        ["emulator", "--port", str(port), "--retire", retired], f"{base}/_emulator/health"
    ):
        listed = get_json(f"{base}/api/v1/models?output_modalities=image")
        moved = cli("generate", "a fox", "-m", "gemini-3-pro-image", "-p", "openrouter", *urls)
        made = cli("generate", "a fox", "-m", "openai/gpt-5-image-mini", "-o", "fox.png", *urls)
        again = cli("generate", "a cat", "-m", "gemini-3-pro-image", "-p", "openrouter", *urls)
        seen = get_json(f"{base}/_emulator/requests")["requests"]
    ids = {m["id"] for m in listed["data"]}
    assert "openai/gpt-5-image-mini" in ids and retired not in ids
    assert moved.code == 0, moved.err
    assert f"openrouter no longer serves {retired!r}" in moved.err
    assert made.code == 0, made.err
    assert (isolated / "fox.png").stat().st_size > 0
    assert again.code == 0 and "no longer serves" not in again.err  # the kept listing says
    sent = [r["body"]["model"] for r in seen if r["method"] == "POST"]
    assert sent == [
        retired,  # refused: 400 "... is not a valid model ID"
        "google/gemini-3-pro-image",
        "openai/gpt-5-image-mini",
        "google/gemini-3-pro-image",
    ]
    assert sum(r["method"] == "GET" for r in seen) == 2  # the test's listing, then the CLI's


def test_emulator_command_refuses_an_unknown_scenario(cli) -> None:
    r = cli("emulator", "--port", "0", "--scenario", "explode")
    assert r.code == 2
    assert r.err.startswith("error: --scenario: unknown emulator scenario 'explode'")


def test_users_create_then_duplicate(cli_proc, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    r = cli_proc(
        ["users", "create", "alice", "--admin", "--password-stdin", "--data-dir", data],
        input="correct horse battery\n",
        env=FAST_HASH,
    )
    assert r.code == 0, r.err
    assert "Created admin 'alice'" in r.out
    assert "correct horse" not in r.out + r.err
    with sqlite3.connect(Path(data) / "nanobanana.db") as db:
        rows = db.execute("SELECT username, is_admin, password_hash FROM users").fetchall()
    assert [(u, bool(a)) for u, a, _ in rows] == [("alice", True)]
    assert "correct horse" not in rows[0][2] and rows[0][2].startswith("$argon2")

    again = cli_proc(
        ["users", "create", "Alice", "--password-stdin", "--data-dir", data],
        input="another password\n",
        env=FAST_HASH,
    )
    assert again.code == 2
    assert again.err.strip().splitlines() == ["error: The username 'Alice' is taken."]


def test_serve_says_what_stops_it_in_one_line(cli_proc, tmp_path: Path) -> None:
    """A port in use and a bad master key: one "error:" line naming the fix, exit 2, nothing
    set up (uvicorn printed its errno or a traceback and exited 3, the upstream code)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        data = tmp_path / "data"
        r = cli_proc(["serve", "--port", str(port), "--data-dir", str(data)])
    assert r.code == 2
    assert r.err.strip().splitlines()[-1] == (
        f"error: Port {port} on 127.0.0.1 is already in use (another nanobanana serve?): stop "
        "what holds it, or choose another --port."
    )
    assert not data.exists()
    r = cli_proc(
        ["serve", "--port", str(free_port()), "--data-dir", str(data)],
        env={"NANOBANANA_MASTER_KEYS": "not-a-key"},
    )
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err.strip().splitlines()[-1].startswith("error: Master key #1 is not a valid")


def test_worker_and_external_jobs_say_they_need_postgresql(cli_proc, tmp_path: Path) -> None:
    """Jobs outside the web process need a database the processes share: on the default
    SQLite, one line naming the setting, exit 2, nothing created."""
    data = tmp_path / "data"
    r = cli_proc(["worker", "--data-dir", str(data)])
    assert r.code == 2 and "Traceback" not in r.err
    last = r.err.strip().splitlines()[-1]
    assert last.startswith("error: nanobanana worker takes its jobs from a PostgreSQL database")
    assert "set NANOBANANA_DATABASE_URL=" in last
    r = cli_proc(
        ["serve", "--port", str(free_port()), "--data-dir", str(data)],
        env={"NANOBANANA_JOBS": "external"},
    )
    assert r.code == 2 and "Traceback" not in r.err
    assert "NANOBANANA_JOBS=external needs a PostgreSQL database" in r.err.strip().splitlines()[-1]
    r = cli_proc(["worker", "--concurrency", "0"])
    assert r.code == 2 and r.err.strip().endswith("--concurrency must be 1 or more.")
    assert not data.exists()


def test_users_create_without_a_terminal_needs_password_stdin(cli_proc, tmp_path: Path) -> None:
    r = cli_proc(["users", "create", "bob", "--data-dir", str(tmp_path / "d")], input="")
    assert r.code == 2
    assert "--password-stdin" in r.err


def test_serve_runs_the_service_and_demo_flag_overrides_the_default(tmp_path: Path) -> None:
    port = free_port()
    with running(
        ["serve", "--port", str(port), "--no-demo", "--data-dir", str(tmp_path / "srv")],
        f"http://127.0.0.1:{port}/healthz",
        env=FAST_HASH,
    ) as health:
        # No provider key in the environment would turn demo mode on; --no-demo keeps it off.
        assert health["status"] == "ok"
        assert health["demo"] is False


def test_serve_with_workers_runs_several_processes_on_one_port(tmp_path: Path) -> None:
    """`nanobanana serve --workers 2` on the embedded default: two processes answer on the
    port, each registered as the worker of the jobs it accepts, and generations succeed."""
    import httpx

    port = free_port()
    data = tmp_path / "srv"
    url = f"http://127.0.0.1:{port}"
    with running(
        ["serve", "--port", str(port), "--demo", "--workers", "2", "--data-dir", str(data)],
        f"{url}/healthz",
        env=FAST_HASH,
    ) as health:
        assert health["demo"] is True
        body = {"username": "ann", "password": "correct horse battery"}
        assert httpx.post(f"{url}/api/auth/register", json=body).status_code == 201
        token = httpx.post(f"{url}/api/auth/login", json=body).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while True:
            with sqlite3.connect(data / "nanobanana.db") as db:
                pids = {row[0] for row in db.execute("SELECT pid FROM workers")}
            if len(pids) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(pids) == 2
        for i in range(6):
            r = httpx.post(
                f"{url}/api/nano-banana/generate", json={"prompt": f"fox {i}"}, headers=h
            )
            assert r.status_code == 200, r.text
            assert len(r.json()["images"]) == 1
        with sqlite3.connect(data / "nanobanana.db") as db:
            statuses = [row[0] for row in db.execute("SELECT status FROM jobs")]
        assert statuses == ["succeeded"] * 6
