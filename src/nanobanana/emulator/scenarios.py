"""Scenario specs: how a request asks the emulator for a fault or a timing.

Grammar: ``spec[,spec...]`` where ``spec`` is ``name`` or ``name:arg[:arg...]``.  Specs come from
the ``X-Emulator-Scenario`` header, from ``[emulator:spec,...]`` markers anywhere in the prompt
text, or (when a request names none) from the configured default.  The full list is in the
package docstring and docs/emulator.md.

A request combines at most one *outcome* (what the service answers), any *payload* modifiers
(how the image is damaged or altered), at most one *transport* fault (how the bytes travel) and
a latency.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "OUTCOMES",
    "PAYLOADS",
    "TRANSPORTS",
    "Plan",
    "ScenarioError",
    "Spec",
    "build_plan",
    "find_markers",
    "parse_specs",
]

HEADER = "x-emulator-scenario"
#: ``[emulator:spec]`` applies to both services; ``[emulator@gemini:spec]`` and
#: ``[emulator@openrouter:spec]`` only to one (e.g. a Google quota that an OpenRouter fallback
#: answers normally, with the same prompt sent to both).
_MARKER = re.compile(r"\[emulator(?:@(gemini|openrouter))?:([^\[\]]*)\]")
SERVICES = ("gemini", "openrouter")
_SIZE = re.compile(r"^(\d+)x(\d+)$")

OUTCOMES = frozenset(
    {
        "ok",
        "quota",
        "quota-day",
        "legacy-error",
        "payment",
        "server-error",
        "safety",
        "blocked-prompt",
        "text-only",
        "midstream-error",
        "error-in-200",
        "flaky",
    }
)
PAYLOADS = frozenset(
    {"bad-base64", "not-an-image", "truncated-image", "string-images", "size", "jpeg", "oversize"}
)
TRANSPORTS = frozenset({"truncated", "slow-drip", "reset", "hangup"})
TIMING = frozenset({"latency", "stagger"})
SERVER_ERROR_CODES = frozenset({500, 502, 503, 504})


class ScenarioError(ValueError):
    """A scenario spec that does not parse; answered with a 400 in the service's shape."""


@dataclass(frozen=True)
class Spec:
    name: str
    args: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return ":".join((self.name, *self.args))

    def number(self, index: int, default: float) -> float:
        return float(self.args[index]) if len(self.args) > index else default

    def integer(self, index: int, default: int) -> int:
        return int(self.args[index]) if len(self.args) > index else default


@dataclass(frozen=True)
class Plan:
    """What one request asked for, resolved."""

    specs: tuple[Spec, ...] = ()
    latency: float = 0.0
    outcome: Spec | None = None
    payload: tuple[Spec, ...] = field(default=())
    transport: Spec | None = None
    #: ``stagger:S``: the k-th request carrying it waits k x S seconds more (see the state).
    stagger: Spec | None = None

    def modifier(self, name: str) -> Spec | None:
        return next((s for s in self.payload if s.name == name), None)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.specs]


def _float(value: str, what: str, *, minimum: float = 0.0, maximum: float = 3600.0) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ScenarioError(f"{what}: {value!r} is not a number") from None
    if not minimum <= number <= maximum:
        raise ScenarioError(f"{what}: {value!r} is outside {minimum}..{maximum}")
    return number


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ScenarioError(f"{what}: {value!r} is not an integer") from None


def _check_args(spec: Spec) -> None:
    """Validate a spec's arguments so a typo fails loudly instead of doing something else."""
    name, args = spec.name, spec.args
    arity: dict[str, tuple[int, int]] = {
        "latency": (1, 1),
        "stagger": (1, 2),
        "quota": (0, 1),
        "legacy-error": (0, 1),
        "server-error": (0, 1),
        "midstream-error": (0, 1),
        "error-in-200": (0, 1),
        "flaky": (2, 3),
        "slow-drip": (1, 2),
        "size": (1, 1),
        "oversize": (1, 1),
    }
    low, high = arity.get(name, (0, 0))
    if not low <= len(args) <= high:
        raise ScenarioError(f"scenario {name!r} takes {low}..{high} argument(s), got {len(args)}")
    checks: dict[str, Callable[[], object]] = {
        "latency": lambda: _float(args[0], "latency seconds"),
        "stagger": lambda: _float(args[0], "stagger seconds"),
        "quota": lambda: args and _float(args[0], "quota retry seconds", maximum=86_400),
        "legacy-error": lambda: args and _float(args[0], "retry seconds", maximum=86_400),
        "server-error": lambda: args and _status(args[0], SERVER_ERROR_CODES),
        "midstream-error": lambda: args and _status(args[0]),
        "error-in-200": lambda: args and _status(args[0]),
        "flaky": lambda: (_int(args[0], "flaky count"), _status(args[1])),
        "slow-drip": lambda: (
            _float(args[0], "slow-drip seconds", minimum=0.001),
            len(args) < 2 or _float(args[1], "slow-drip bytes", minimum=1, maximum=1 << 20),
        ),
        "size": lambda: _parse_size(args[0]),
        "oversize": lambda: _float(args[0], "oversize megabytes", minimum=0.001, maximum=2048),
    }
    check = checks.get(name)
    if check is not None:
        check()


def _status(value: str, allowed: Iterable[int] | None = None) -> int:
    code = _int(value, "status")
    if allowed is not None and code not in set(allowed):
        raise ScenarioError(f"status {code} is not one of {sorted(allowed)}")
    if not 400 <= code <= 599:
        raise ScenarioError(f"status {code} is not an HTTP error status")
    return code


def _parse_size(value: str) -> tuple[int, int]:
    match = _SIZE.match(value)
    if not match:
        raise ScenarioError(f"size {value!r} is not WIDTHxHEIGHT")
    return int(match.group(1)), int(match.group(2))


def size_of(spec: Spec) -> tuple[int, int]:
    return _parse_size(spec.args[0])


def parse_specs(text: str) -> list[Spec]:
    """Parse ``name[:arg...][,name[:arg...]...]``; raises ScenarioError on anything unknown."""
    specs = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, *args = (part.strip() for part in item.split(":"))
        name = name.lower()
        if name not in OUTCOMES | PAYLOADS | TRANSPORTS | TIMING:
            known = ", ".join(sorted(OUTCOMES | PAYLOADS | TRANSPORTS | TIMING))
            raise ScenarioError(f"unknown emulator scenario {name!r}; known: {known}")
        spec = Spec(name, tuple(args))
        _check_args(spec)
        specs.append(spec)
    return specs


def find_markers(texts: Iterable[str], service: str | None = None) -> list[str]:
    """The spec lists of the ``[emulator:...]`` markers in the prompt texts that apply to
    ``service`` (unscoped markers apply to every service)."""
    return [
        m.group(2)
        for text in texts
        for m in _MARKER.finditer(text)
        if m.group(1) is None or service is None or m.group(1) == service
    ]


def strip_markers(text: str) -> str:
    return " ".join(_MARKER.sub(" ", text).split())


def build_plan(
    header: str | None,
    prompt_texts: Iterable[str],
    default: str | None,
    default_latency: float = 0.0,
    service: str | None = None,
) -> Plan:
    """Resolve header + prompt markers (or the default when both are empty) into a Plan."""
    sources = [header] if header else []
    sources += find_markers(prompt_texts, service)
    specs = [spec for source in sources for spec in parse_specs(source)]
    if not specs and default:
        specs = parse_specs(default)
    outcomes = [s for s in specs if s.name in OUTCOMES and s.name != "ok"]
    transports = [s for s in specs if s.name in TRANSPORTS]
    if len(outcomes) > 1:
        raise ScenarioError(
            "at most one outcome scenario per request, got " + ", ".join(s.text for s in outcomes)
        )
    if len(transports) > 1:
        raise ScenarioError(
            "at most one transport scenario per request, got "
            + ", ".join(s.text for s in transports)
        )
    latencies = [s.number(0, 0.0) for s in specs if s.name == "latency"]
    return Plan(
        specs=tuple(specs),
        latency=sum(latencies) if latencies else default_latency,
        outcome=outcomes[0] if outcomes else None,
        payload=tuple(s for s in specs if s.name in PAYLOADS),
        transport=transports[0] if transports else None,
        stagger=next((s for s in specs if s.name == "stagger"), None),
    )
