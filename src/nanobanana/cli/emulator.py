"""``nanobanana emulator``: serve the offline OpenRouter and Gemini emulator on loopback.

Point any client at it (``--openrouter-base-url``, ``--gemini-base-url``, the ``openai`` or
``google-genai`` SDKs) to try nanobanana, run tests or benchmarks with no key and no cost.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "emulator",
        help="serve the offline OpenRouter and Gemini API emulator",
        description="Serve an offline emulator of the OpenRouter and Gemini image APIs "
        "(synthetic images, documented fault scenarios).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="port (default 8090; 0: any free port)")
    p.add_argument(
        "--fixed-payload",
        action="store_true",
        help="answer every request with the same pre-rendered image (for benchmarks)",
    )
    p.add_argument(
        "--scenario",
        metavar="S",
        help="default scenario for every request, e.g. quota, safety, latency:2",
    )
    p.add_argument(
        "--latency", type=float, metavar="SECONDS", help="added delay before each answer"
    )
    p.add_argument(
        "--retire",
        action="append",
        default=[],
        metavar="MODEL_ID",
        help="answer this model id as retired: not listed, and refused as the provider would "
        "(repeatable; e.g. google/gemini-3.1-flash-image-preview)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..emulator import EmulatorConfig, serve
    from ..emulator.scenarios import ScenarioError, parse_specs
    from ..errors import ValidationError

    if args.scenario:
        try:
            parse_specs(args.scenario)
        except ScenarioError as exc:
            raise ValidationError(f"--scenario: {exc}.", field="scenario") from exc
    if args.latency is not None and args.latency < 0:
        raise ValidationError("--latency must be 0 or more seconds.", field="latency")
    config = EmulatorConfig(
        fixed_payload=args.fixed_payload,
        default_scenario=args.scenario or None,
        latency=args.latency or 0.0,
        retired=frozenset(args.retire),
    )
    serve(args.host, args.port, config)
    return 0
