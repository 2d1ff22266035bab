"""Processes under test and how they are placed, started, measured and stopped.

Placement (``Placement.detect``): with two cores, the service runs alone on the second core; the
emulator and the load generator share the first one (the reference method: the service's core
is never shared, so its figures are its own).  With more cores the load generator gets a third
core; with one core everything shares it and the report says so.

Memory comes from ``/proc/PID/status``: ``VmRSS`` now and ``VmHWM`` (the peak), reset between
phases by writing ``5`` to ``/proc/PID/clear_refs``.  Only loopback addresses are used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
NANOBANANA = str(BIN / "nanobanana")
HOST = "127.0.0.1"
#: The provider key the service is given for the emulator (a canary: never a real key).
EMULATOR_KEY = "sk-or-v1-CANARY-bench-0000000000000000"
# A throwaway account on a throwaway database.
PASSWORD = "bench-password-CANARY-1"

# No proxy for loopback calls, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ------------------------------------------------------------------------------ placement
@dataclass(frozen=True)
class Placement:
    emulator: int | None
    service: int | None
    loadgen: int | None
    note: str

    @classmethod
    def detect(cls) -> Placement:
        cores = sorted(os.sched_getaffinity(0))
        if shutil.which("taskset") is None:
            return cls(None, None, None, "taskset not found: processes are not pinned")
        if len(cores) >= 3:
            return cls(
                cores[0],
                cores[1],
                cores[2],
                f"emulator on core {cores[0]}, service on core {cores[1]}, load generator on "
                f"core {cores[2]}",
            )
        if len(cores) == 2:
            return cls(
                cores[0],
                cores[1],
                cores[0],
                f"service alone on core {cores[1]}; emulator and load generator share core "
                f"{cores[0]} (2 cores)",
            )
        return cls(cores[0], cores[0], cores[0], f"one core ({cores[0]}): everything shares it")


def pinned(core: int | None, argv: list[str]) -> list[str]:
    return argv if core is None else ["taskset", "-c", str(core), *argv]


# ------------------------------------------------------------------------------ /proc
def _status_kb(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/{pid}/status")


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def hwm_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of the process and every live descendant (``serve --workers N`` forks)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_s(current)
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total


def reset_hwm(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) to the current RSS; False if the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def established_to(port: int) -> int:
    """Established TCP connections whose local port is ``port`` (loopback, IPv4 and IPv6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        count += 1
        except FileNotFoundError:
            continue
    return count


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ HTTP
def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept-Encoding", "identity")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            status, _ = http("GET", url, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {timeout:.0f} s")


# ------------------------------------------------------------------------------ processes
@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def spawn(
    name: str, argv: list[str], core: int | None, env: dict[str, str], logs: Path, port: int
) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            pinned(core, argv), env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT
        )
    return Proc(name, proc, port, log)


def own_venv(venv: Path, requirements: list[str], say: Callable[[str], None] = print) -> Path:
    """The Python of a virtual environment of its own holding ``requirements`` (pinned), made
    on first use: a tool measured beside the service must not mix its dependencies with the
    service's."""
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    wanted = " ".join(requirements)
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    say(f"installing {wanted} into {venv} (once)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *requirements], check=True)
    stamp.write_text(wanted)
    return python


def base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NANOBANANA_")
        and k not in ("OPENROUTER_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def start_emulator(core: int | None, logs: Path) -> Proc:
    port = free_port()
    argv = [NANOBANANA, "emulator", "--fixed-payload", "--host", HOST, "--port", str(port)]
    emu = spawn("emulator", argv, core, base_env(), logs, port)
    try:
        wait_ready(f"{emu.url}/_emulator/health", emu.proc)
    except RuntimeError:
        emu.stop()
        raise
    return emu


@dataclass
class ServiceConfig:
    emulator_url: str
    database_url: str | None = None
    #: Jobs allowed at once (overall and per user), and per minute: the benchmark user is one
    #: user running up to 1,000 generations, far above the defaults meant for a shared service.
    job_limit: int = 4000
    extra_env: dict[str, str] = field(default_factory=dict)
    #: More ``nanobanana serve`` options (``--workers 2``).
    extra_args: list[str] = field(default_factory=list)
    #: What runs ``serve`` (a tool may wrap it: ``valgrind ... python -m nanobanana``).
    command: list[str] = field(default_factory=lambda: [NANOBANANA])
    #: Seconds the service may take to answer ``/healthz`` (much longer under valgrind).
    ready_timeout: float = 60.0


def service_env(config: ServiceConfig, data_dir: Path) -> dict[str, str]:
    """The environment of the service's processes (its workers' too)."""
    env = base_env()
    env.update(
        {
            "NANOBANANA_DATA_DIR": str(data_dir),
            "NANOBANANA_OPENROUTER_BASE_URL": f"{config.emulator_url}/api/v1",
            "NANOBANANA_GEMINI_BASE_URL": config.emulator_url,
            "NANOBANANA_MAX_CONCURRENT_JOBS": str(config.job_limit),
            "NANOBANANA_MAX_CONCURRENT_JOBS_PER_USER": str(config.job_limit),
            "NANOBANANA_MAX_QUEUED_JOBS_PER_USER": str(config.job_limit),
            # One user drives every request: the per-user rate limit would refuse the load.
            "NANOBANANA_GENERATIONS_PER_MINUTE": str(1_000_000),
            **config.extra_env,
        }
    )
    if config.database_url:
        env["NANOBANANA_DATABASE_URL"] = config.database_url
    return env


def start_service(core: int | None, config: ServiceConfig, logs: Path) -> tuple[Proc, Path]:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="nanobanana-bench-"))
    env = service_env(config, data_dir)
    argv = [*config.command, "serve", "--no-demo", "--host", HOST, "--port", str(port)]
    argv += config.extra_args
    svc = spawn("service", argv, core, env, logs, port)
    try:
        wait_ready(f"{svc.url}/healthz", svc.proc, config.ready_timeout)
    except RuntimeError:
        svc.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return svc, data_dir


def setup_user(service_url: str, username: str = "bench") -> str:
    """Register (the first account), log in, store the emulator key; return the bearer token."""
    creds = {"username": username, "password": PASSWORD}
    status, body = http("POST", f"{service_url}/api/auth/register", creds)
    if status not in (201, 409):
        raise RuntimeError(f"register: HTTP {status} {body[:200]!r}")
    status, body = http("POST", f"{service_url}/api/auth/login", creds)
    if status != 200:
        raise RuntimeError(f"login: HTTP {status} {body[:200]!r}")
    token = str(json.loads(body)["access_token"])
    status, body = http(
        "PUT",
        f"{service_url}/api/settings/keys/openrouter",
        {"api_key": EMULATOR_KEY},
        token=token,
    )
    if status not in (200, 201, 204):
        raise RuntimeError(f"storing the provider key: HTTP {status} {body[:200]!r}")
    return token


def has_route(service_url: str, path: str) -> bool:
    """Whether the service routes ``path`` (a POST route answers a bare GET with 401 or 405).

    Not through ``/openapi.json``: building that document once keeps about 6 MB in the
    service for good, which the idle figures of scenario 4 would then include."""
    status, _ = http("GET", f"{service_url}{path}")
    return status != 404


# ------------------------------------------------------------------------------ load generator
def target(
    name: str, url: str, body_file: str, bearer: str, min_bytes: int, expect: str
) -> dict[str, Any]:
    """A load-generator target: POST ``body_file`` to ``url``; an answer is good with HTTP
    200, at least ``min_bytes`` and ``expect`` in its first bytes."""
    return {
        "name": name,
        "url": url,
        "body_file": body_file,
        "headers": {"Authorization": f"Bearer {bearer}"},
        "min_bytes": min_bytes,
        "expect": expect,
    }


def run_loadgen(spec: dict[str, Any], core: int | None, work: Path) -> dict[str, Any]:
    """Run ``loadgen.py`` with ``spec`` in its own (pinned) process and return its results."""
    work.mkdir(parents=True, exist_ok=True)
    spec_file = work / f"spec-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps(spec))
    timeout = float(spec.get("deadline_s", 600)) + 120
    argv = pinned(core, [sys.executable, str(BENCH / "loadgen.py"), str(spec_file)])
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    spec_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def start_loadgen(spec: dict[str, Any], core: int | None, work: Path) -> subprocess.Popen[bytes]:
    """Like ``run_loadgen`` but returns at once; read the result with ``finish_loadgen``."""
    work.mkdir(parents=True, exist_ok=True)
    spec_file = work / f"spec-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps(spec))
    argv = pinned(core, [sys.executable, str(BENCH / "loadgen.py"), str(spec_file)])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_loadgen(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result
