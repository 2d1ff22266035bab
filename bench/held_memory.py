"""What each waiting generation holds: Python objects alive per request, by file and line.

Scenario 4 gives the RSS per waiting request; this says whose objects make it up.  The
service runs in a child process of this script (``--serve``), with ``tracemalloc`` started
once it has warmed up; a snapshot is taken then and another while ``--held`` generations wait
on a slow upstream (the emulator's ``[emulator:latency:S]``), and the difference is printed per
request: the total, the files and the lines that hold the most.

    .venv/bin/python bench/held_memory.py                  # 200 held, ~1 minute
    .venv/bin/python bench/held_memory.py --held 500 --top 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

SEED_PATH = "/api/nano-banana/generate"
SITE = "site-packages/"


def serve() -> None:
    """The service, in this process; SIGUSR1 writes a snapshot to ``$SNAP_DIR/<n>.snap``
    (tracing starts at the first)."""
    import itertools
    import tracemalloc

    import uvicorn

    from nanobanana.server.app import create_app
    from nanobanana.server.settings import Settings

    app = create_app(Settings())
    count = itertools.count()
    snap_dir = Path(os.environ["SNAP_DIR"])

    def snapshot(*_: object) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(8)
        path = snap_dir / f"{next(count)}.snap"
        tracemalloc.take_snapshot().dump(str(path))
        path.with_suffix(".done").touch()

    signal.signal(signal.SIGUSR1, snapshot)
    uvicorn.run(app, host=harness.HOST, port=int(os.environ["PORT"]), log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--held", type=int, default=200, help="generations held at once")
    parser.add_argument("--latency", type=float, default=25.0, help="upstream seconds")
    parser.add_argument("--top", type=int, default=30, help="files and lines shown")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    work = Path(tempfile.mkdtemp(prefix="nanobanana-held-"))
    try:
        measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> None:
    import tracemalloc

    n = args.held
    emu = harness.start_emulator(None, work)
    port = harness.free_port()
    env = harness.service_env(harness.ServiceConfig(emu.url), work / "data")
    env.update(PORT=str(port), SNAP_DIR=str(work))
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], env=env)
    try:
        url = f"http://{harness.HOST}:{port}"
        harness.wait_ready(f"{url}/healthz", proc, 120)
        token = harness.setup_user(url)
        for i in range(3):  # warm up: imports and first calls are not counted
            status, _ = harness.http("POST", url + SEED_PATH, {"prompt": f"warm {i}"}, token=token)
            assert status == 200, status

        def snapshot(i: int) -> tracemalloc.Snapshot:
            proc.send_signal(signal.SIGUSR1)
            done = work / f"{i}.done"
            while not done.exists():
                time.sleep(0.1)
            return tracemalloc.Snapshot.load(str(work / f"{i}.snap"))

        time.sleep(1)
        before = snapshot(0)
        body = work / "held.json"
        prompt = f"a quiet harbour [emulator:latency:{args.latency:g}], request {{n}}"
        body.write_text(json.dumps({"prompt": prompt}))
        target = harness.target("seed", url + SEED_PATH, str(body), token, 1_000_000, '"')
        spec = {
            "mode": "load",
            "targets": [target],
            "requests": n,
            "concurrency": n,
            "warmup": 0,
            "timeout_s": args.latency + 120,
            "deadline_s": args.latency + 300,
        }
        loadgen = harness.start_loadgen(spec, None, work)
        time.sleep(min(args.latency / 2, 12))
        during = snapshot(1)
        ok = harness.finish_loadgen(loadgen, args.latency + 400)["targets"][0]["ok"]
    finally:
        proc.terminate()
        proc.wait(30)
        emu.stop()
    report(before, during, n, ok, args.top)


def report(before: object, during: object, n: int, ok: int, top: int) -> None:
    import tracemalloc

    assert isinstance(before, tracemalloc.Snapshot) and isinstance(during, tracemalloc.Snapshot)
    by_file = during.compare_to(before, "filename")
    total = sum(s.size_diff for s in by_file)
    print(f"{n} generations held ({ok} answered): {total / n / 1024:.1f} KB of Python objects")
    print("per held request, by file (bytes, objects):")
    for s in by_file[:top]:
        print(f"  {s.size_diff / n:8.0f} {s.count_diff / n:6.1f}  {_name(s.traceback[0].filename)}")
    print("by line:")
    for s in during.compare_to(before, "lineno")[:top]:
        frame = s.traceback[0]
        where = f"{_name(frame.filename)}:{frame.lineno}"
        print(f"  {s.size_diff / n:8.0f} {s.count_diff / n:6.1f}  {where}")


def _name(filename: str) -> str:
    return filename.split(SITE, 1)[-1] if SITE in filename else filename


if __name__ == "__main__":
    main()
