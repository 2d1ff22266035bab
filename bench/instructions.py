"""Instructions per request, counted by callgrind: a figure the machine's noise cannot move.

On a shared VM the CPU milliseconds of scenarios 1-2 move by 10-20 % between identical runs,
more than most single changes to the hot path are worth. ``valgrind --tool=callgrind`` counts
the instructions the service executes instead: the same code, inputs and environment give the
same count within a fraction of a percent, whatever else the machine is doing. It counts user
space only: the kernel's socket and page-cache copies are not in it, so it measures what Python
and the libraries cost, which is what a change to the code moves.

    .venv/bin/python bench/instructions.py                 # seed and compat paths, ~2 minutes
    .venv/bin/python bench/instructions.py --requests 50 --rounds 3

The emulator (fixed payload, a 1K image) runs natively; the service runs under callgrind with
instrumentation off until it has started, signed up its user and answered a few warm-up
requests, so that imports and first calls are not counted. Then, per path and round,
``callgrind_control --zero``, ``--requests`` requests one at a time, ``--dump``. The table gives
millions of instructions per request (the median of the rounds, and their spread) and the
libraries they ran in.

Two counts differ from the real CPU's work: under valgrind OpenSSL finds no SHA extensions and
hashes in software (about 28 instructions per byte, so the sha256 of the 1.3 MB file is about
36 M where the CPU's SHA-NI does it in about 0.8 ms), and ``rep movsb`` copies count one
instruction per byte. Compare counts with counts, before and after a change.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

SEED_PATH = "/api/nano-banana/generate"
COMPAT_PATH = "/api/v1/chat/completions"
WARMUP = 5


def start_service(emulator_url: str, logs: Path, out: Path) -> tuple[harness.Proc, Path]:
    """``nanobanana serve`` under callgrind, instrumentation off until told."""
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    config = harness.ServiceConfig(
        emulator_url=emulator_url,
        command=[*valgrind, f"--callgrind-out-file={out}", sys.executable, "-m", "nanobanana"],
        ready_timeout=300,
    )
    return harness.start_service(None, config, logs)


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def by_library(dump: Path) -> tuple[int, collections.Counter[str]]:
    """The dump's total instructions, and their split by the library they ran in."""
    done = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    libs: collections.Counter[str] = collections.Counter()
    for line in done.stdout.splitlines():
        if line.endswith("PROGRAM TOTALS"):
            total = int(line.split()[0].replace(",", ""))
            continue
        match = re.match(r"\s*([\d,]+) \(.*\[(.*)\]\s*$", line)
        if match:
            name = Path(match.group(2)).name.split(".cpython")[0].split(".so")[0]
            libs[name] += int(match.group(1).replace(",", ""))
    return total, libs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per path")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (Debian's valgrind package)")
    work = Path(tempfile.mkdtemp(prefix="nanobanana-instr-run-"))
    logs = work / "logs"
    emulator = harness.start_emulator(None, logs)
    out = work / "callgrind.out"
    svc, data_dir = start_service(emulator.url, logs, out)
    try:
        token = harness.setup_user(svc.url)
        seed_body = {"prompt": "a quiet harbour, request {n}"}
        status, _ = harness.http("POST", svc.url + SEED_PATH, {"prompt": "warm"}, token=token)
        if status != 200:
            raise SystemExit(f"the seed request failed: HTTP {status}")
        _, raw = harness.http("GET", f"{emulator.url}/_emulator/requests?limit=5")
        upstream = [
            e["body"]
            for e in json.loads(raw)["requests"]
            if e["path"].endswith("/chat/completions")
        ][-1]
        paths = {"seed": (SEED_PATH, seed_body), "compat": (COMPAT_PATH, upstream)}
        control(svc.proc.pid, "--instr=on")
        results: dict[str, list[tuple[int, collections.Counter[str]]]] = {}
        n = 0
        for name, (path, body) in paths.items():
            results[name] = []
            for rnd in range(-1, args.rounds):  # round -1 warms the path up, uncounted
                control(svc.proc.pid, "--zero")
                for _ in range(WARMUP if rnd < 0 else args.requests):
                    n += 1
                    text = json.dumps(body).replace("{n}", str(n))
                    status, _ = harness.http("POST", svc.url + path, json.loads(text), token=token)
                    if status != 200:
                        raise SystemExit(f"{name}: HTTP {status}")
                if rnd < 0:
                    continue
                before = set(work.glob("callgrind.out.*"))
                control(svc.proc.pid, "--dump")
                for _ in range(100):
                    fresh = set(work.glob("callgrind.out.*")) - before
                    if fresh:
                        break
                    time.sleep(0.05)
                (dump,) = fresh
                results[name].append(by_library(dump))
        print(report(results, args.requests, args.rounds))
    finally:
        svc.stop()
        emulator.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def report(
    results: dict[str, list[tuple[int, collections.Counter[str]]]], requests: int, rounds: int
) -> str:
    lines = [
        f"Instructions per request (callgrind; {rounds} rounds of {requests} requests, c=1, "
        "1K image; millions)",
        "",
        "| path | M instructions per request | spread of the rounds | by library (M) |",
        "|---|---|---|---|",
    ]
    for name, runs in results.items():
        per = [total / requests / 1e6 for total, _ in runs]
        libs: collections.Counter[str] = collections.Counter()
        for _, split in runs:
            libs.update(split)
        top = ", ".join(
            f"{lib} {count / requests / len(runs) / 1e6:.1f}" for lib, count in libs.most_common(6)
        )
        spread = (max(per) - min(per)) / statistics.median(per) * 100
        lines.append(f"| {name} | {statistics.median(per):.2f} | {spread:.1f} % | {top} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
