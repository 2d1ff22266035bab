"""Scenario 6: the CLI.  ``nanobanana --help`` start-up time, and ``nanobanana generate`` against
the emulator beside a bare ``curl`` of the very same request (the body the CLI sent, read back
from the emulator).

``generate`` does more than curl: it decodes and verifies the image and writes it (atomically,
fsynced) with its provenance; the target is that all of that, plus Python's start-up, stays
within 0.2 s of curl.  Both run pinned to the service's core (idle during this scenario),
alternately.  Wall time is the target; CPU time (user + system, from ``getrusage``) is shown
beside it because it barely moves when the machine is busy.

Bytecode: the runs use a bytecode cache (``PYTHONPYCACHEPREFIX`` in a temporary folder, warmed
by the first run), as an installed package has; with ``PYTHONDONTWRITEBYTECODE`` set every run
would recompile nanobanana's modules from source.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from cli_startup import BUDGET_S, SCRIPT, import_costs
from context import Bench
from report import Table, verdict

GENERATE_BUDGET_S = 0.2


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NANOBANANA_", "OPENROUTER_", "GEMINI_", "GOOGLE_", "XDG_"))
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "PYTHONPYCACHEPREFIX": str(home / "pycache"),
            "OPENROUTER_API_KEY": harness.EMULATOR_KEY,
            "NO_PROXY": "127.0.0.1,localhost,::1",
        }
    )
    return env


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one run; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed: {proc.stderr.decode()[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _row(table: Table, label: str, runs: list[tuple[float, float]], target: str, ok: str) -> None:
    walls = [w for w, _ in runs]
    cpus = [c for _, c in runs]
    table.add(
        label,
        f"{statistics.median(walls):.3f}",
        f"{max(walls):.3f}",
        f"{statistics.median(cpus):.3f}",
        target,
        ok,
    )


def cli(b: Bench) -> Table:
    n = b.sizes.cli_runs
    core = b.placement.service
    b.say(f"scenario 6: CLI start-up and generate vs curl ({n} runs each)")
    table = Table(
        f"6. CLI ({n} runs each, pinned to one core, bytecode cached)",
        ["command", "median wall s", "max wall s", "median CPU s", "target", "result"],
    )
    home = Path(tempfile.mkdtemp(prefix="nanobanana-bench-cli-"))
    try:
        env = _env(home)
        api = f"{b.emulator.url}/api/v1"
        out = home / "out.png"
        floor_argv = harness.pinned(core, [sys.executable, "-c", "pass"])
        help_argv = harness.pinned(core, [str(SCRIPT), "--help"])
        generate = harness.pinned(
            core,
            [
                str(SCRIPT),
                "generate",
                "a paper boat on a pond",
                "-p",
                "openrouter",
                "--openrouter-base-url",
                api,
                "-o",
                str(out),
                "--force",
            ],
        )
        _timed(help_argv, env)  # fills the bytecode cache
        _timed(generate, env)
        if not out.exists():
            raise RuntimeError("nanobanana generate wrote no image")
        _, raw = harness.http("GET", f"{b.emulator.url}/_emulator/requests?limit=1")
        body_file = home / "body.json"
        body_file.write_text(json.dumps(json.loads(raw)["requests"][-1]["body"]))
        curl = harness.pinned(
            core,
            [
                "curl",
                "-sS",
                "--fail",
                "-o",
                str(home / "curl.json"),
                "-H",
                "Accept-Encoding: identity",
                "-H",
                "Content-Type: application/json",
                "-H",
                f"Authorization: Bearer {harness.EMULATOR_KEY}",
                "--data-binary",
                f"@{body_file}",
                f"{api}/chat/completions",
            ],
        )
        timings: dict[str, list[tuple[float, float]]] = {
            "floor": [],
            "help": [],
            "curl": [],
            "generate": [],
        }
        for _ in range(n):
            for name, argv in (
                ("floor", floor_argv),
                ("help", help_argv),
                ("curl", curl),
                ("generate", generate),
            ):
                timings[name].append(_timed(argv, env))
    finally:
        shutil.rmtree(home, ignore_errors=True)

    help_wall = statistics.median(w for w, _ in timings["help"])
    c50 = statistics.median(w for w, _ in timings["curl"])
    g50 = statistics.median(w for w, _ in timings["generate"])
    _row(table, "python -c pass (floor)", timings["floor"], "", "")
    _row(
        table,
        "nanobanana --help",
        timings["help"],
        f"< {BUDGET_S} s",
        verdict(help_wall < BUDGET_S),
    )
    _row(table, "curl of the same emulator request", timings["curl"], "", "")
    _row(
        table,
        "nanobanana generate (1K: verified, saved)",
        timings["generate"],
        f"<= curl + {GENERATE_BUDGET_S} s",
        verdict(g50 - c50 <= GENERATE_BUDGET_S) + f" (+{g50 - c50:.3f} s)",
    )
    top = ", ".join(f"{name.strip()} {us / 1000:.0f} ms" for us, name in import_costs(5))
    table.notes.append(f"Slowest cumulative imports for --help: {top}.")
    table.data = {k: v for k, v in timings.items()}
    return table
