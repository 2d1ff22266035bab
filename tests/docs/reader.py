"""The reader of a page of documentation: a fresh home folder, the environment the page
describes, the servers its commands start, and a terminal for the commands that ask."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from ..support import wait_until_up

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OPENROUTER_CANARY = "sk-or-v1-CANARY-readme-0123456789abcdef"
GEMINI_CANARY = "AIzaCANARY-readme-0123456789abcdefghij"
PASSWORD = "a long password"  # the one README's curl example signs in with
EMULATOR = "http://127.0.0.1:8089"
SERVICE = "http://127.0.0.1:8000"


@dataclass
class Block:
    lang: str
    text: str
    line: int

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.text.splitlines() if ln.strip()]


def blocks_of(page: str) -> list[Block]:
    text = (ROOT / page).read_text()
    return [
        Block(m.group(1), m.group(2), text[: m.start()].count("\n") + 1)
        for m in re.finditer(r"```(\w*)\n(.*?)```", text, flags=re.DOTALL)
    ]


def block_in(page: str, lang: str, needle: str) -> Block:
    found = [b for b in blocks_of(page) if b.lang == lang and needle in b.text]
    assert len(found) == 1, f"{page} should have one {lang!r} block with {needle!r}"
    return found[0]


# ------------------------------------------------------------------------------ the reader
@dataclass
class Reader:
    """The reader's folder, environment and the servers their commands started."""

    home: Path
    env: dict[str, str]
    servers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def sh(self, script: str, *, stdin: str | None = None, timeout: float = 120) -> str:
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.home,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, (
            f"{script}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout + proc.stderr

    def python(self, code: str, *, preamble: str = "") -> str:
        proc = subprocess.run(
            [sys.executable, "-c", preamble + code],
            capture_output=True,
            text=True,
            cwd=self.home,
            env=self.env,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{code}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def start(self, name: str, command: str, url: str) -> None:
        """Run a command that serves (as a reader would in another terminal) until it answers."""
        self.stop(name)
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is taken: the page's {command!r} needs it free")
        log_path = self.home / f"{name}.log"
        with log_path.open("w") as log:
            self.servers[name] = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.home,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        health = "/_emulator/health" if name == "emulator" else "/healthz"
        # The shell may have exited already (`cmd &`): only the answer tells.
        wait_until_up(url + health, None, log_path)

    def stop(self, name: str) -> None:
        proc = self.servers.pop(name, None)
        if proc is None:
            return
        # The whole session: a `cmd &` leaves the server running after its shell has exited.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)

    def in_terminal(self, command: str, answers: list[tuple[str, str]]) -> str:
        """Run ``command`` on a terminal, typing each answer once its prompt is shown."""
        master, slave = os.openpty()
        proc = subprocess.Popen(
            ["bash", "-c", command],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=self.home,
            env=self.env,
            start_new_session=True,
        )
        os.close(slave)
        out, seen, pending = b"", 0, list(answers)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.1)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:  # the child closed the terminal
                        chunk = b""
                    if not chunk:
                        break
                    out += chunk
                if pending and pending[0][0].encode() in out[seen:]:
                    seen = out.index(pending[0][0].encode(), seen) + len(pending[0][0])
                    os.write(master, pending.pop(0)[1].encode() + b"\n")
        finally:
            os.close(master)
        code = proc.wait(timeout=30)
        text = out.decode(errors="replace")
        assert code == 0 and not pending, f"{command}\nexit {code}\n{text}"
        return text


def photo(path: Path) -> None:
    Image.new("RGB", (640, 480), (40, 90, 200)).save(path, "JPEG")


@contextlib.contextmanager
def reading(home: Path) -> Iterator[Reader]:
    """A reader in ``home``; the servers they started are stopped at the end."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        # "Key order: explicit argument, then environment": the reader's keys, and where to.
        OPENROUTER_API_KEY=OPENROUTER_CANARY,
        GEMINI_API_KEY=GEMINI_CANARY,
        OPENROUTER_BASE_URL=f"{EMULATOR}/api/v1",
        GEMINI_BASE_URL=EMULATOR,
        NANOBANANA_DATA_DIR=str(home / "data"),
        NO_COLOR="1",
    )
    r = Reader(home=home, env=env)
    try:
        yield r
    finally:
        for name in list(r.servers):
            r.stop(name)


def api_token(username: str, password: str = PASSWORD) -> str:
    """A personal API token, made the way the README says (`POST /api/tokens`)."""
    with httpx.Client(base_url=SERVICE, timeout=30) as c:
        r = c.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        c.cookies.clear()
        session = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = c.post("/api/tokens", json={"name": "readme"}, headers=session)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def json_objects(text: str) -> list[dict[str, Any]]:
    decoder, found, pos = json.JSONDecoder(), [], 0
    while (start := text.find("{", pos)) != -1:
        obj, pos = decoder.raw_decode(text, start)
        found.append(obj)
    return found


def pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.png") if p.read_bytes()[:4] == b"\x89PNG")
