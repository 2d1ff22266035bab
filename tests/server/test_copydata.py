"""``nanobanana copy-data``: from the embedded default (SQLite and a data folder) to a new
PostgreSQL database and an S3 bucket, then a service there that carries on where the old one
stopped: the same accounts and passwords, provider keys, history and images."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update

from nanobanana.emulator import EmulatorServer
from nanobanana.server.db.models import Job
from nanobanana.server.settings import Settings

from ..support import S3Server
from .conftest import OPENROUTER_CANARY, PASSWORD, auth, make_settings, running
from .test_leases import wait_status

pytestmark = [pytest.mark.timeout(180), pytest.mark.postgres, pytest.mark.s3]

NANOBANANA = Path(sys.executable).with_name("nanobanana")


def copy_data(
    settings: Settings, database: str, storage: str, s3: S3Server
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            NANOBANANA,
            "copy-data",
            "--data-dir",
            str(settings.data_dir),
            "--database-url",
            database,
            "--storage-url",
            storage,
            "--s3-endpoint-url",
            s3.endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **s3.env(), "NANOBANANA_DATABASE_URL": settings.resolved_database_url},
        check=False,
    )


async def test_a_copied_service_carries_on_where_the_old_one_stopped(
    pg_database: str,
    s3_server: S3Server,
    settings_for: Callable[..., Settings],
    emulator: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from .conftest import _truncate

    await _truncate(pg_database)
    old = settings_for()  # the embedded default: SQLite in its data folder
    async with running(old) as api:
        h = await api.user("ann")
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        r = await api.client.post("/api/nano-banana/generate", json={"prompt": "a fox"}, headers=h)
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        [image] = (await api.client.get(f"/api/generations/{job_id}", headers=h)).json()["images"]
        original = (await api.client.get(image["url"], headers=h)).content
        thumb = (await api.client.get(image["url"], params={"thumb": "1"}, headers=h)).content
        r = await api.client.post("/api/generations", json={"prompt": "an owl"}, headers=h)
        stuck = r.json()["id"]
        await wait_status(api, stuck, "succeeded")
        async with api.services.sessionmaker() as s, s.begin():  # as if cut off mid-flight
            await s.execute(update(Job).where(Job.id == stuck).values(status="running"))

    storage = f"s3://{s3_server.bucket}/copy-{uuid.uuid4().hex[:8]}"
    done = copy_data(old, pg_database, storage, s3_server)
    assert done.returncode == 0, done.stderr
    assert "jobs: 2 row(s)" in done.stdout, done.stdout
    assert "image files: 3 copied, 0 missing" in done.stdout, done.stdout  # 2 images, 1 thumb
    assert str(old.resolved_master_key_file) in done.stdout

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    new = make_settings(
        tmp_path / "new-host",
        pg_database,
        emulator,
        storage_url=storage,
        s3_endpoint_url=s3_server.endpoint,
        master_keys=old.resolved_master_key_file.read_text().strip(),
    )
    async with running(new) as api:
        h = auth(await api.login("ann", PASSWORD))
        listed = (await api.client.get("/api/generations", headers=h)).json()
        assert {j["id"] for j in listed["items"]} == {job_id, stuck}
        assert (await api.client.get(image["url"], headers=h)).content == original
        served = await api.client.get(image["url"], params={"thumb": "1"}, headers=h)
        assert served.content == thumb
        view = (await api.client.get(f"/api/generations/{stuck}", headers=h)).json()
        assert view["status"] == "interrupted"
        r = await api.client.post("/api/nano-banana/generate", json={"prompt": "a hare"}, headers=h)
        assert r.status_code == 200, r.text  # the stored provider key still decrypts

    again = copy_data(old, pg_database, storage, s3_server)
    assert again.returncode == 2
    assert "already has accounts" in again.stderr
