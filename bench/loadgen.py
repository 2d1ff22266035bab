"""A small HTTP load generator (aiohttp), run in its own process pinned to a core by ``run.py``.

    loadgen.py SPEC.json  ->  prints one JSON object with the results

The spec names one or more targets (URL, body file, headers, what a good answer looks like) and
how to drive them:

- ``"mode": "alternate"``: one request at a time, cycling through the targets (A, B, A, B ...),
  so that the targets see the same machine noise; ``requests`` is per target.
- ``"mode": "load"``: ``concurrency`` workers on the first target only, ``requests`` in all.

Every loop is bounded by a count and by ``deadline_s``.  Requests go only to loopback
addresses (the URL host is checked).  Every request sends ``Accept-Encoding: identity``: base64
image bodies are never compressed.  ``{n}`` in a body file is replaced by the request's number,
so each request's prompt differs (a stored image then differs too).

An answer counts as good when its status is ``expect_status`` (200), it has at least
``min_bytes`` bytes, and ``expect`` (bytes, if given) occurs in its first ``expect_within``
bytes.  Anything else is an error, kept with its status and the first bytes of its body.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
MAX_ERRORS_KEPT = 5


@dataclass
class Target:
    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    expect_status: int = 200
    min_bytes: int = 0
    expect: bytes | None = None
    expect_within: int = 4096
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    bytes_in: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Target:
        host = urlsplit(spec["url"]).hostname
        if host not in LOOPBACK:
            raise SystemExit(f"refusing a non-loopback target: {spec['url']}")
        body = b""
        if spec.get("body_file"):
            with open(spec["body_file"], "rb") as fh:
                body = fh.read()
        headers = {"Accept-Encoding": "identity", **spec.get("headers", {})}
        if body:
            headers.setdefault("Content-Type", "application/json")
        expect = spec.get("expect")
        return cls(
            name=spec["name"],
            url=spec["url"],
            body=body,
            headers=headers,
            expect_status=int(spec.get("expect_status", 200)),
            min_bytes=int(spec.get("min_bytes", 0)),
            expect=expect.encode() if expect else None,
            expect_within=int(spec.get("expect_within", 4096)),
        )

    def body_for(self, n: int) -> bytes:
        return self.body.replace(b"{n}", str(n).encode()) if self.body else b""

    def note_error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERRORS_KEPT:
            self.error_samples.append(what[:300])

    def result(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latencies_ms": [round(x * 1000, 3) for x in self.latencies],
            "ok": len(self.latencies),
            "errors": self.errors,
            "error_samples": self.error_samples,
            "bytes_in": self.bytes_in,
        }


async def one(session: aiohttp.ClientSession, t: Target, n: int, timeout: float) -> None:
    data = t.body_for(n)
    started = time.perf_counter()
    try:
        method = session.post if data else session.get
        async with method(
            t.url,
            data=data or None,
            headers=t.headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            auto_decompress=False,
        ) as resp:
            body = await resp.read()
            status = resp.status
            encoding = resp.headers.get("Content-Encoding", "identity")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        t.note_error(f"{type(exc).__name__}: {exc}")
        return
    elapsed = time.perf_counter() - started
    t.bytes_in += len(body)
    if encoding != "identity":
        t.note_error(f"compressed answer ({encoding}) despite Accept-Encoding: identity")
    elif status != t.expect_status:
        t.note_error(f"HTTP {status}: {body[:200]!r}")
    elif len(body) < t.min_bytes:
        t.note_error(f"short answer: {len(body)} bytes < {t.min_bytes}")
    elif t.expect is not None and t.expect not in body[: t.expect_within]:
        t.note_error(f"{t.expect!r} not in the answer's first bytes: {body[:200]!r}")
    else:
        t.latencies.append(elapsed)


async def alternate(
    session: aiohttp.ClientSession, targets: list[Target], n: int, timeout: float, deadline: float
) -> None:
    for i in range(n):
        for t in targets:
            if time.monotonic() > deadline:
                return
            await one(session, t, i, timeout)


async def load(
    session: aiohttp.ClientSession,
    t: Target,
    n: int,
    concurrency: int,
    timeout: float,
    deadline: float,
) -> None:
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < n and time.monotonic() < deadline:
            issued += 1
            await one(session, t, issued, timeout)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    targets = [Target.from_spec(s) for s in spec["targets"]]
    n = int(spec["requests"])
    concurrency = int(spec.get("concurrency", 1))
    timeout = float(spec.get("timeout_s", 120))
    deadline = time.monotonic() + float(spec.get("deadline_s", 600))
    warmup = int(spec.get("warmup", 0))
    connector = aiohttp.TCPConnector(limit=0, force_close=False, ttl_dns_cache=None)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        for i in range(warmup):
            for t in targets:
                await one(session, t, -1 - i, timeout)
        for t in targets:
            t.latencies.clear()
            t.errors, t.error_samples, t.bytes_in = 0, [], 0
        started = time.perf_counter()
        if spec.get("mode", "load") == "alternate":
            await alternate(session, targets, n, timeout, deadline)
        else:
            await load(session, targets[0], n, concurrency, timeout, deadline)
        elapsed = time.perf_counter() - started
    return {
        "elapsed_s": round(elapsed, 4),
        "concurrency": concurrency,
        "targets": [t.result() for t in targets],
        "deadline_hit": time.monotonic() > deadline,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        spec_in = json.load(fh)
    try:
        from uvloop import run as run_loop
    except ImportError:
        run_loop = asyncio.run  # type: ignore[assignment]
    print(json.dumps(run_loop(main(spec_in))))
