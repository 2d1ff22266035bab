"""docs/deploy.md as written: its systemd units pass ``systemd-analyze verify``, and their
commands, run with their settings, make a working service (web processes that leave the jobs
to a worker, on PostgreSQL, Redis and an S3 bucket); the compose file names only settings,
extras and commands that exist."""

from __future__ import annotations

import base64
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet

from nanobanana.cli.main import build_parser
from nanobanana.emulator import EmulatorServer
from nanobanana.server.settings import Settings

from ..support import S3Server, clean_env, postgres_database, wait_until_up
from .conftest import OPENROUTER_CANARY
from .test_cluster import sign_in

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
NANOBANANA = Path(sys.executable).with_name("nanobanana")
#: Where the units expect the project's virtual environment.
INSTALLED = "/opt/nanobanana/.venv/bin/nanobanana"
ENV_FILE = "/etc/nanobanana/env"


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def units() -> dict[str, str]:
    """The unit files of the page, by name (each block opens with a comment naming its path)."""
    out = {}
    for block in code_blocks("ini"):
        first = block.splitlines()[0]
        match = re.match(r"# /etc/systemd/system/(\S+\.service)", first)
        assert match, f"an ini block of deploy.md does not name its unit: {first}"
        out[match.group(1)] = block
    assert set(out) == {"nanobanana-web.service", "nanobanana-worker@.service"}
    return out


def service_section(unit: str) -> tuple[dict[str, str], list[str]]:
    """The unit's ``Environment=`` settings and its ``ExecStart`` argv."""
    env: dict[str, str] = {}
    argv: list[str] = []
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
        elif key == "ExecStart":
            argv = shlex.split(value)
    assert argv and argv[0] == INSTALLED
    return env, argv


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """The units as the page gives them, pointed at this install: systemd finds nothing to say
    (an unknown key, a bad value, a command that cannot run)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) is needed to check the units"
    env_file = tmp_path / "env"
    env_file.write_text("NANOBANANA_DATABASE_URL=postgresql+asyncpg://x@127.0.0.1/x\n")
    paths = []
    for name, text in units().items():
        path = tmp_path / name
        path.write_text(text.replace(INSTALLED, str(NANOBANANA)).replace(ENV_FILE, str(env_file)))
        paths.append(str(path).replace("@.service", "@1.service"))
    done = subprocess.run(
        [analyze, "verify", *paths], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    # A unit with a mistake is reported, so the silence above means something.
    bad = tmp_path / "bad.service"
    bad.write_text(units()["nanobanana-web.service"].replace("KillSignal", "KillSignl"))
    said = subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True)
    assert "KillSignl" in said.stderr


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.s3
@pytest.mark.timeout(240)
def test_the_units_commands_make_a_working_service(
    emulator: EmulatorServer, s3_server: S3Server, tmp_path: Path
) -> None:
    """Each unit's ExecStart, with its Environment= and the settings an env file would hold:
    the web unit's four web processes leave the job to the worker unit's process, the design
    notes' generate call answers with its image, and SIGTERM (the units' KillSignal) stops
    both within their TimeoutStopSec, with no traceback in their output."""
    pages = units()
    web_env, web_argv = service_section(pages["nanobanana-web.service"])
    worker_env, worker_argv = service_section(pages["nanobanana-worker@.service"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    web_argv = [str(NANOBANANA), *web_argv[1:]]
    web_argv[web_argv.index("--port") + 1] = str(port)
    web_argv[web_argv.index("--host") + 1] = "127.0.0.1"  # loopback only in tests
    worker_argv = [str(NANOBANANA), *worker_argv[1:]]
    with postgres_database() as database:
        env_file = clean_env(
            NANOBANANA_DATABASE_URL=database,
            NANOBANANA_REDIS_URL="redis://127.0.0.1:6379/0",
            NANOBANANA_STORAGE_URL=f"s3://{s3_server.bucket}/deploy-{port}",
            NANOBANANA_S3_ENDPOINT_URL=s3_server.endpoint,
            NANOBANANA_MASTER_KEYS=Fernet.generate_key().decode(),
            NANOBANANA_OPENROUTER_BASE_URL=emulator.openrouter_url,
            NANOBANANA_DEMO="false",
            NANOBANANA_ARGON2_TIME_COST="2",
            NANOBANANA_ARGON2_MEMORY_KIB="19456",
            NANOBANANA_ARGON2_PARALLELISM="1",
            **s3_server.env(),
        )
        procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        try:
            for name, argv, extra in (
                ("web", web_argv, web_env),
                ("worker", worker_argv, worker_env),
            ):
                data = tmp_path / name
                data.mkdir()
                log = data / "out.log"
                with log.open("w") as fh:
                    proc = subprocess.Popen(
                        argv,
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        env={**env_file, **extra, "NANOBANANA_DATA_DIR": str(data)},
                    )
                procs[name] = (proc, log)
            url = f"http://127.0.0.1:{port}"
            wait_until_up(f"{url}/healthz", procs["web"][0], procs["web"][1])
            h = sign_in(url, "ops")
            r = httpx.put(
                f"{url}/api/settings/keys/openrouter",
                json={"api_key": OPENROUTER_CANARY},
                headers=h,
            )
            assert r.is_success, r.text
            r = httpx.post(
                f"{url}/api/nano-banana/generate",
                json={"prompt": "a lighthouse at dusk"},
                headers=h,
                timeout=60,
            )
            assert r.status_code == 200, r.text
            assert base64.b64decode(r.json()["images"][0]).startswith(b"\x89PNG\r\n\x1a\n")
            jobs = httpx.get(f"{url}/api/generations", headers=h).json()["items"]
            assert jobs[0]["status"] == "succeeded"
            assert f"Job {jobs[0]['id']} succeeded" in procs["worker"][1].read_text()
        finally:
            for proc, _ in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            codes = {name: proc.wait(timeout=30) for name, (proc, _) in procs.items()}
            assert time.monotonic() - started < 30  # TimeoutStopSec
        for _, log in procs.values():
            text = log.read_text()
            assert "Traceback" not in text, text
            assert OPENROUTER_CANARY not in text
        assert codes == {"web": 0, "worker": 0}


def compose() -> dict[str, Any]:
    (block,) = code_blocks("yaml")
    assert block.startswith("# compose.yaml")
    loaded: dict[str, Any] = yaml.safe_load(block)
    return loaded


def test_the_compose_file_names_real_settings_extras_and_commands() -> None:
    """The compose file cannot be run here (no Docker daemon): what of it belongs to the
    project is checked instead.  Every NANOBANANA_ variable is a setting, the extras it installs
    exist, and each command after the install is one the CLI accepts."""
    services = compose()["services"]
    settings = {f"NANOBANANA_{name.upper()}" for name in Settings.model_fields}
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    parser = build_parser()
    for name in ("web", "worker"):
        service = services[name]
        named = {k for k in service["environment"] if k.startswith("NANOBANANA_")}
        assert named and named <= settings, named - settings
        shell = shlex.split(service["command"])
        assert shell[:2] == ["sh", "-c"]
        install, _, run = shell[2].partition(" && ")
        wanted = re.search(r"'\.\[([a-z0-9,]+)\]'", install)
        assert wanted and set(wanted.group(1).split(",")) <= extras
        assert "-c constraints.txt" in install
        argv = shlex.split(run)
        assert argv[0] == "nanobanana"
        parser.parse_args(argv[1:])  # exits (SystemExit) on an argument the CLI does not know
    assert services["web"]["environment"]["NANOBANANA_JOBS"] == "external"
    assert set(services) >= {"web", "worker", "postgres", "redis", "seaweedfs"}
