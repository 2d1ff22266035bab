"""Running batches against the emulator: files, resume, retries, budget, concurrency, stops.

Paid calls are counted from the emulator's request log, per row (each prompt carries a unique
marker), so "not paid twice" is checked call by call.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from nanobanana.batch import MANIFEST_NAME, Manifest, parse_rows
from nanobanana.files import read_metadata

from .conftest import run_batch
from .support import calls_for, generation_calls

PRICE = 0.0672  # the emulator's OpenRouter cost for one 1K image of the default model
CAP = 2.5 * PRICE  # a budget under which exactly three images start


def rows_of(*prompts: str, extra: str = "") -> list[Any]:
    lines = ["prompt" + (",n" if extra else "")]
    lines += [f'"{p}"' + (f",{extra}" if extra else "") for p in prompts]
    return parse_rows("\n".join(lines) + "\n", fmt="csv")


def numbered(count: int, suffix: str = "") -> list[Any]:
    return rows_of(*(f"row-{i:02d} a lighthouse {suffix}".strip() for i in range(1, count + 1)))


async def test_rows_become_named_files_with_provenance(emu_env: Any, tmp_path: Path) -> None:
    rows = parse_rows('prompt,name,n\n"row-01 a fox",,1\n"row-02 a cat",hero,2\n', fmt="csv")
    out = tmp_path / "out"
    report = await run_batch(rows, out, emu_env, concurrency=2)
    assert report.complete and report.count("done") == 2
    assert [r.files for r in report.rows] == [
        ["0001-row-01-a-fox.png"],
        ["hero-1.png", "hero-2.png"],
    ]
    meta = read_metadata((out / "hero-2.png").read_bytes())
    assert meta["prompt"] == "row-02 a cat" and meta["provider"] == "openrouter"
    assert len(generation_calls(emu_env)) == 3  # one call per image
    assert report.cost == pytest.approx(3 * PRICE, rel=0.01)
    states = Manifest(out / MANIFEST_NAME)
    states._load()
    assert {k: s.status for k, s in states.states.items()} == {"0001": "done", "hero": "done"}


async def test_running_again_skips_done_rows(emu_env: Any, tmp_path: Path) -> None:
    rows = numbered(3)
    out = tmp_path / "out"
    await run_batch(rows, out, emu_env)
    assert len(generation_calls(emu_env)) == 3
    again = await run_batch(rows, out, emu_env)
    assert len(generation_calls(emu_env)) == 3  # nothing paid again
    assert [r.status for r in again.rows] == ["skipped"] * 3
    assert again.cost == 0 and again.recorded_cost == pytest.approx(3 * PRICE, rel=0.01)
    # A row whose parameters changed is generated again, under the same name.
    changed = [rows[0], *numbered(3, suffix="at night")[1:]]
    third = await run_batch(changed, out, emu_env)
    assert [r.status for r in third.rows] == ["skipped", "done", "done"]
    assert len(generation_calls(emu_env)) == 5


async def test_failed_rows_are_retried_and_blocked_rows_explained(
    emu_env: Any, tmp_path: Path
) -> None:
    # flaky:1:400 fails the first request carrying it, then succeeds (400 is never retried).
    rows = rows_of("row-01 ok", "row-02 [emulator:flaky:1:400:b]", "row-03 [emulator:safety]")
    out = tmp_path / "out"
    first = await run_batch(rows, out, emu_env)
    ok, flaky, blocked = first.rows
    assert (ok.status, flaky.status, blocked.status) == ("done", "failed", "failed")
    assert flaky.error_code == "upstream_bad_request"
    assert blocked.error_code == "content_blocked" and "IMAGE_SAFETY" in (blocked.error or "")
    assert blocked.may_be_billed
    assert not first.complete
    second = await run_batch(rows, out, emu_env)
    assert [r.status for r in second.rows] == ["skipped", "done", "failed"]
    assert calls_for(emu_env, "row-01") == 1
    assert calls_for(emu_env, "row-02") == 2
    assert (out / "0002-row-02-emulator-flaky-1-400-b.png").exists()


async def test_partial_rows_ask_only_for_the_missing_images(emu_env: Any, tmp_path: Path) -> None:
    # Two parallel calls carry the same flaky spec: one fails, one succeeds.
    rows = rows_of("row-01 twins [emulator:flaky:1:400:p]", extra="2")
    out = tmp_path / "out"
    first = await run_batch(rows, out, emu_env)
    (row,) = first.rows
    assert row.status == "failed" and row.error_code == "partial" and len(row.files) == 1
    second = await run_batch(rows, out, emu_env)
    (row,) = second.rows
    assert row.status == "done"
    assert sorted(row.files) == [
        "0001-row-01-twins-emulator-flaky-1-400-p-1.png",
        "0001-row-01-twins-emulator-flaky-1-400-p-2.png",
    ]
    assert all((out / f).exists() for f in row.files)
    assert calls_for(emu_env, "row-01") == 3  # 2, then only the missing one


async def test_concurrency_limit(emu_env: Any, tmp_path: Path) -> None:
    rows = numbered(6, suffix="[emulator:latency:0.2]")
    peak = [0]

    def watch(p: Any) -> None:
        peak[0] = max(peak[0], p.running)

    report = await run_batch(rows, tmp_path / "out", emu_env, concurrency=2, on_progress=watch)
    assert report.complete
    assert peak[0] == 2
    assert report.elapsed_s >= 3 * 0.2 * 0.9  # 6 rows, 2 at a time


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_budget_stops_starting_rows(emu_env: Any, tmp_path: Path, concurrency: int) -> None:
    rows = numbered(6)
    out = tmp_path / "out"
    report = await run_batch(rows, out, emu_env, concurrency=concurrency, budget=CAP)
    # 0, 1 and 2 prices are under the cap, so three rows start; then it is reached.
    assert len(generation_calls(emu_env)) == 3
    assert report.stopped == "budget"
    assert [r.status for r in report.rows] == ["done"] * 3 + ["pending"] * 3
    assert CAP <= report.recorded_cost < CAP + PRICE
    # The cap covers the whole batch: resuming with the same cap starts nothing.
    again = await run_batch(rows, out, emu_env, budget=CAP)
    assert len(generation_calls(emu_env)) == 3 and again.stopped == "budget"
    # A larger cap continues where it stopped.
    more = await run_batch(rows, out, emu_env, budget=5.5 * PRICE)
    assert len(generation_calls(emu_env)) == 6 and more.complete


async def test_stop_lets_rows_in_flight_finish_and_resume_pays_nothing_twice(
    emu_env: Any, tmp_path: Path
) -> None:
    rows = numbered(8, suffix="[emulator:latency:0.1]")
    out = tmp_path / "out"
    holder: dict[str, Any] = {}
    finished: list[str] = []

    def hook(runner: Any) -> None:
        holder["runner"] = runner

        def on_row(row: Any) -> None:
            finished.append(row.key)
            if len(finished) == 3:
                runner.stop()  # what Ctrl-C does

        runner.on_row = on_row

    first = await run_batch(rows, out, emu_env, concurrency=2, runner_hook=hook)
    assert first.stopped == "stopped"
    done_first = [r.key for r in first.rows if r.status == "done"]
    assert 3 <= len(done_first) <= 4  # the row in flight at the stop finished too
    assert len(generation_calls(emu_env)) == len(done_first)
    with Manifest.open(out, source="test.csv") as m:
        assert not [s for s in m.states.values() if s.status == "running"]
    second = await run_batch(rows, out, emu_env, concurrency=2)
    assert second.complete
    for i in range(1, 9):
        assert calls_for(emu_env, f"row-{i:02d} ") == 1


async def test_cancelled_run_resumes_without_paying_done_rows_again(
    emu_env: Any, tmp_path: Path
) -> None:
    rows = numbered(6, suffix="[emulator:latency:0.15]")
    out = tmp_path / "out"
    done = asyncio.Event()
    count = [0]

    def on_row(row: Any) -> None:
        count[0] += 1
        if count[0] == 2:
            done.set()

    task = asyncio.ensure_future(run_batch(rows, out, emu_env, concurrency=2, on_row=on_row))
    await done.wait()
    await asyncio.sleep(0.05)  # rows 3 and 4 are now in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with Manifest.open(out, source="test.csv") as m:
        states = {k: s.status for k, s in m.states.items()}
    assert list(states.values()).count("done") == 2
    interrupted = [k for k, s in states.items() if s == "running"]
    assert len(interrupted) == 2
    second = await run_batch(rows, out, emu_env, concurrency=2)
    assert second.complete
    flagged = [r.key for r in second.rows if r.was_interrupted]
    assert flagged == interrupted
    for r in second.rows:
        expected = 2 if r.key in interrupted else 1  # only cut-off calls may be sent twice
        assert calls_for(emu_env, f"row-{r.index:02d} ") == expected
    report = json.loads(json.dumps(second.to_dict()))
    assert report["total"] == 6 and report["skipped"] == 2 and report["done"] == 4
