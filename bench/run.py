"""``make bench``: start the emulator and the service on loopback, run the scenarios, print one
table per scenario (the emulator direct beside the service) and keep them in ``bench/out/``.

    .venv/bin/python bench/run.py            # --quick (the default): a few minutes
    .venv/bin/python bench/run.py --full     # the issue's numbers (1,000 held for 20 s ...)
    .venv/bin/python bench/run.py --only 1,3 --update-readme

Scenarios: 1 added latency (c=1), 2 throughput (c=50), 3 the 4K path (each with LiteLLM's proxy
beside the service, unless ``--no-litellm``), 4 held concurrency,
5 history with 10,000 jobs (SQLite and PostgreSQL), 6 CLI, 7 one and two web processes,
with and without workers (PostgreSQL and Redis), 8 caps and webhooks on the hot path.  Every
request sends ``Accept-Encoding: identity``.  See bench/README.md for the method and the latest
figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import harness
import litellm_proxy
import report
from context import Bench, Sizes
from report import Table
from scenario_cli import cli
from scenario_db import database
from scenario_http import added_latency, held, path_4k, throughput
from scenario_processes import processes
from scenario_team import team

SCENARIOS: dict[int, Callable[[Bench], Table]] = {
    1: added_latency,
    2: throughput,
    3: path_4k,
    4: held,
    5: database,
    6: cli,
    7: processes,
    8: team,
}
README = harness.BENCH / "README.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def header(mode: str, placement: harness.Placement, started: str, load_before: str) -> str:
    m = report.machine()
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    return "\n".join(
        [
            f"## Results: `{mode}` run, {started}",
            "",
            f"- Machine: {m['cpu']}, {m['usable_cores']} usable cores of {m['cores']}, "
            f"{m['memory_gb']} GB RAM, Linux {m['kernel']}, Python {m['python']}",
            f"- Packages: {pkgs}",
            f"- Placement: {placement.note}",
            f"- Load average before the run: {load_before} (a busy machine makes every figure "
            "noisier; compare the direct and service rows of one table, not runs)",
            "- Every request: `Accept-Encoding: identity`; the emulator serves pre-rendered "
            "images (`--fixed-payload`); one service process (uvicorn, 1 worker), SQLite in a "
            "fresh data folder (scenario 5 also PostgreSQL).",
            "- Service limits raised for the one benchmark user that drives all the load: "
            "`NANOBANANA_MAX_CONCURRENT_JOBS`, `..._PER_USER` and `NANOBANANA_MAX_QUEUED_JOBS_"
            "PER_USER` = 4000, `NANOBANANA_GENERATIONS_PER_MINUTE` = 1000000.",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller numbers (default)")
    size.add_argument("--full", action="store_true", help="the issue's numbers")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,2")
    parser.add_argument(
        "--update-readme", action="store_true", help="put the tables into bench/README.md"
    )
    parser.add_argument(
        "--no-litellm",
        action="store_true",
        help="leave out LiteLLM's proxy (otherwise installed once into bench/out/litellm-venv)",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the service (repeatable; e.g. MALLOC_ARENA_MAX=2)",
    )
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    sizes = Sizes.full() if args.full else Sizes.quick()
    chosen = sorted(SCENARIOS) if not args.only else [int(x) for x in args.only.split(",")]

    out = harness.BENCH / "out"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = out / f"{stamp}-{mode}"
    run_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="nanobanana-bench-work-"))
    placement = harness.Placement.detect()
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    load_before = report.loadavg()
    print(f"nanobanana bench ({mode}); placement: {placement.note}; load {load_before}")

    emulator = harness.start_emulator(placement.emulator, run_dir / "logs")
    bench = Bench(placement, emulator, sizes, run_dir, work)
    bench.service_env = dict(item.split("=", 1) for item in args.service_env)
    bench.litellm = not args.no_litellm
    tables: list[Table] = []
    try:
        for number in chosen:
            try:
                table = SCENARIOS[number](bench)
            except Exception as exc:  # one failed scenario must not lose the others' figures
                traceback.print_exc()
                table = Table(f"{number}. failed", ["error"])
                table.add(f"{type(exc).__name__}: {exc}"[:500])
            finally:
                bench.stop_proxies()  # its core is the service's: nothing else runs there
            tables.append(table)
            print("\n" + table.markdown(), flush=True)
    finally:
        bench.stop_proxies()
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)

    if bench.compat_available is False:
        note = (
            "The OpenRouter-compatible path (`POST /api/v1/chat/completions`) is not in this "
            "service yet: its rows say 'not available'."
        )
        for t in tables:
            if any("not available" in c for r in t.rows for c in r):
                t.notes.append(note)
    text = header(mode, placement, started, load_before)
    if bench.litellm and not bench.litellm_missing and set(chosen) & {1, 2, 3}:
        text += (
            f"- LiteLLM's proxy (scenarios 1-3): litellm[proxy] "
            f"{litellm_proxy.installed_version()}, one worker on the service's core, a master "
            "key, no database, OpenRouter provider pointed at the emulator.\n"
        )
    if bench.service_env:
        env = ", ".join(f"`{k}={v}`" for k, v in bench.service_env.items())
        text += f"- Service environment added for this run: {env}\n"
    text += f"- Load average after the run: {report.loadavg()}\n\n"
    text += "\n".join(t.markdown() for t in tables)
    (run_dir / "results.md").write_text(text)
    (run_dir / "results.json").write_text(
        json.dumps(
            {
                "mode": mode,
                "started": started,
                "machine": report.machine(),
                "placement": placement.note,
                "tables": [{"title": t.title, "rows": t.rows, "data": t.data} for t in tables],
            },
            default=str,
        )
    )
    shutil.copyfile(run_dir / "results.md", out / "latest.md")
    print(f"\nwritten: {run_dir / 'results.md'} (and results.json, logs/)")
    if args.update_readme:
        update_readme(text)
        print(f"updated: {README}")
    return 0


def update_readme(text: str) -> None:
    readme = README.read_text()
    head, sep, rest = readme.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{README} has no {START} ... {END} block")
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
