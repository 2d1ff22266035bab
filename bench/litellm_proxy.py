"""LiteLLM's proxy beside the service: what a user would pick instead, measured in the same run.

On first use ``ensure_installed`` puts ``litellm[proxy]`` into its own virtual environment,
``bench/out/litellm-venv`` (its dependencies must not mix with the service's), at one pinned
release, ``VERSION``, so the figures name what they measured.
``start`` runs it the way its docs deploy it: ``litellm --config`` with one worker, pinned to
the service's core, with OpenRouter as the provider pointed at the emulator and a master key,
so that it, too, authenticates every request.  No database: it keeps no history, no files and
no costs per user, where the service stores every image and job.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import harness

VENV = harness.BENCH / "out" / "litellm-venv"
MASTER_KEY = "sk-bench-litellm-CANARY-000000"  # a canary: the proxy's own bearer token


#: The newest release whose ``proxy`` extra installs from the package index used here: later
#: ones pin ``litellm-proxy-extras`` releases (and, from 1.110, a ``litellm-proxy`` package)
#: that the index does not serve.
VERSION = "1.108.7"


def ensure_installed(say: Callable[[str], None] = print) -> Path:
    """The proxy's ``litellm`` command, installing it first if needed (a few minutes once)."""
    harness.own_venv(VENV, [f"litellm[proxy]=={VERSION}"], say)
    return VENV / "bin" / "litellm"


def installed_version() -> str:
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import importlib.metadata as m; "
         "print(m.version('litellm'))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


@dataclass
class Proxy:
    proc: harness.Proc
    model: str

    @property
    def url(self) -> str:
        return self.proc.url

    def target(self, body_file: str, min_bytes: int) -> dict[str, object]:
        """A load-generator target: OpenAI's chat completions on the proxy, same body."""
        url = f"{self.url}/chat/completions"
        return harness.target("litellm", url, body_file, MASTER_KEY, min_bytes, '"image_url"')


def config(model: str, emulator_url: str) -> dict[str, object]:
    """The proxy's config: ``model`` (as the request names it) routed to OpenRouter."""
    return {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openrouter/{model}",
                    "api_base": f"{emulator_url}/api/v1",
                    "api_key": harness.EMULATOR_KEY,
                },
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"telemetry": False},
    }


def start(core: int | None, model: str, emulator_url: str, logs: Path, work: Path) -> Proxy:
    exe = ensure_installed()
    cfg = work / "litellm-config.json"  # YAML is a superset of JSON: the proxy reads it
    cfg.write_text(json.dumps(config(model, emulator_url)))
    port = harness.free_port()
    env = harness.base_env()
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list
            "LITELLM_LOG": "ERROR",
            "LITELLM_MODE": "PRODUCTION",
        }
    )
    argv = [str(exe), "--config", str(cfg), "--host", harness.HOST, "--port", str(port)]
    argv += ["--num_workers", "1"]
    proc = harness.spawn("litellm", argv, core, env, logs, port)
    try:
        harness.wait_ready(f"{proc.url}/health/liveliness", proc.proc, timeout=180)
    except RuntimeError:
        proc.stop()
        raise
    return Proxy(proc, model)
