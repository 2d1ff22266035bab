"""``--server``: rows run as async jobs on a real nanobanana server.

The job id is in the manifest as soon as the server accepts a row, so a run cut off while jobs
are running collects those jobs when resumed: the upstream (the emulator behind the server)
sees each row exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nanobanana.batch import BatchRunner, Manifest, ServerExecutor, parse_rows
from nanobanana.remote import ProfilesFile, ServerClient

from .support import LiveServer, calls_for, generation_calls, live_server
from .test_cli import cli, write_csv


@pytest.fixture
def server(tmp_path: Path, emu: Any) -> Iterator[LiveServer]:
    with live_server(tmp_path, emu) as srv:
        yield srv


async def run_on(server: LiveServer, rows: list[Any], out: Path, **kw: Any) -> Any:
    with Manifest.open(out, source="jobs.csv") as manifest:
        executor = ServerExecutor(ServerClient(server.url, server.token))
        runner = BatchRunner(
            rows, executor=executor, manifest=manifest, output_dir=out, source="jobs.csv", **kw
        )
        try:
            return await runner.run()
        finally:
            await executor.aclose()


def server_jobs(server: LiveServer) -> list[dict[str, Any]]:
    with server.client() as c:
        r = c.get("/api/generations", params={"limit": 100})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


async def test_rows_run_as_jobs_and_land_in_the_gallery(
    server: LiveServer, emu: Any, tmp_path: Path
) -> None:
    ref = tmp_path / "ref.png"
    from PIL import Image as PILImage

    PILImage.new("RGB", (32, 32), (0, 128, 0)).save(ref)
    csv = tmp_path / "jobs.csv"
    csv.write_text(
        'prompt,n,images\n"row-01 a fox",2,\n"row-02 with a reference",1,ref.png\n', "utf-8"
    )
    from nanobanana.batch import read_rows

    out = tmp_path / "out"
    report = await run_on(server, read_rows(csv), out, concurrency=2)
    assert report.complete and report.where == server.url
    assert [r.files for r in report.rows] == [
        ["0001-row-01-a-fox-1.png", "0001-row-01-a-fox-2.png"],
        ["0002-row-02-with-a-reference.png"],
    ]
    assert all(r.job_id for r in report.rows) and report.cost > 0
    assert len(generation_calls(emu)) == 3
    jobs = server_jobs(server)
    assert sorted(j["prompt"] for j in jobs) == ["row-01 a fox", "row-02 with a reference"]
    with_ref = next(r for r in generation_calls(emu) if "row-02" in json.dumps(r["body"]))
    assert "data:image/png;base64," in json.dumps(with_ref["body"])
    again = await run_on(server, read_rows(csv), out)
    assert [r.status for r in again.rows] == ["skipped", "skipped"]
    assert len(server_jobs(server)) == 2


async def test_failed_jobs_are_reported_and_retried(
    server: LiveServer, emu: Any, tmp_path: Path
) -> None:
    rows = parse_rows('prompt\n"row-01 [emulator:safety]"\n"row-02 fine"\n', fmt="csv")
    report = await run_on(server, rows, tmp_path / "out")
    blocked, fine = report.rows
    assert (blocked.status, blocked.error_code, fine.status) == (
        "failed",
        "content_blocked",
        "done",
    )
    assert "IMAGE_SAFETY" in (blocked.error or "")
    second = await run_on(server, rows, tmp_path / "out")
    assert [r.status for r in second.rows] == ["failed", "skipped"]
    assert calls_for(emu, "row-01") == 2  # a retry is a new job, by design
    assert len(server_jobs(server)) == 3


async def test_cut_off_run_collects_its_jobs_instead_of_paying_again(
    server: LiveServer, emu: Any, tmp_path: Path
) -> None:
    rows = parse_rows(
        "prompt\n" + "".join(f'"row-{i:02d} [emulator:latency:0.4]"\n' for i in range(1, 5)),
        fmt="csv",
    )
    out = tmp_path / "out"
    task = asyncio.ensure_future(run_on(server, rows, out, concurrency=4))
    for _ in range(200):  # every row submitted, none finished yet
        await asyncio.sleep(0.02)
        with Manifest.open(out, source="jobs.csv") as m:
            if sum(s.status == "submitted" for s in m.states.values()) == 4:
                break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with Manifest.open(out, source="jobs.csv") as m:
        assert {s.status for s in m.states.values()} == {"submitted"}
    report = await run_on(server, rows, out, concurrency=4)
    assert report.complete
    for i in range(1, 5):
        assert calls_for(emu, f"row-{i:02d} ") == 1
    assert len(server_jobs(server)) == 4


def test_cli_server_option_with_token_from_env_or_profile(
    server: LiveServer, emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    f = write_csv(tmp_path / "jobs.csv", ["row-01 by url"])
    monkeypatch.setenv("NANOBANANA_TOKEN", server.token)
    assert cli([str(f), "--server", server.url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["where"] == server.url and report["rows"][0]["job_id"]
    monkeypatch.delenv("NANOBANANA_TOKEN")
    ProfilesFile(tmp_path / "config" / "profiles.json").set("studio", server.url, server.token)
    g = write_csv(tmp_path / "more.csv", ["row-02 by profile"])
    assert cli([str(g), "--profile", "studio", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["done"] == 1
    assert server.token not in out + err
    assert len(server_jobs(server)) == 2
