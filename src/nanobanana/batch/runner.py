"""Run a batch: rows in file order, a concurrency limit, a budget cap, a resumable manifest.

A row is skipped when the manifest has it ``done`` with the same parameters (fingerprint); a
row that failed, or was cut off, runs again, asking only for the images it still lacks.

Budget: the cap is on the cost recorded in the manifest (earlier runs included), so resuming a
batch never spends past it.  Before a row starts, its estimated cost is reserved (catalog price,
else the average cost of the images made so far); a row starts only while recorded + reserved
cost is under the cap.  The cap can be passed by at most the error of the estimates of the rows
in flight.  Rows left out for the budget stay pending for a later run with a larger cap.

``stop()`` (Ctrl-C in the CLI) stops starting rows and lets the ones in flight finish and be
recorded, so what is paid for is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ContentError, NanobananaError
from ..files import file_data
from ..remote import ServerError
from ..types import Image
from .executors import Executor, RowOutcome
from .manifest import Manifest, RowState
from .rows import BatchRow

__all__ = ["BatchProgress", "BatchReport", "BatchRunner", "RowReport"]

RowStatus = Literal["done", "skipped", "failed", "pending"]
StopReason = Literal["budget", "stopped"]


@dataclass
class RowReport:
    """One row's outcome in this run."""

    key: str
    index: int
    line: int
    prompt: str
    #: done: made now; skipped: done in an earlier run; failed; pending: not started
    #: (budget reached or the run was stopped).
    status: RowStatus
    files: list[str] = field(default_factory=list)
    #: USD spent on this row in this run.
    cost: float | None = None
    cost_is_estimate: bool = False
    provider: str | None = None
    model: str | None = None
    error: str | None = None
    error_code: str | None = None
    may_be_billed: bool = False
    job_id: str | None = None
    #: The previous run was cut off while this row was in flight (it may have been billed).
    was_interrupted: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class BatchProgress:
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    running: int = 0
    cost: float = 0.0

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed


@dataclass
class BatchReport:
    source: str
    output_dir: Path
    manifest: Path
    where: str
    rows: list[RowReport]
    #: USD spent in this run, and recorded by the manifest over all runs.
    cost: float
    recorded_cost: float
    budget: float | None
    stopped: StopReason | None
    elapsed_s: float

    def count(self, status: RowStatus) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def complete(self) -> bool:
        return all(r.status in ("done", "skipped") for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` report."""
        return {
            "source": self.source,
            "output_dir": str(self.output_dir),
            "manifest": str(self.manifest),
            "where": self.where,
            "total": len(self.rows),
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "pending": self.count("pending"),
            "complete": self.complete,
            "cost": round(self.cost, 6),
            "recorded_cost": round(self.recorded_cost, 6),
            "budget": self.budget,
            "stopped": self.stopped,
            "elapsed_s": round(self.elapsed_s, 3),
            "rows": [asdict(r) for r in self.rows],
        }


class BatchRunner:
    def __init__(
        self,
        rows: Sequence[BatchRow],
        *,
        executor: Executor,
        manifest: Manifest,
        output_dir: Path,
        source: str,
        concurrency: int = 4,
        budget: float | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
        on_row: Callable[[RowReport], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.rows = list(rows)
        self.executor = executor
        self.manifest = manifest
        self.output_dir = output_dir
        self.source = source
        self.concurrency = concurrency
        self.budget = budget
        self.on_progress = on_progress
        self.on_row = on_row
        self.progress = BatchProgress(total=len(self.rows))
        self._reports: dict[str, RowReport] = {}
        self._pending: deque[BatchRow] = deque()
        self._reserved = 0.0
        self._images_made = 0
        self._cost_made = 0.0
        self._stopping = False
        self._stopped: StopReason | None = None
        self._cond: asyncio.Condition | None = None

    def stop(self) -> None:
        """Start no new row; rows in flight finish and are recorded."""
        # Workers waiting for budget wake when a row in flight finishes and see this flag.
        self._stopping = True
        self._stopped = self._stopped or "stopped"

    # ----------------------------------------------------------------------------- run
    async def run(self) -> BatchReport:
        started = time.monotonic()
        self._cond = asyncio.Condition()
        for row in self.rows:
            state = self.manifest.states.get(row.key)
            report = RowReport(row.key, row.index, row.line, row.request.prompt, status="pending")
            self._reports[row.key] = report
            if state is not None and state.fingerprint == row.fingerprint:
                report.was_interrupted = state.interrupted
                if state.status == "done":
                    report.status = "skipped"
                    report.files = [state.files[i] for i in sorted(state.files)]
                    self.progress.skipped += 1
                    continue
            self._pending.append(row)
        self._emit()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
        return BatchReport(
            source=self.source,
            output_dir=self.output_dir,
            manifest=self.manifest.path,
            where=self.executor.where,
            rows=[self._reports[r.key] for r in self.rows],
            cost=self.progress.cost,
            recorded_cost=self.manifest.recorded_cost,
            budget=self.budget,
            stopped=self._stopped if self._pending else None,
            elapsed_s=time.monotonic() - started,
        )

    async def _worker(self) -> None:
        while True:
            claimed = await self._claim()
            if claimed is None:
                return
            row, reserved = claimed
            try:
                await self._run_row(row)
            finally:
                assert self._cond is not None
                async with self._cond:
                    self._reserved -= reserved
                    self._cond.notify_all()

    async def _claim(self) -> tuple[BatchRow, float] | None:
        """The next row and the cost reserved for it, or None when this worker should stop."""
        assert self._cond is not None
        async with self._cond:
            while True:
                if self._stopping or not self._pending:
                    return None
                row = self._pending[0]
                if self.budget is None:
                    self._pending.popleft()
                    return row, 0.0
                spent = self.manifest.recorded_cost
                if spent >= self.budget:
                    self._stopped = "budget"
                    self._cond.notify_all()
                    return None
                if spent + self._reserved < self.budget:
                    self._pending.popleft()
                    estimate = self._estimate(row, self._needed(row))
                    self._reserved += estimate
                    return row, estimate
                # Rows in flight hold the rest of the budget: wait for one to finish.
                await self._cond.wait()

    def _estimate(self, row: BatchRow, n: int) -> float:
        price = self.executor.estimate(row, n)
        if price is not None:
            return price
        if self._images_made:
            return self._cost_made / self._images_made * n
        return 0.0

    def _needed(self, row: BatchRow) -> int:
        state = self._state(row)
        return row.request.n - len(state.files) if state is not None else row.request.n

    def _state(self, row: BatchRow) -> RowState | None:
        state = self.manifest.states.get(row.key)
        return state if state is not None and state.fingerprint == row.fingerprint else None

    # ----------------------------------------------------------------------------- one row
    async def _run_row(self, row: BatchRow) -> None:
        report = self._reports[row.key]
        state = self._state(row)
        n = self._needed(row)
        job_id = state.job_id if state is not None and state.status == "submitted" else None
        failures = state.failures if state is not None else 0
        report.job_id = job_id
        if job_id is None:
            self.manifest.record(row.key, row.fingerprint, "running")
        self.progress.running += 1
        self._emit()
        landing = _RowLanding(self, row, state)
        try:
            outcome = await self.executor.run(
                row,
                n,
                job_id=job_id,
                idempotency_key=self._idempotency_key(row, failures),
                on_submitted=lambda jid: self._submitted(row, jid),
                on_image=landing,
            )
        except ServerError as exc:
            if report.job_id is None:
                self._failed(row, report, exc)
            else:
                self._lost_contact(report, exc)
        except NanobananaError as exc:
            self._failed(row, report, exc)
        else:
            await self._finished(row, report, outcome, state, landing)
        finally:
            self.progress.running -= 1
            self._emit()
        if self.on_row is not None:
            self.on_row(report)

    def _idempotency_key(self, row: BatchRow, failures: int) -> str:
        """Same row, same parameters, same try -> same key: a server replays instead of
        running twice.  A retry after a failure is a new try, hence a new key."""
        where = str(self.output_dir.resolve())
        raw = f"{where}\0{row.key}\0{row.fingerprint}\0{failures}"
        return "nb-batch-" + hashlib.sha256(raw.encode()).hexdigest()[:32]

    def _submitted(self, row: BatchRow, job_id: str) -> None:
        self.manifest.record(row.key, row.fingerprint, "submitted", job_id=job_id)
        self._reports[row.key].job_id = job_id

    def _lost_contact(self, report: RowReport, exc: ServerError) -> None:
        """The server took the job, then could not be asked about it.  The job goes on there,
        so the manifest keeps it as submitted: the next run collects it instead of paying again."""
        report.status = "failed"
        report.error = (
            f"{' '.join(str(exc).split())} The job {report.job_id} is still on the server; "
            "run the batch again to collect it."
        )
        report.error_code = exc.code
        self.progress.failed += 1

    def _failed(self, row: BatchRow, report: RowReport, exc: NanobananaError) -> None:
        billed = bool(getattr(exc, "may_be_billed", isinstance(exc, ContentError)))
        billed = billed or any(getattr(a, "may_be_billed", False) for a in exc.attempts)
        message = " ".join(str(exc).split())
        reason = getattr(exc, "reason", None)
        if isinstance(exc, ContentError) and reason and reason.lower() not in message.lower():
            message = f"{message} (reason: {reason})"
        self.manifest.record(
            row.key,
            row.fingerprint,
            "failed",
            error=message,
            error_code=exc.code,
            may_be_billed=billed or None,
        )
        report.status = "failed"
        report.error, report.error_code, report.may_be_billed = message, exc.code, billed
        self.progress.failed += 1

    async def _finished(
        self,
        row: BatchRow,
        report: RowReport,
        outcome: RowOutcome,
        state: RowState | None,
        landing: _RowLanding,
    ) -> None:
        have = dict(state.files) if state is not None else {}
        new: dict[int, str] = {}
        for image in outcome.images:
            # Staged off the event loop, logged, then moved into place (Manifest.land).  An image
            # saved on arrival is written again, in place, with the request's whole provenance.
            idx = landing.slot_for(image, taken=new)
            name = row.file_name(idx, image.extension)
            await asyncio.to_thread(self.manifest.stage, name, file_data(image))
            new[idx] = name
        complete = len(have) + len(new) >= row.request.n
        error = None
        if not complete:
            missing = row.request.n - len(have) - len(new)
            detail = f": {outcome.failures[0]}" if outcome.failures else ""
            error = f"{missing} of {row.request.n} images did not come back{detail}"
        self.manifest.land(
            row.key,
            row.fingerprint,
            "done" if complete else "failed",
            new,
            cost=outcome.cost,
            provider=outcome.provider,
            model=outcome.model,
            job_id=outcome.job_id,
            error=error,
            error_code=None if complete else "partial",
        )
        cost = outcome.cost or 0.0
        self.progress.cost += cost
        self._cost_made += cost
        self._images_made += len(new)
        all_files = {**have, **new}
        report.files = [all_files[i] for i in sorted(all_files)]
        report.cost, report.cost_is_estimate = outcome.cost, outcome.cost_is_estimate
        report.provider, report.model, report.job_id = (
            outcome.provider,
            outcome.model,
            outcome.job_id,
        )
        report.warnings = list(outcome.warnings)
        if complete:
            report.status = "done"
            self.progress.done += 1
        else:
            report.status, report.error, report.error_code = "failed", error, "partial"
            self.progress.failed += 1

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)


class _RowLanding:
    """Each image of a row is saved, and recorded in the manifest, as it arrives: a batch
    stopped (Ctrl-C, a crash, SIGKILL) while the other images of an ``n > 1`` row are still
    coming keeps those already paid for, and the next run asks only for the rest.

    Image ``i`` of this request goes to the ``i``-th index the row still lacks."""

    def __init__(self, runner: BatchRunner, row: BatchRow, state: RowState | None) -> None:
        self.runner = runner
        self.row = row
        have = state.files if state is not None else {}
        self.free = [i for i in range(row.request.n) if i not in have]
        self.saved: dict[int, int] = {}  # image index in the request -> row index

    async def __call__(self, image: Image) -> None:
        if image.index in self.saved or image.index >= len(self.free):
            return
        idx = self.free[image.index]
        name = self.row.file_name(idx, image.extension)
        manifest = self.runner.manifest
        await asyncio.to_thread(manifest.stage, name, file_data(image))
        self.saved[image.index] = idx
        manifest.land(self.row.key, self.row.fingerprint, "running", {idx: name})

    def slot_for(self, image: Image, *, taken: dict[int, str]) -> int:
        """Where ``image`` of the finished request goes: where it landed, else the first
        index still free."""
        landed = self.saved.get(image.index)
        if landed is not None:
            return landed
        used = set(self.saved.values()) | set(taken)
        return next(i for i in self.free if i not in used)
