"""Scenario 8: what the team service's bookkeeping costs on the hot path.

The seed route's throughput (1K image, c=50, no upstream delay) on a fresh service three ways:
plain; with a daily cap on the user and on the whole service (each request's check and hold
under the lock, its ledger line settled at the end); and with the caps and a default webhook
on every generation (its delivery written when the job ends, then signed and POSTed to a
receiver on loopback by the same process).  The caps are far above what the run spends, so
nothing is refused.  CPU per request counts the deliveries too: it is read once the receiver
has had them all.
"""

from __future__ import annotations

import http.server
import threading
import time
from typing import Any

import harness
from context import Bench, Service
from report import Table, pct
from scenario_http import MIN_1K, PROMPT_1K, _errors, _rps, load_spec

CAP_USD = 1_000_000.0
#: How long to wait for the last deliveries after the load.
DELIVERY_WAIT_S = 60.0


class _Receiver(http.server.ThreadingHTTPServer):
    """Answers every POST with 204 and counts them."""

    daemon_threads = True

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(204)
                self.end_headers()
                with server.lock:
                    server.count += 1

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def _put(svc: Service, path: str, body: dict[str, Any]) -> None:
    status, answer = harness.http("PUT", svc.url + path, body, token=svc.token)
    if status != 200:
        raise RuntimeError(f"PUT {path}: HTTP {status} {answer[:200]!r}")


def _caps(svc: Service) -> None:
    """Daily caps on the whole service and on the bench user (the first account: an admin)."""
    import json

    _put(svc, "/api/admin/budget", {"daily_usd": CAP_USD})
    status, body = harness.http("GET", svc.url + "/api/admin/users", token=svc.token)
    if status != 200:
        raise RuntimeError(f"GET /api/admin/users: HTTP {status}")
    user_id = json.loads(body)["users"][0]["id"]
    _put(svc, f"/api/admin/users/{user_id}/budget", {"daily_usd": CAP_USD})


def _run(b: Bench, svc: Service, n: int, c: int, receiver: _Receiver | None) -> dict[str, Any]:
    body = b.body_file("team", {"prompt": PROMPT_1K})
    target = b.seed_target(svc, body, MIN_1K)
    before = harness.cpu_s(svc.proc.pid)
    res = b.loadgen(load_spec(target, n, c))
    sent = res["targets"][0]["ok"] + res["targets"][0]["errors"] + 3
    if receiver is not None:  # the deliveries' sending counts too
        deadline = time.monotonic() + DELIVERY_WAIT_S
        while receiver.count < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        res["deliveries"] = receiver.count
    res["cpu_ms_per_request"] = (harness.cpu_s(svc.proc.pid) - before) * 1000 / max(1, sent)
    return res


def team(b: Bench) -> Table:
    n, c = b.sizes.throughput_requests, b.sizes.throughput_concurrency
    b.say(f"scenario 8: caps and webhooks on the hot path, 1K image, c={c}, {n} requests each")
    table = Table(
        f"8. Caps and webhooks on the hot path, 1K image, {c} concurrent ({n} requests each)",
        ["service", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "added CPU ms/req", "errors"],
    )
    runs: dict[str, dict[str, Any]] = {}
    with b.service() as svc:
        runs["plain"] = _run(b, svc, n, c, None)
    with b.service() as svc:
        _caps(svc)
        runs["caps"] = _run(b, svc, n, c, None)
    receiver = _Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        allow = {"NANOBANANA_WEBHOOK_ALLOW_HOSTS": f"127.0.0.1:{receiver.server_address[1]}"}
        with b.service(env=allow) as svc:
            _caps(svc)
            _put(svc, "/api/settings/webhook", {"url": receiver.url})
            runs["webhook"] = _run(b, svc, n, c, receiver)
    finally:
        receiver.shutdown()
    labels = {
        "plain": "no cap, no webhook",
        "caps": "user and service caps",
        "webhook": "caps and a webhook on every generation",
    }
    base = runs["plain"]["cpu_ms_per_request"]
    for name, label in labels.items():
        run, t = runs[name], runs[name]["targets"][0]
        cpu = run["cpu_ms_per_request"]
        table.add(
            label,
            _rps(run),
            pct(t["latencies_ms"], 50),
            pct(t["latencies_ms"], 99),
            cpu,
            "" if name == "plain" else f"{cpu - base:+.2f}",
            _errors(t),
        )
    table.notes.append(
        "CPU ms/req: the service's CPU time (all threads) per request, the webhook deliveries' "
        f"signing and sending included ({runs['webhook'].get('deliveries', 0)} delivered). "
        "Each row is a fresh service on SQLite; the caps are far above the run's spend."
    )
    table.data = runs
    return table
