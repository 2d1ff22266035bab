"""``nanobanana models``: the built-in catalog merged with what each provider lists live.

Live discovery runs for every provider that can list: with a key, or without one for
OpenRouter, whose listing is public (``--offline`` skips it).  A provider
whose listing fails is reported as a warning and its catalog entries are still shown: the
table is for choosing a model, and the catalog alone answers that.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .common import add_base_url_options, base_urls_from, warn

if TYPE_CHECKING:
    from ..catalog import ModelSpec


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list image models: ids, providers, ratios, sizes, prices",
        description="List image models: the built-in catalog merged with live discovery.",
    )
    p.add_argument("-p", "--provider", help="only models served by this provider")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument("--offline", action="store_true", help="the built-in catalog only, no calls")
    add_base_url_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    specs = asyncio.run(_collect(args))
    if args.json:
        print(json.dumps([_spec_json(s) for s in specs], indent=2, ensure_ascii=False))
    else:
        _print_table(specs)
    return 0


async def _collect(args: argparse.Namespace) -> list[ModelSpec]:
    from ..client import AsyncClient
    from ..errors import UpstreamError
    from ..providers import PROVIDERS, canonical_provider
    from ..transport import one_shot_transport

    names = [canonical_provider(args.provider)] if args.provider else list(PROVIDERS)
    found: dict[str, ModelSpec] = {}
    transport = one_shot_transport()
    async with AsyncClient(base_urls=base_urls_from(args), transport=transport) as client:
        for name in names:
            live = not args.offline and client.can_list(name)
            try:
                specs = await client.models(name, live=live)
            except UpstreamError as exc:
                warn(f"could not list {name}'s models ({exc}); showing the built-in catalog.")
                specs = await client.models(name, live=False)
            for spec in specs:
                found.setdefault(spec.id, spec)
    return list(found.values())


def _spec_json(spec: ModelSpec) -> dict[str, Any]:
    out = spec.to_dict()
    out["providers"] = list(spec.providers)
    return out


def _price(spec: ModelSpec) -> str:
    prices = [(s, spec.pricing.image_cost(s)) for s in spec.sizes]
    known = [f"{s} ${c:.3f}" for s, c in prices if c is not None]
    return "\n".join(known) if known else "—"


def _ratios(spec: ModelSpec) -> str:
    from ..catalog import STANDARD_RATIOS

    if set(STANDARD_RATIOS) <= set(spec.aspect_ratios):
        extra = [r for r in spec.aspect_ratios if r not in STANDARD_RATIOS]
        return "standard" + (" + " + " ".join(extra) if extra else "")
    return " ".join(spec.aspect_ratios)


def _print_table(specs: list[ModelSpec]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Image models", title_justify="left", show_lines=False)
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("providers", overflow="fold")
    table.add_column("aspect ratios", overflow="fold")
    table.add_column("sizes")
    table.add_column("price / image", overflow="fold")
    table.add_column("shutdown", overflow="fold")
    for spec in specs:
        ident = spec.id + (" (live)" if spec.discovered else "")
        if spec.recommended:
            ident += " ★"
        typed = [a for a in spec.aliases if "preview" not in a]  # not the retired spellings
        if typed:
            ident += "\n[dim]also: " + ", ".join(typed) + "[/dim]"
        shutdown = "—"
        if spec.shutdown is not None:
            shutdown = spec.shutdown.isoformat()
            if spec.replaced_by:
                shutdown += f" → {spec.replaced_by}"
        table.add_row(
            ident,
            ", ".join(spec.providers),
            _ratios(spec),
            " ".join(spec.sizes),
            _price(spec),
            shutdown,
        )
    console = Console()
    if not console.is_terminal:
        # Piped or captured: no terminal width to respect, so don't fold ids into 80 columns.
        console = Console(width=160)
    console.print(table)
    from ..catalog import STANDARD_RATIOS

    console.print(f"standard ratios: {' '.join(STANDARD_RATIOS)}   ★ recommended", highlight=False)
