"""The curl examples of docs/compat.md, run by ``curl_test.sh`` against a live service."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Live

pytestmark = pytest.mark.timeout(90)
SCRIPT = Path(__file__).with_name("curl_test.sh")


def test_curl_script(live: Live, tmp_path: Path) -> None:
    assert shutil.which("curl"), "curl is needed for this test"
    token = live.new_user(keys={"openrouter": "sk-or-v1-CANARY-curl-0123456789abcdef"})
    env = {**os.environ, "NB_URL": live.url, "NB_TOKEN": token, "NB_WORK": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=80, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [line for line in done.stdout.splitlines() if line.startswith("ok: ")]
    assert len(checks) == 8, done.stdout
    # Every generating call became a job in the caller's history.
    with live.http(token) as c:
        items = c.get("/api/generations").json()["items"]
    kinds = sorted(i["kind"] for i in items)
    assert kinds == ["openai", "openai", "openai", "openrouter", "openrouter"]
    assert all(i["status"] == "succeeded" for i in items)


def test_curl_script_fails_loudly(live: Live, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NB_URL": live.url,
        "NB_TOKEN": "revoked-or-wrong",
        "NB_WORK": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "FAIL: chat completion: HTTP 401" in done.stderr
