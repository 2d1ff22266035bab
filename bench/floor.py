"""The floor: what the work every 1K generation must do costs on this machine, alone.

A generation through the service is answered only once its image is verified, stored and
recorded (the API's promise: the answer's image is in the history, on disk, under its sha256).
A pass-through proxy such as LiteLLM does none of it.  This script times each piece of that
work by itself, with the fastest library call there is for it and nothing of the service
around it, so that a target can be held against what it leaves room for:

    .venv/bin/python bench/floor.py                  # 200 rounds, a few seconds
    .venv/bin/python bench/floor.py --rounds 500 --dir /var/lib/nanobanana
    .venv/bin/python bench/floor.py --pixels 4096 --rounds 20    # a 4K image

The image is the emulator's fixed 1K payload (the one scenarios 1-2 serve).  The parse, the
decode and the PNG check are the service's own functions, the fastest way this project knows
(orjson alone takes about 0.7 ms to parse the 1.7 MB answer with its image inside, and
pybase64 without validation about 0.4 ms to decode it).  Each figure is
the median of the rounds: wall time, and the CPU time of the thread that did it.  The file is
written as ``LocalStore`` writes it: a new temporary file, written, fsynced, renamed.  The
record is one row committed to SQLite with the service's pragmas (WAL, ``synchronous=NORMAL``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pybase64

from nanobanana.emulator.images import ImageFactory
from nanobanana.imaging import b64decode, png_size
from nanobanana.providers.datauri import loads_with_payloads as loads


def timed(rounds: int, work: Callable[[int], object]) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of ``work(i)`` over ``rounds`` calls."""
    walls, cpus = [], []
    for i in range(rounds):
        w0, c0 = time.perf_counter(), time.thread_time()
        work(i)
        cpus.append((time.thread_time() - c0) * 1000)
        walls.append((time.perf_counter() - w0) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temp dir)")
    parser.add_argument(
        "--pixels", type=int, default=1024, help="the square image's side: 1024 (1K), 4096 (4K)"
    )
    args = parser.parse_args()
    payload = ImageFactory().fixed_payload(args.pixels, args.pixels)
    b64 = payload.b64
    answer = orjson.dumps(
        {
            "id": "gen-1",
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "images": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64," + b64.decode()},
                            }
                        ],
                    }
                }
            ],
        }
    )
    image = pybase64.b64decode(b64)
    digest = hashlib.sha256(image).hexdigest()
    work_dir = Path(tempfile.mkdtemp(prefix="nanobanana-floor-", dir=args.dir))
    db = sqlite3.connect(work_dir / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE images (id TEXT PRIMARY KEY, sha256 TEXT, size INTEGER)")

    def write(i: int) -> None:
        final = work_dir / f"{i}.png"
        tmp = final.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, image)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)

    def record(i: int) -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO images VALUES (?, ?, ?)", (f"img-{i}", digest, len(image)))
        db.execute("COMMIT")

    steps: list[tuple[str, Callable[[int], object]]] = [
        ("parse the upstream answer, its image cut out first", lambda i: loads(answer)),
        ("base64-decode the image (pybase64, validating)", lambda i: b64decode(b64)),
        ("verify the PNG (IHDR and every chunk's CRC)", lambda i: png_size(image)),
        ("sha256 of the image (its storage key)", lambda i: hashlib.sha256(image).digest()),
        ("write the file: new, fsync, rename", write),
        ("record it: one SQLite row committed", record),
        ("base64-encode the image for the answer", lambda i: pybase64.b64encode(image)),
    ]
    print(
        f"{args.pixels}x{args.pixels} image: {len(image) / 1e6:.2f} MB PNG, "
        f"{len(answer) / 1e6:.2f} MB upstream answer; {args.rounds} rounds, medians\n"
    )
    print("| step | wall ms | CPU ms |")
    print("|---|---|---|")
    total_wall = total_cpu = 0.0
    for name, work in steps:
        wall, cpu = timed(args.rounds, work)
        total_wall += wall
        total_cpu += cpu
        print(f"| {name} | {wall:.3f} | {cpu:.3f} |")
    print(f"| **all of it, one after another** | **{total_wall:.3f}** | **{total_cpu:.3f}** |")
    db.close()
    for f in work_dir.iterdir():
        f.unlink()
    work_dir.rmdir()


if __name__ == "__main__":
    main()
