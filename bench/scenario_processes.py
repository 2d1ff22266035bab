"""Scenario 7: the scale-out on this machine.  Throughput of the seed endpoint at c=50 (1K
image, no upstream delay) on PostgreSQL with one and with two web processes, with jobs run
in the web processes (embedded) or left to ``nanobanana worker`` processes (external), and
the CPU that all the service's processes spend per generation, so that the figure that
scales with cores is shown beside the one this 2-core machine can reach."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from typing import Any

import harness
from context import Bench, Service
from cryptography.fernet import Fernet
from report import Table, pct
from scenario_db import _pg_database
from scenario_http import MIN_1K, PROMPT_1K, _errors, _rps, load_spec

REDIS = "redis://127.0.0.1:6379/0"
#: (label, web processes, worker processes); workers 0: the web processes run the jobs.
SETUPS = [
    ("1 web process, jobs in it", 1, 0),
    ("2 web processes, jobs in them", 2, 0),
    ("1 web process + 1 worker", 1, 1),
    ("2 web processes + 2 workers", 2, 2),
]


def processes(b: Bench) -> Table:
    n, c = b.sizes.throughput_requests, b.sizes.throughput_concurrency
    b.say(f"scenario 7: processes, 1K image, c={c}, {n} requests per setup (PostgreSQL, Redis)")
    table = Table(
        f"7. Processes: seed endpoint, 1K image, {c} concurrent, no upstream delay "
        f"({n} requests per setup; PostgreSQL and Redis on this machine)",
        ["setup", "req/s", "p50 ms", "p99 ms", "CPU ms/generation", "errors"],
    )
    for label, webs, workers in SETUPS:
        res = _run(b, webs, workers, n, c)
        t = res["targets"][0]
        table.add(
            label,
            _rps(res),
            pct(t["latencies_ms"], 50),
            pct(t["latencies_ms"], 99),
            res["cpu_ms_per_generation"],
            _errors(t),
        )
    table.notes.append(
        "CPU ms/generation: user + system time of every process of the service (web processes "
        "and workers; not PostgreSQL, Redis or the emulator) per answered request. It is the "
        "figure that scales: with k free cores the service can answer about k * 1000 / (CPU "
        "ms/generation) generations per second, until PostgreSQL's write rate or the "
        "provider's limits bind. On 2 cores the load generator, the emulator, PostgreSQL and "
        "Redis share the cores with the service, so req/s here shows the ceiling of this "
        "machine, not of the design."
    )
    return table


def _run(b: Bench, webs: int, workers: int, n: int, c: int) -> dict[str, Any]:
    name = f"nanobanana_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_database(name, drop=False))
    # Every process decrypts the provider key the web process stored: one master key.
    extra = {
        "NANOBANANA_REDIS_URL": REDIS,
        "NANOBANANA_MASTER_KEYS": Fernet.generate_key().decode(),
    }
    if workers:
        extra["NANOBANANA_JOBS"] = "external"
    config = harness.ServiceConfig(
        b.emulator.url,
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
        extra_env={**b.service_env, **extra},
        extra_args=["--workers", str(webs)] if webs > 1 else [],
    )
    logs = b.out / "logs"
    svc, data_dir = harness.start_service(None, config, logs)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # One host: the workers share the web process's data folder (its images); on
        # several hosts they would share an S3 bucket instead (docs/deploy.md).
        env = harness.service_env(config, data_dir)
        for i in range(workers):
            with open(logs / f"worker{i}.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        [harness.NANOBANANA, "worker"],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        service = Service(svc, harness.setup_user(svc.url), data_dir)
        body = b.body_file("processes", {"prompt": PROMPT_1K})
        target = b.seed_target(service, body, MIN_1K)
        pids = [svc.pid, *(p.pid for p in procs)]
        before = sum(harness.tree_cpu_s(pid) for pid in pids)
        res = b.loadgen(load_spec(target, n, c))
        spent = sum(harness.tree_cpu_s(pid) for pid in pids) - before
        res["cpu_ms_per_generation"] = spent * 1000 / max(1, res["targets"][0]["ok"] + 3)
        return res
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        svc.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        asyncio.run(_pg_database(name, drop=True))
