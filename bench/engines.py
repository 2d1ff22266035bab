"""The task engine under ``nanobanana worker``, measured beside the alternative on Redis.

The service hands external jobs to workers through procrastinate on PostgreSQL
(``server/tasks.py``). This script measures that hand-over against SAQ on Redis, the asyncio
engine a Redis-based design would pick, with the same work on both sides: a task that only
records when it started, so that only the engine's own cost is measured.

    .venv/bin/python bench/engines.py                 # about 1 minute
    .venv/bin/python bench/engines.py --tasks 5000    # a longer burst

Placement: the worker alone on core 1, the producer on core 0 with the orchestrator; the
broker (PostgreSQL or Redis) is not pinned. Two phases per engine:

- **spaced**: one task every 20 ms, so the queue is idle each time. Figure: the hand-over
  latency, from the producer's call to the task's start, at p50 and p99.
- **burst**: ``--tasks`` tasks from 50 producer coroutines at once, a worker concurrency of
  50. Figures: tasks per second (first call to last start), the latency p50, and the CPU
  per task of the worker, of the broker's processes (every ``postgres`` or ``redis-server``
  process on the machine) and of the producer.

procrastinate runs as the service configures it: its task carries a queueing lock (one waiting
task per job row), LISTEN/NOTIFY wakes the worker, finished tasks are deleted. SAQ
(``SAQ_VERSION``) is installed on first use into its own environment, ``bench/out/saq-venv``.
PostgreSQL on 127.0.0.1:5432 (user ``postgres``, trust) and Redis on 127.0.0.1:6379 are needed
(``make services``); the script uses its own database, ``nanobanana_bench_engines``, and Redis
database 15, both emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
SAQ_VENV = OUT / "saq-venv"
SAQ_VERSION = "0.26.4"
DATABASE = "nanobanana_bench_engines"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
REDIS_URL = "redis://127.0.0.1:6379/15"
QUEUE = "bench"
CONCURRENCY = 50
SPACED_EVERY_S = 0.02
ENGINES = {"procrastinate": "PostgreSQL", "saq": "Redis"}
BROKER_PROCESS = {"procrastinate": "postgres", "saq": "redis-server"}


# ----------------------------------------------------------------------------- in the children
def _started(phase: str, t0: float) -> None:
    """A task's only work: say when it started (one line on stdout, read by the orchestrator)."""
    now = time.time()
    sys.stdout.write(f"{phase} {now - t0:.6f} {now:.6f}\n")
    sys.stdout.flush()


def _procrastinate_app() -> Any:
    import logging

    import procrastinate

    # Its warning that the app is made in __main__ (a note for web apps), and its shutdown
    # notes, would fill the output.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=PG_URL))

    @app.task(name="bench.started", queue=QUEUE)
    async def started(phase: str, t0: float) -> None:
        _started(phase, t0)

    return app


def _saq_queue() -> Any:
    from saq import Queue

    return Queue.from_url(REDIS_URL, name=QUEUE)


async def _saq_started(ctx: Any, *, phase: str, t0: float) -> None:
    _started(phase, t0)


async def work(engine: str) -> None:
    """Run the engine's worker until stopped (SIGTERM)."""
    if engine == "procrastinate":
        app = _procrastinate_app()
        async with app.open_async():
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=CONCURRENCY,
                install_signal_handlers=True,
                delete_jobs="always",
            )
        return
    import logging

    from saq import Worker

    logging.getLogger("saq").setLevel(logging.ERROR)  # its notes on stopping idle pollers
    worker = Worker(_saq_queue(), functions=[("started", _saq_started)], concurrency=CONCURRENCY)
    await worker.start()  # until SIGTERM (its own handler)


async def produce(engine: str, phase: str, count: int) -> None:
    """Send ``count`` tasks: one every ``SPACED_EVERY_S`` (spaced) or from ``CONCURRENCY``
    coroutines at once (burst)."""
    if engine == "procrastinate":
        app = _procrastinate_app()
        task = app.tasks["bench.started"]
        async with app.open_async():

            async def send() -> None:
                lock = uuid.uuid4().hex  # as the service: one waiting task per job row
                await task.configure(queueing_lock=lock).defer_async(phase=phase, t0=time.time())

            await _send_all(send, phase, count)
        return
    queue = _saq_queue()
    await queue.connect()
    try:

        async def send() -> None:
            await queue.enqueue("started", phase=phase, t0=time.time())

        await _send_all(send, phase, count)
    finally:
        await queue.disconnect()


async def _send_all(send: Callable[[], Any], phase: str, count: int) -> None:
    if phase == "spaced":
        for _ in range(count):
            await send()
            await asyncio.sleep(SPACED_EVERY_S)
        return

    async def sender(n: int) -> None:
        for _ in range(n):
            await send()

    share, extra = divmod(count, CONCURRENCY)
    await asyncio.gather(*(sender(share + (i < extra)) for i in range(CONCURRENCY)))


# ----------------------------------------------------------------------------- the orchestrator
def ensure_saq() -> Path:
    """The SAQ environment's Python, installing it first if needed (once, about 20 s)."""
    # typing_extensions: imported by saq.types, not declared by saq's package.
    return harness.own_venv(SAQ_VENV, [f"saq[redis]=={SAQ_VERSION}", "typing_extensions"])


def reset_brokers() -> None:
    """An empty database with procrastinate's schema, and an empty Redis database 15."""
    import psycopg
    import redis

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(_procrastinate_app().schema_manager.get_schema())
    redis.Redis.from_url(REDIS_URL).flushdb()


def processes_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as fh:
                    if fh.read().strip() == name:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += harness.cpu_s(pid)
        except OSError:
            continue
    return total


class Worker:
    """The engine's worker on core 1; a thread reads its task lines."""

    def __init__(self, engine: str, python: str) -> None:
        argv = ["taskset", "-c", "1", python, str(Path(__file__)), "_work", engine]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=ROOT, text=True)
        self.lines: list[tuple[str, float, float]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            phase, latency, at = line.split()
            self.lines.append((phase, float(latency), float(at)))

    def seen(self, phase: str) -> list[tuple[float, float]]:
        return [(lat, at) for p, lat, at in list(self.lines) if p == phase]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_phase(engine: str, python: str, worker: Worker, phase: str, count: int) -> dict[str, float]:
    broker = processes_named(BROKER_PROCESS[engine])
    before = (harness.cpu_s(worker.proc.pid), cpu_of(broker))
    argv = ["taskset", "-c", "0", python, str(Path(__file__)), "_produce", engine, phase]
    argv.append(str(count))
    started = time.time()
    producer = subprocess.Popen(argv, cwd=ROOT)
    deadline = time.monotonic() + 300
    while len(worker.seen(phase)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{engine}: {len(worker.seen(phase))} of {count} {phase} tasks ran")
        time.sleep(0.02)
    after = (harness.cpu_s(worker.proc.pid), cpu_of(broker))
    _, status, usage = os.wait4(producer.pid, 0)  # its exact CPU time, as it exits
    producer.returncode = os.waitstatus_to_exitcode(status)
    if producer.returncode != 0:
        raise SystemExit(f"{engine}: the {phase} producer failed")
    seen = worker.seen(phase)
    latencies = sorted(lat for lat, _ in seen)
    last = max(at for _, at in seen)
    out = {
        "tasks": float(count),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "tasks_per_s": count / (last - started),
        "worker_cpu_ms": (after[0] - before[0]) * 1000 / count,
        "broker_cpu_ms": (after[1] - before[1]) * 1000 / count,
        "producer_cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000 / count,
    }
    return out


def measure(engine: str, python: str, tasks: int, spaced: int) -> dict[str, dict[str, float]]:
    worker = Worker(engine, python)
    try:
        time.sleep(2.0)  # connected and listening
        if worker.proc.poll() is not None:
            raise SystemExit(f"{engine}: the worker did not start")
        run_phase(engine, python, worker, "warmup", 50)
        return {
            "spaced": run_phase(engine, python, worker, "spaced", spaced),
            "burst": run_phase(engine, python, worker, "burst", tasks),
        }
    finally:
        worker.stop()


def table(results: dict[str, dict[str, dict[str, float]]], tasks: int) -> str:
    rows = [
        "| engine (broker) | hand-over p50 ms, idle | p99 ms, idle | burst tasks/s "
        f"({tasks}, c={CONCURRENCY}) | burst p50 ms | worker CPU ms/task | broker CPU ms/task "
        "| producer CPU ms/task |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine, r in results.items():
        s, b = r["spaced"], r["burst"]
        rows.append(
            f"| {engine} ({ENGINES[engine]}) | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
            f"| {b['tasks_per_s']:,.0f} | {b['p50_ms']:,.0f} | {b['worker_cpu_ms']:.2f} "
            f"| {b['broker_cpu_ms']:.2f} | {b['producer_cpu_ms']:.2f} |"
        )
    return "\n".join(rows)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_work":
        asyncio.run(work(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_produce":
        asyncio.run(produce(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks in the burst phase")
    parser.add_argument("--spaced", type=int, default=200, help="tasks in the spaced phase")
    args = parser.parse_args()
    saq_python = str(ensure_saq())
    reset_brokers()
    results = {
        "procrastinate": measure("procrastinate", sys.executable, args.tasks, args.spaced),
        "saq": measure("saq", saq_python, args.tasks, args.spaced),
    }
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"Task engines, {when}, load average {os.getloadavg()[0]:.2f}\n\n" + table(
        results, args.tasks
    )
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / "engines.md").write_text(text + "\n")
    (OUT / "engines.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
