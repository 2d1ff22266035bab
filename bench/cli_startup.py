"""How fast `nanobanana --help` answers, and which imports cost the most.

Runs the installed script N times (wall clock, median and worst), then one
`python -X importtime` run, and prints the slowest cumulative imports.  Exits 1 when the median
is above the 0.3 s budget.

    .venv/bin/python bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUDGET_S = 0.3
SCRIPT = Path(sys.executable).with_name("nanobanana")


def time_runs(argv: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        out.append(time.perf_counter() - started)
    return out


def import_costs(top: int) -> list[tuple[int, str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nanobanana", "--help"],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        # "import time:  self_us |  cumulative_us | name"
        _self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative_us), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"{'command':40} {'median ms':>10} {'max ms':>10}")
    results = {}
    for label, argv in [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("nanobanana --help", [str(SCRIPT), "--help"]),
        ("nanobanana generate --help", [str(SCRIPT), "generate", "--help"]),
    ]:
        times = time_runs(argv, args.runs)
        results[label] = statistics.median(times)
        print(f"{label:40} {statistics.median(times) * 1000:10.1f} {max(times) * 1000:10.1f}")
    print("\nslowest cumulative imports for --help (µs):")
    for cumulative, name in import_costs(12):
        print(f"  {cumulative:8d}  {name}")
    median = results["nanobanana --help"]
    verdict = "ok" if median < BUDGET_S else "OVER BUDGET"
    print(f"\n--help median {median * 1000:.0f} ms, budget {BUDGET_S * 1000:.0f} ms: {verdict}")
    return 0 if median < BUDGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
