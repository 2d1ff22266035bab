"""``nanobanana batch FILE``: generate every row of a CSV or JSON Lines file.

Rows run with a concurrency limit, locally (the caller's keys) or as jobs on a nanobanana server
(``--server``/``--profile``).  Images go to ``<FILE stem>-images/`` beside the file (``-o``),
named ``<row>-<prompt slug>.png`` or ``<name>.png``, with ``manifest.jsonl`` recording what is
done: running the command again skips done rows and retries failed ones.  ``--budget`` stops
starting rows once the batch's recorded cost reaches it.

stderr: a progress bar on a terminal (done, failed, cost so far, ETA), else one line per row.
stdout: a summary table, or ``--json``.  Ctrl-C (or SIGTERM) stops starting rows and waits for
those in flight, so nothing paid for is lost; a second Ctrl-C aborts them.

Exit codes: 0 every row done, 1 some rows failed or are still pending, 2 usage error (bad file,
missing key), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SYNTHETIC_NOTE,
    Endpoints,
    add_image_option,
    client_endpoints,
    command_client,
    eprint,
    generation_options,
    stderr_is_tty,
    warn,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..batch import BatchProgress, BatchReport, BatchRow, Executor, RowReport
    from ..catalog import Catalog
    from ..request import GenerationRequest

__all__ = ["add_parser", "run"]

#: Largest batch whose summary table lists every row (beyond: only rows not done).
FULL_TABLE_ROWS = 50


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "batch",
        help="generate every row of a CSV or JSON Lines file (resumable)",
        description=(
            "Generate images for every row of a CSV or JSON Lines file. Columns: prompt "
            "(required), name, model, provider, aspect_ratio, image_size, n, negative_prompt, "
            "seed, images. Run it again to skip done rows and retry failed ones."
        ),
    )
    p.add_argument("file", metavar="FILE", type=Path, help="a .csv or .jsonl file of prompts")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        type=Path,
        help="output folder (default: <FILE stem>-images beside FILE); holds manifest.jsonl",
    )
    p.add_argument(
        "-j",
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="rows in flight at once (default 4)",
    )
    p.add_argument(
        "--budget",
        type=float,
        metavar="USD",
        help="stop starting rows once the batch's recorded cost reaches USD",
    )
    defaults = p.add_argument_group("defaults for empty cells")
    defaults.add_argument("-m", "--model", help="model id or alias")
    defaults.add_argument("-p", "--provider", help="openrouter or google (gemini)")
    defaults.add_argument("-a", "--aspect-ratio", metavar="RATIO", help="e.g. 1:1, 16:9")
    defaults.add_argument("-s", "--size", metavar="SIZE", help="0.5K, 1K, 2K or 4K")
    defaults.add_argument("-n", type=int, default=1, metavar="N", help="images per row")
    defaults.add_argument("--negative", metavar="TEXT", help="what images should avoid")
    defaults.add_argument("--seed", type=int, help="seed, where the model accepts one")
    defaults.add_argument("--thinking", metavar="LEVEL", help="minimal, low, medium or high")
    defaults.add_argument(
        "--google-search", action="store_true", help="ground every row in Google Search"
    )
    add_image_option(defaults)
    remote = p.add_argument_group("run on a nanobanana server")
    remote.add_argument(
        "--server",
        metavar="URL",
        help="run rows as jobs on this server (token from $NANOBANANA_TOKEN or a profile)",
    )
    remote.add_argument("--profile", metavar="NAME", help="a server profile from profiles.json")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    out.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    local = p.add_argument_group("local runs")
    local.add_argument("--no-fallback", action="store_true", help="no provider fallback")
    local.add_argument("--openrouter-base-url", metavar="URL", help="OpenRouter API base URL")
    local.add_argument("--gemini-base-url", metavar="URL", help="Gemini API base URL")
    local.add_argument(
        "--emulator",
        action="store_true",
        help="run a built-in emulator and make synthetic images (no key, no cost)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..batch import named_models, read_rows
    from ..errors import UsageError
    from ..request import GenerationRequest

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1.")
    if args.budget is not None and args.budget <= 0:
        raise UsageError("--budget must be a positive amount of USD.")
    if (args.server or args.profile) and args.emulator:
        raise UsageError("--emulator runs locally; it cannot be combined with --server.")
    defaults = GenerationRequest(prompt="", **generation_options(args))
    output = args.output or args.file.parent / f"{args.file.stem}-images"
    with contextlib.ExitStack() as stack:
        # Every problem of every row, before anything is paid for; a local run also checks
        # each row against the catalog, with the models the providers list (a server checks
        # against its own).
        if args.server or args.profile:
            rows = read_rows(args.file, defaults)
            executor_factory = _remote_executor(args)
        else:
            endpoints = client_endpoints(args, stack)
            named = named_models(args.file) | ({defaults.model} if defaults.model else set())
            catalog = asyncio.run(_catalog_for(args, endpoints, named))
            rows = read_rows(args.file, defaults, check=_catalog_checks(catalog))
            executor_factory = _local_executor(args, rows, endpoints, catalog)
        report = asyncio.run(_run_batch(args, rows, output, executor_factory))
    if report is None:
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_summary(report)
    return EXIT_OK if report.complete else EXIT_ERROR


def _remote_executor(args: argparse.Namespace) -> Any:
    """A coroutine function building the executor of a server run (its profile is checked
    now)."""
    from ..remote import ServerClient, resolve_server

    profile = resolve_server(url=args.server, profile=args.profile)

    async def remote() -> Executor:
        from ..batch import ServerExecutor

        return ServerExecutor(ServerClient.from_profile(profile))

    return remote


async def _catalog_for(args: argparse.Namespace, endpoints: Endpoints, named: set[str]) -> Catalog:
    """The catalog the rows are checked against: the built-in one, with the models the rows
    name that only a provider's listing has (looked up only when a row names one)."""
    client = command_client(args, endpoints)
    try:
        for name in sorted(named):
            await client.find_model(name)
    finally:
        await client.aclose()
    catalog: Catalog = client.catalog
    return catalog


def _local_executor(
    args: argparse.Namespace, rows: list[BatchRow], endpoints: Endpoints, catalog: Catalog
) -> Any:
    """A coroutine function building the executor of a local run, on ``catalog``."""
    if args.emulator:
        eprint(f"Running against the built-in emulator. {SYNTHETIC_NOTE}")

    async def local() -> Executor:
        from ..batch import LocalExecutor

        client = command_client(args, endpoints, catalog=catalog)
        try:
            _check_keys(client, rows)
        except BaseException:
            await client.aclose()
            raise
        return LocalExecutor(client)

    return local


def _check_keys(client: Any, rows: list[BatchRow]) -> None:
    """A provider a row names, or any provider at all, without a key: refuse before starting
    rather than fail every row."""
    from ..providers import PROVIDERS, canonical_provider, missing_key

    available = client.available_providers()
    named = {canonical_provider(r.request.provider) for r in rows if r.request.provider}
    missing = sorted(p for p in named if p not in available)
    if missing or not available:
        raise missing_key(missing[0] if missing else PROVIDERS[0])


def _catalog_checks(catalog: Catalog) -> Callable[[BatchRow], list[str]]:
    return functools.partial(_catalog_problems, catalog)


def _catalog_problems(catalog: Catalog, row: BatchRow) -> list[str]:
    """Each problem of ``row`` against ``catalog``: its model, its provider, its ratio, its
    size, its references, its thinking level and its search, one message each."""
    from ..catalog import DEFAULT_MODEL
    from ..errors import UsageError
    from ..providers import canonical_provider

    request = row.request
    try:
        choice = catalog.resolve(request.model or DEFAULT_MODEL)
    except UsageError as exc:
        return [exc.message]
    problems = []
    checks: list[Callable[[], object]] = [
        lambda: choice.wire_id(canonical_provider(request.provider)) if request.provider else None,
        lambda: catalog.validate(
            choice.spec, aspect_ratio=request.aspect_ratio, image_size=None, n_images=0
        ),
        lambda: catalog.validate(
            choice.spec, aspect_ratio=None, image_size=request.image_size, n_images=0
        ),
        lambda: catalog.validate(
            choice.spec, aspect_ratio=None, image_size=None, n_images=len(request.images)
        ),
        lambda: catalog.validate_thinking(choice.spec, request.thinking),
        lambda: catalog.validate_google_search(choice.spec, request.google_search),
        lambda: _options_go_through(request),
    ]
    for check in checks:
        try:
            check()
        except UsageError as exc:
            problems.append(exc.message)
    return problems


def _options_go_through(request: GenerationRequest) -> None:
    """A row with image options named to a provider that cannot carry them."""
    from ..providers import canonical_provider
    from ..request import image_options_for

    if request.provider:
        image_options_for(canonical_provider(request.provider), request.image_options)


async def _run_batch(
    args: argparse.Namespace, rows: list[BatchRow], output: Path, make_executor: Any
) -> BatchReport | None:
    executor = await make_executor()  # may refuse (no key) before any folder is made
    try:
        return await _run_with(args, rows, output, executor)
    finally:
        await executor.aclose()


async def _run_with(
    args: argparse.Namespace, rows: list[BatchRow], output: Path, executor: Executor
) -> BatchReport | None:
    from ..batch import BatchRunner, Manifest

    show_bar = stderr_is_tty() and not args.no_progress
    bar = _Bar(rows, args.file.name) if show_bar else None
    with Manifest.open(output, source=args.file.name) as manifest:
        if manifest.source and manifest.source != args.file.name:
            warn(f"{output} holds a batch started from {manifest.source}; rows match by name.")
        runner = BatchRunner(
            rows,
            executor=executor,
            manifest=manifest,
            output_dir=output,
            source=str(args.file),
            concurrency=args.concurrency,
            budget=args.budget,
            on_progress=bar.update if bar else None,
            on_row=None if show_bar or args.no_progress else _row_line,
        )
        task = asyncio.ensure_future(runner.run())
        presses = _install_signals(runner, task)
        if bar:
            bar.start()
        try:
            return await task
        except asyncio.CancelledError:
            if presses[0] < 2:
                raise
            eprint(
                "Aborted. Rows that were in flight are marked in the manifest and run again "
                "next time (they may have been billed)."
            )
            return None
        finally:
            if bar:
                bar.stop()
            _remove_signals()


def _install_signals(runner: Any, task: asyncio.Future[Any]) -> list[int]:
    presses = [0]
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        presses[0] += 1
        if presses[0] == 1:
            runner.stop()
            eprint("Stopping: no new rows; waiting for those in flight (Ctrl-C again to abort).")
        else:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows loops
            loop.add_signal_handler(sig, on_signal)
    return presses


def _remove_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(sig)


def _row_line(row: RowReport) -> None:
    if row.status == "done":
        cost = f" ${row.cost:.4f}" if row.cost is not None else ""
        eprint(f"done   {row.key}: {', '.join(row.files)}{cost}")
    else:
        eprint(f"failed {row.key}: [{row.error_code}] {row.error}")


class _Bar:
    """The rich progress bar: rows done of those to run, failures, cost so far, ETA."""

    def __init__(self, rows: list[BatchRow], label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("${task.fields[cost]:.4f}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self.label = label
        self.task = self.progress.add_task(label, total=len(rows), failed=0, cost=0.0)
        self.skipped = -1

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def update(self, p: BatchProgress) -> None:
        if self.skipped < 0:  # first report: rows done earlier are not this run's work
            self.skipped = p.skipped
            desc = f"{self.label} ({p.skipped} done earlier)" if p.skipped else self.label
            self.progress.update(self.task, total=p.total - p.skipped, description=desc)
        self.progress.update(self.task, completed=p.done + p.failed, failed=p.failed, cost=p.cost)


def _print_summary(report: BatchReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows = report.rows
    if len(rows) > FULL_TABLE_ROWS:
        rows = [r for r in rows if r.status not in ("done", "skipped")]
    if rows:
        table = Table(title=f"Batch {report.source}", title_justify="left")
        for col in ("row", "status", "files", "cost", "provider", "note"):
            table.add_column(col, justify="right" if col == "cost" else "left", overflow="fold")
        for r in rows:
            cost = "" if r.cost is None else f"${r.cost:.4f}" + ("~" if r.cost_is_estimate else "")
            note = r.error or ""
            if r.was_interrupted and r.status != "skipped":
                note = ("previous run was cut off here (may be billed twice). " + note).strip()
            table.add_row(r.key, r.status, "\n".join(r.files), cost, r.provider or "", note)
        console.print(table)
    parts = [
        f"{report.count('done')} done",
        f"{report.count('skipped')} done earlier",
        f"{report.count('failed')} failed",
        f"{report.count('pending')} pending",
    ]
    total = f"cost ${report.cost:.4f} this run, ${report.recorded_cost:.4f} for the batch"
    if report.budget is not None:
        total += f" (budget ${report.budget:.2f})"
    console.print(" · ".join(parts) + " · " + total, highlight=False)
    if report.stopped == "budget":
        console.print("The budget was reached: pending rows run with a larger --budget.")
    elif report.stopped == "stopped":
        console.print("Stopped before every row ran: run the same command again to continue.")
    elif report.count("failed"):
        console.print("Run the same command again to retry the failed rows.")
    console.print(f"Images and manifest: {report.output_dir}", highlight=False)
    # Warnings are usually the same for every row (a model's shutdown date): each once.
    for message in dict.fromkeys(w for r in report.rows for w in r.warnings):
        warn(message)
