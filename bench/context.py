"""What every scenario shares: placement, the emulator, sizes for --quick/--full, services."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import litellm_proxy
from harness import Placement, Proc, ServiceConfig

SEED_PATH = "/api/nano-banana/generate"
COMPAT_PATH = "/api/v1/chat/completions"
#: What the first bytes of a chat completion that carries an image hold.
IMAGE_URL = '"image_url"'


@dataclass(frozen=True)
class Sizes:
    """How much each scenario does; ``full`` has the issue's numbers."""

    latency_requests: int
    throughput_requests: int
    throughput_concurrency: int
    k4_requests: int
    k4_concurrency: int
    k4_latency_s: float
    held_requests: int
    held_latency_s: float
    db_jobs: int
    db_requests: int
    cli_runs: int

    @classmethod
    def quick(cls) -> Sizes:
        return cls(200, 300, 50, 20, 20, 2.0, 200, 5.0, 10_000, 60, 5)

    @classmethod
    def full(cls) -> Sizes:
        return cls(200, 1000, 50, 40, 20, 2.0, 1000, 20.0, 10_000, 200, 20)


@dataclass
class Service:
    proc: Proc
    token: str
    data_dir: Path

    @property
    def url(self) -> str:
        return self.proc.url


@dataclass
class Bench:
    placement: Placement
    emulator: Proc
    sizes: Sizes
    out: Path
    work: Path
    compat_available: bool | None = None
    #: Extra environment for every service started (``--service-env``; for experiments).
    service_env: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    #: LiteLLM's proxy beside the service in scenarios 1-3 (``--no-litellm``: without it).
    litellm: bool = True
    #: Why the LiteLLM rows are missing, when they are.
    litellm_missing: str | None = None
    _proxies: dict[str, litellm_proxy.Proxy] = field(default_factory=dict)

    def say(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        line = f"[{stamp}] {text}"
        print(line, flush=True)
        self.log.append(line)

    @contextlib.contextmanager
    def service(
        self,
        database_url: str | None = None,
        username: str = "bench",
        env: dict[str, str] | None = None,
    ) -> Iterator[Service]:
        """A fresh service (its own data folder) with a logged-in user holding the emulator key;
        ``env``: more of its environment."""
        config = ServiceConfig(
            self.emulator.url,
            database_url=database_url,
            extra_env={**self.service_env, **(env or {})},
        )
        proc, data_dir = harness.start_service(self.placement.service, config, self.out / "logs")
        try:
            token = harness.setup_user(proc.url, username)
            if self.compat_available is None:
                self.compat_available = harness.has_route(proc.url, COMPAT_PATH)
            yield Service(proc, token, data_dir)
        finally:
            proc.stop()
            shutil.rmtree(data_dir, ignore_errors=True)

    def proxy(self, model: str) -> litellm_proxy.Proxy | None:
        """LiteLLM's proxy serving ``model`` (started once per model), or None without it."""
        if not self.litellm or self.litellm_missing:
            return None
        if model not in self._proxies:
            try:
                self._proxies[model] = litellm_proxy.start(
                    self.placement.service, model, self.emulator.url, self.out / "logs", self.work
                )
            except Exception as exc:  # the service's own figures still count
                self.litellm_missing = f"LiteLLM's proxy did not start: {exc}"[:300]
                self.say(self.litellm_missing)
                return None
        return self._proxies[model]

    def proxy_pid(self) -> int:
        """The process of the LiteLLM proxy now running (one per scenario)."""
        [proxy] = self._proxies.values()
        return proxy.proc.pid

    def stop_proxies(self) -> None:
        for proxy in self._proxies.values():
            proxy.proc.stop()
        self._proxies.clear()

    def loadgen(self, spec: dict[str, Any]) -> dict[str, Any]:
        return harness.run_loadgen(spec, self.placement.loadgen, self.work)

    # ------------------------------------------------------------------ request bodies
    def body_file(self, name: str, body: dict[str, Any]) -> str:
        path = self.work / f"{name}.json"
        path.write_text(json.dumps(body))
        return str(path)

    def capture_upstream_body(self, svc: Service, seed_body: dict[str, Any]) -> dict[str, Any]:
        """Send ``seed_body`` through the service once and return the request the emulator got
        for it: the direct-to-emulator figure is then measured with the very same request."""
        status, answer = harness.http("POST", svc.url + SEED_PATH, seed_body, token=svc.token)
        if status != 200:
            raise RuntimeError(f"seed request failed: HTTP {status} {answer[:300]!r}")
        status, raw = harness.http("GET", f"{self.emulator.url}/_emulator/requests?limit=5")
        entries = [
            e for e in json.loads(raw)["requests"] if e["path"].endswith("/chat/completions")
        ]
        if not entries:
            raise RuntimeError("the emulator recorded no chat completion")
        body: dict[str, Any] = entries[-1]["body"]
        return body

    # ------------------------------------------------------------------ targets
    def direct_target(self, body_file: str, min_bytes: int) -> dict[str, Any]:
        url = f"{self.emulator.url}/api/v1/chat/completions"
        return harness.target("direct", url, body_file, harness.EMULATOR_KEY, min_bytes, IMAGE_URL)

    @staticmethod
    def seed_target(svc: Service, body_file: str, min_bytes: int) -> dict[str, Any]:
        url = svc.url + SEED_PATH
        return harness.target("seed", url, body_file, svc.token, min_bytes, '"images":["')

    @staticmethod
    def compat_target(svc: Service, body_file: str, min_bytes: int) -> dict[str, Any]:
        url = svc.url + COMPAT_PATH
        return harness.target("compat", url, body_file, svc.token, min_bytes, IMAGE_URL)
