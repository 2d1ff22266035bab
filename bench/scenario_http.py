"""Scenarios 1-4: the generation paths, the emulator direct beside the service.

1. added latency at c=1 (1K image);  2. throughput at c=50 (1K, no upstream delay);
3. the 4K path (20 MB answers, 2 s upstream, c=20) with peak memory per in-flight image;
4. held concurrency (N generations parked on a slow upstream, then landing together).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import harness
from context import Bench, Service
from report import Table, fmt, pct, signed, verdict

MIN_1K = 1_000_000  # a 1K answer is ~1.7 MB; anything much smaller is not an image answer
MIN_4K = 15_000_000
PROMPT_1K = "a lighthouse on a cliff at dusk, request {n}"
NA = "not available"


def _paths(b: Bench, svc: Service, seed_body: dict[str, Any], min_bytes: int) -> list[Any]:
    """Targets: direct, LiteLLM's proxy (the very request the emulator got, sent through it),
    seed and (when the service has it) the compat path."""
    upstream = b.capture_upstream_body(svc, seed_body)
    direct_file = b.body_file("direct", upstream)
    targets = [b.direct_target(direct_file, min_bytes)]
    proxy = b.proxy(str(upstream["model"]))
    if proxy is not None:
        targets.append(proxy.target(direct_file, min_bytes))
    targets.append(b.seed_target(svc, b.body_file("seed", seed_body), min_bytes))
    if b.compat_available:
        targets.append(b.compat_target(svc, direct_file, min_bytes))
    return targets


def _answerer(b: Bench, svc: Service, name: str) -> tuple[int, bool]:
    """The process that answers ``name``'s requests, and whether to count its children."""
    if name == "direct":
        return b.emulator.pid, False
    if name == "litellm":
        return b.proxy_pid(), True
    return svc.proc.pid, False


def _cpu(pid_tree: tuple[int, bool]) -> float:
    pid, tree = pid_tree
    return harness.tree_cpu_s(pid) if tree else harness.cpu_s(pid)


LABELS = {
    "direct": "emulator direct",
    "litellm": "LiteLLM proxy (openrouter/)",
    "compat": "OpenRouter-compatible",
    "seed": "seed /api/nano-banana/generate",
}


def _note_litellm(
    b: Bench, table: Table, values: dict[str, float], sentence: str, *, lower_is_better: bool
) -> None:
    """Add ``sentence`` with ``{ratios}``: each of our paths' figure beside LiteLLM's, as how
    many times better ours is (LiteLLM's over ours when lower is better, ours over LiteLLM's
    otherwise); or why LiteLLM's row is missing."""
    if "litellm" not in values:
        if b.litellm_missing:
            table.notes.append(b.litellm_missing)
        return
    theirs = values["litellm"]
    ratios = []
    for name in ("compat", "seed"):
        if name in values:
            better, worse = (theirs, values[name]) if lower_is_better else (values[name], theirs)
            ratios.append(f"{LABELS[name]} " + (f"{better / worse:.1f}x" if worse > 0 else "n/a"))
    table.notes.append(sentence.format(ratios=", ".join(ratios)))


def _errors(result: dict[str, Any]) -> str:
    samples = result["error_samples"]
    return f"{result['errors']}" + (f" ({samples[0][:80]})" if samples else "")


def load_spec(target: dict[str, Any], n: int, c: int) -> dict[str, Any]:
    """``n`` requests to ``target``, ``c`` at a time, after 3 to warm up."""
    return {
        "mode": "load",
        "targets": [target],
        "requests": n,
        "concurrency": c,
        "warmup": 3,
        "timeout_s": 120,
        "deadline_s": 300,
    }


# ---------------------------------------------------------------------------- scenario 1
def added_latency(b: Bench) -> Table:
    n = b.sizes.latency_requests
    b.say(f"scenario 1: added latency, 1K image, c=1, {n} requests per path (interleaved)")
    table = Table(
        f"1. Added latency, 1K image, one request at a time ({n} per path, interleaved)",
        ["path", "p50 ms", "p99 ms", "added p50", "added p99", "target", "result", "errors"],
    )
    with b.service() as svc:
        targets = _paths(b, svc, {"prompt": PROMPT_1K}, MIN_1K)
        answerers = {t["name"]: _answerer(b, svc, t["name"]) for t in targets}
        cpu_before = {name: _cpu(a) for name, a in answerers.items()}
        res = b.loadgen(
            {
                "mode": "alternate",
                "targets": targets,
                "requests": n,
                "warmup": 5,
                "timeout_s": 60,
                "deadline_s": 600,
            }
        )
        cpu_after = {name: _cpu(a) for name, a in answerers.items()}
    served = {t["name"]: t["ok"] + t["errors"] + 5 for t in res["targets"]}
    ours = [name for name in served if name in ("seed", "compat")]
    cpu_per = (
        (cpu_after[ours[0]] - cpu_before[ours[0]]) * 1000 / max(1, sum(served[o] for o in ours))
    )
    by_name = {t["name"]: t for t in res["targets"]}
    direct = by_name["direct"]["latencies_ms"]
    d50, d99 = pct(direct, 50), pct(direct, 99)
    table.add("emulator direct", d50, d99, "", "", "", "", _errors(by_name["direct"]))
    added: dict[str, float] = {}
    if "litellm" in by_name:
        lat = by_name["litellm"]["latencies_ms"]
        added["litellm"] = pct(lat, 50) - d50
        table.add(
            LABELS["litellm"], pct(lat, 50), pct(lat, 99), signed(added["litellm"]),
            signed(pct(lat, 99) - d99), "", "", _errors(by_name["litellm"]),
        )  # fmt: skip
    limits = {"seed": (5.0, 10.0), "compat": (2.0, 5.0)}
    for name in ("compat", "seed"):
        lim50, lim99 = limits[name]
        target = f"<= +{lim50:g} / +{lim99:g}"
        if name not in by_name:
            table.add(LABELS[name], NA, NA, NA, NA, target, NA, "")
            continue
        lat = by_name[name]["latencies_ms"]
        a50, a99 = pct(lat, 50) - d50, pct(lat, 99) - d99
        added[name] = a50
        ok = a50 <= lim50 and a99 <= lim99 and by_name[name]["errors"] == 0
        table.add(
            LABELS[name],
            pct(lat, 50),
            pct(lat, 99),
            signed(a50),
            signed(a99),
            target,
            verdict(ok),
            _errors(by_name[name]),
        )
    table.notes.append(
        f"Service CPU per request (all its paths, all threads): {cpu_per:.1f} ms. Added "
        "p99 is the service's p99 minus the direct p99."
    )
    cpu_note = ""
    if "litellm" in served:
        lit_cpu = (cpu_after["litellm"] - cpu_before["litellm"]) * 1000 / served["litellm"]
        cpu_note = f" LiteLLM's CPU per request: {lit_cpu:.1f} ms, ours {cpu_per:.1f} ms."
    sentence = "LiteLLM's added p50 over ours: {ratios} (goal: 10x or more)." + cpu_note
    _note_litellm(b, table, added, sentence, lower_is_better=True)
    table.data = res
    return table


# ---------------------------------------------------------------------------- scenario 2
def throughput(b: Bench) -> Table:
    n, c = b.sizes.throughput_requests, b.sizes.throughput_concurrency
    b.say(f"scenario 2: throughput, 1K image, c={c}, {n} requests per path")
    table = Table(
        f"2. Throughput, 1K image, {c} concurrent, no upstream delay ({n} requests per path)",
        [
            "path",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU ms/req",
            "errors",
            "vs direct",
            "target",
            "result",
        ],
    )
    runs: dict[str, Any] = {}
    with b.service() as svc:
        targets = _paths(b, svc, {"prompt": PROMPT_1K}, MIN_1K)
        for target in targets:
            # CPU per request of the process that answers: the emulator for the direct row,
            # LiteLLM's proxy for its row, the service otherwise (less sensitive to a busy
            # machine than wall time).
            answerer = _answerer(b, svc, target["name"])
            before = _cpu(answerer)
            res = b.loadgen(load_spec(target, n, c))
            ok = max(1, res["targets"][0]["ok"] + 3)
            res["cpu_ms_per_request"] = (_cpu(answerer) - before) * 1000 / ok
            runs[target["name"]] = res
    direct_rps = _rps(runs["direct"])
    limits = {"direct": None, "litellm": None, "compat": 500, "seed": 300}
    for name in ("direct", "litellm", "compat", "seed"):
        if name == "litellm" and name not in runs:
            continue
        limit = limits[name]
        target = f">= {limit} req/s, 0 errors" if limit else ""
        if name not in runs:
            table.add(LABELS[name], NA, NA, NA, NA, NA, NA, target, NA)
            continue
        t = runs[name]["targets"][0]
        rps = _rps(runs[name])
        ok = None if limit is None else rps >= limit and t["errors"] == 0
        table.add(
            LABELS[name],
            rps,
            pct(t["latencies_ms"], 50),
            pct(t["latencies_ms"], 99),
            runs[name]["cpu_ms_per_request"],
            _errors(t),
            "" if name == "direct" else f"{rps / direct_rps:.2f}x",
            target,
            "" if ok is None else verdict(ok),
        )
    table.notes.append(
        "CPU ms/req: CPU time (all threads) of the answering process per request: the "
        "emulator for the direct row, LiteLLM's proxy (with its workers) for its row, the "
        "service for the others. On one core, 1000 / CPU ms/req bounds req/s whatever else "
        "runs on the machine."
    )
    rates = {name: _rps(run) for name, run in runs.items()}
    sentence = "Our req/s over LiteLLM's: {ratios} (goal: 5x or more)."
    _note_litellm(b, table, rates, sentence, lower_is_better=False)
    table.data = runs
    return table


def _rps(run: dict[str, Any]) -> float:
    return float(run["targets"][0]["ok"] / run["elapsed_s"]) if run["elapsed_s"] else 0.0


# ---------------------------------------------------------------------------- scenario 3
class Sampler:
    """Samples a process's RSS (and, optionally, connections to a port) in a thread."""

    def __init__(self, pid: int, port: int | None = None, every: float = 0.1) -> None:
        self.pid, self.port, self.every = pid, port, every
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            conns = harness.established_to(self.port) if self.port else 0
            self.samples.append((time.monotonic() - self.t0, harness.rss_mb(self.pid), conns))

    def __enter__(self) -> Sampler:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def path_4k(b: Bench) -> Table:
    n, c, delay = b.sizes.k4_requests, b.sizes.k4_concurrency, b.sizes.k4_latency_s
    b.say(f"scenario 3: 4K path, {delay:g} s upstream, c={c}, {n} requests per path")
    table = Table(
        f"3. 4K path: ~20 MB answers, {delay:g} s upstream, {c} concurrent ({n} per path)",
        [
            "path",
            "p50 ms",
            "p99 ms",
            "added p50",
            "idle RSS MB",
            "peak RSS MB",
            "MB per in-flight",
            "RSS after MB",
            "CPU ms/req",
            "errors",
            "result",
        ],
    )
    seed_body = {
        "prompt": f"a mountain panorama [emulator:latency:{delay:g}], request {{n}}",
        "model": "gemini-3-pro-image",
        "image_size": "4K",
    }
    runs: dict[str, Any] = {}
    memory: dict[str, tuple[float, float, float]] = {}
    cpu_ms: dict[str, float] = {}
    with b.service() as svc:
        targets = _paths(b, svc, seed_body, MIN_4K)
        for target in targets:
            pid = _answerer(b, svc, target["name"])[0]
            spec = {
                "mode": "load",
                "targets": [target],
                "requests": n,
                "concurrency": c,
                "timeout_s": 120,
                "deadline_s": 300,
            }
            time.sleep(1.0)
            idle = harness.rss_mb(pid)
            harness.reset_hwm(pid)
            cpu_before = harness.cpu_s(pid)
            runs[target["name"]] = b.loadgen(spec)
            cpu_ms[target["name"]] = (harness.cpu_s(pid) - cpu_before) * 1000 / n
            peak = harness.hwm_mb(pid)
            time.sleep(5.0)  # the service gives free memory back after 2 s without a job
            memory[target["name"]] = (idle, peak, harness.rss_mb(pid))
    d = runs["direct"]["targets"][0]
    d50 = pct(d["latencies_ms"], 50)
    table.add(
        "emulator direct", d50, pct(d["latencies_ms"], 99), "", "", "", "", "", "", _errors(d), ""
    )
    added_by: dict[str, float] = {}
    for name in ("litellm", "compat", "seed"):
        if name not in runs:
            if name != "litellm":
                table.add(LABELS[name], NA, NA, NA, NA, NA, NA, NA, NA, "", NA)
            continue
        t = runs[name]["targets"][0]
        idle, peak, after = memory[name]
        per = (peak - idle) / c
        added = added_by[name] = pct(t["latencies_ms"], 50) - d50
        ok = added <= 250 and per <= 30 and t["errors"] == 0
        table.add(
            LABELS[name],
            pct(t["latencies_ms"], 50),
            pct(t["latencies_ms"], 99),
            signed(added),
            idle,
            peak,
            per,
            after,
            f"{cpu_ms[name]:.0f}",
            _errors(t),
            ""
            if name == "litellm"
            else verdict(ok) + (" (stretch met)" if ok and per <= 5 else ""),
        )
    table.notes.append(
        "targets: <= +250 ms p50 added; (peak RSS - idle RSS) / concurrency <= 30 MB "
        "(stretch <= 5 MB); no errors. Peak RSS is VmHWM, reset before each path. "
        "CPU ms/req: the service's CPU time (all threads) per request; the answers land "
        "together on one core, so the median request waits for about half of the others'."
    )
    sentence = "LiteLLM's added p50 over ours: {ratios}."
    _note_litellm(b, table, added_by, sentence, lower_is_better=True)
    table.data = {"runs": runs, "memory": memory, "cpu_ms_per_request": cpu_ms}
    return table


# ---------------------------------------------------------------------------- scenario 4
def held(b: Bench) -> Table:
    n, delay = b.sizes.held_requests, b.sizes.held_latency_s
    b.say(f"scenario 4: {n} generations held against a {delay:g} s upstream")
    table = Table(
        f"4. Held concurrency: {n} generations in flight, {delay:g} s upstream, 1K image",
        ["measure", "value", "target", "result"],
    )
    seed_body = {"prompt": f"a quiet harbour [emulator:latency:{delay:g}], request {{n}}"}
    with b.service() as svc:
        pid = svc.proc.pid
        cold_idle = harness.rss_mb(pid)
        upstream = b.capture_upstream_body(svc, seed_body)  # also the warm-up generation
        direct_file = b.body_file("held-direct", upstream)
        base = {
            "mode": "load",
            "requests": n,
            "concurrency": n,
            "timeout_s": delay + 120,
            "deadline_s": delay + 300,
        }
        direct = b.loadgen({**base, "targets": [b.direct_target(direct_file, MIN_1K)]})
        time.sleep(2.0)
        idle = harness.rss_mb(pid)
        harness.reset_hwm(pid)
        seed = b.seed_target(svc, b.body_file("held-seed", seed_body), MIN_1K)
        with Sampler(pid, b.emulator.port, every=0.2) as sampler:
            proc = harness.start_loadgen({**base, "targets": [seed]}, b.placement.loadgen, b.work)
            result = harness.finish_loadgen(proc, timeout=delay + 400)
        peak = harness.hwm_mb(pid)
        time.sleep(5.0)
        after = harness.rss_mb(pid)
    t = result["targets"][0]
    dt = direct["targets"][0]
    parked, full_at = _parked_rss(sampler.samples, n, delay)
    per_kb = (parked - idle) * 1024 / n if parked else float("nan")
    extra = (pct(t["latencies_ms"], 50) - pct(dt["latencies_ms"], 50)) / 1000
    warm_idle_ok = idle <= 100
    table.add("succeeded", f"{t['ok']} of {n}", f"all {n}", verdict(t["ok"] == n))
    table.add("errors", _errors(t), "0", verdict(t["errors"] == 0))
    table.add(
        "p50: direct / service",
        f"{pct(dt['latencies_ms'], 50) / 1000:.2f} s / {pct(t['latencies_ms'], 50) / 1000:.2f} s",
        "",
        "",
    )
    table.add("extra p50 when all land", f"{extra:+.2f} s", "< 0.5 s", verdict(extra < 0.5))
    table.add(
        "RSS while parked (all upstream calls open)",
        f"{fmt(parked)} MB" + (f" ({full_at})" if full_at else ""),
        "",
        "",
    )
    table.add("memory per waiting request", f"{fmt(per_kb)} KB", "<= 50 KB", verdict(per_kb <= 50))
    table.add("peak RSS when all land", f"{fmt(peak)} MB", "", "")
    table.add(
        "RSS 5 s after the burst",
        f"{fmt(after)} MB ({signed(after - idle)} MB vs idle)",
        "<= idle + 100 MB",
        verdict(after - idle <= 100),
    )
    table.add(
        "idle RSS: fresh / after one generation",
        f"{fmt(cold_idle)} / {fmt(idle)} MB",
        "<= 100 MB",
        verdict(warm_idle_ok),
    )
    table.data = {"direct": direct, "service": result, "samples": sampler.samples}
    return table


def _parked_rss(samples: list[tuple[float, float, int]], n: int, delay: float) -> tuple[float, str]:
    """The highest RSS while every upstream call was open (before the first could land)."""
    full = [s for s in samples if s[2] >= n]
    if not full:
        most = max((s[2] for s in samples), default=0)
        window = [s for s in samples if s[2] >= most and s[0] < delay]
        note = f"at most {most} upstream calls open at once"
    else:
        start = full[0][0]
        window = [s for s in full if s[0] <= start + delay * 0.5]
        note = f"all {n} open {start:.1f} s after the first request"
    return (max(s[1] for s in window) if window else float("nan")), note
