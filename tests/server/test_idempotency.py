"""Idempotency-Key on generate (R1-R5): one upstream call per key, scoped per user."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from nanobanana.emulator import EmulatorServer

from .conftest import OPENROUTER_CANARY, Api, upstream_requests

pytestmark = pytest.mark.timeout(90)
GEN = "/api/nano-banana/generate"


async def _user_with_key(api: Api, name: str) -> dict[str, str]:
    h = await api.user(name)
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    return h


async def test_replay_same_key_same_body(db_api: Api, emulator: EmulatorServer) -> None:
    h = await _user_with_key(db_api, "alice")
    marker = uuid.uuid4().hex
    body = {"prompt": f"replay {marker}"}
    key = {"Idempotency-Key": f"k-{marker}"}
    answers = [await db_api.client.post(GEN, json=body, headers={**h, **key}) for _ in range(20)]
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert "idempotent-replayed" not in answers[0].headers
    assert all(r.headers["idempotent-replayed"] == "true" for r in answers[1:])
    assert len(upstream_requests(emulator, marker)) == 1
    history = (await db_api.client.get("/api/generations", headers=h)).json()["items"]
    assert len(history) == 1


async def test_replay_of_a_failure(api: Api, emulator: EmulatorServer) -> None:
    h = await _user_with_key(api, "alice")
    marker = uuid.uuid4().hex
    body = {"prompt": f"fails {marker} [emulator:server-error:502]"}
    key = {"Idempotency-Key": marker}
    first = await api.client.post(GEN, json=body, headers={**h, **key})
    second = await api.client.post(GEN, json=body, headers={**h, **key})
    assert first.status_code == second.status_code == 503
    assert first.json() == second.json()
    assert len(upstream_requests(emulator, marker)) == 1


async def test_same_key_other_body_is_422(api: Api, emulator: EmulatorServer) -> None:
    h = await _user_with_key(api, "alice")
    marker = uuid.uuid4().hex
    key = {"Idempotency-Key": marker}
    ok = await api.client.post(GEN, json={"prompt": f"one {marker}"}, headers={**h, **key})
    assert ok.status_code == 200
    r = await api.client.post(GEN, json={"prompt": f"two {marker}"}, headers={**h, **key})
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    r = await api.client.post(
        GEN, json={"prompt": f"one {marker}", "num_images": 2}, headers={**h, **key}
    )
    assert r.status_code == 422
    assert len(upstream_requests(api_emulator := emulator, marker)) == 1
    assert api_emulator is emulator


@pytest.mark.parametrize("bad", ["x" * 256, "tab\tkey", "caf\u00e9"])
async def test_bad_keys_are_400(api: Api, bad: str) -> None:
    h = await _user_with_key(api, "alice")
    r = await api.client.post(
        GEN,
        json={"prompt": "x"},
        headers=[*h.items(), ("Idempotency-Key", bad.encode("utf-8"))],  # type: ignore[list-item]
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_idempotency_key"


async def test_concurrent_requests_one_key(db_api: Api, emulator: EmulatorServer) -> None:
    h = await _user_with_key(db_api, "alice")
    marker = uuid.uuid4().hex
    # Long enough that all 50 arrive while the first is in flight, even on a loaded machine.
    body = {"prompt": f"race {marker} [emulator:latency:2]"}
    key = {"Idempotency-Key": marker}
    answers = await asyncio.gather(
        *(db_api.client.post(GEN, json=body, headers={**h, **key}) for _ in range(50))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) >= 1
    assert set(codes) <= {200, 409}
    assert codes.count(409) >= 40
    conflict = next(r for r in answers if r.status_code == 409)
    assert conflict.json()["error"]["code"] == "idempotency_in_flight"
    assert conflict.headers["retry-after"] == "1"
    assert len(upstream_requests(emulator, marker)) == 1
    history = (await db_api.client.get("/api/generations", headers=h)).json()["items"]
    assert len(history) == 1


async def test_keys_are_scoped_per_user(db_api: Api, emulator: EmulatorServer) -> None:
    a = await _user_with_key(db_api, "alice")
    b = await _user_with_key(db_api, "bob")
    marker = uuid.uuid4().hex
    body = {"prompt": f"shared {marker}"}
    key = {"Idempotency-Key": "same-key"}
    ra = await db_api.client.post(GEN, json=body, headers={**a, **key})
    rb = await db_api.client.post(GEN, json=body, headers={**b, **key})
    assert ra.status_code == rb.status_code == 200
    assert ra.json()["id"] != rb.json()["id"]
    assert "idempotent-replayed" not in rb.headers
    assert len(upstream_requests(emulator, marker)) == 2


async def test_key_expires_after_the_window(api: Api, emulator: EmulatorServer) -> None:
    h = await _user_with_key(api, "alice")
    marker = uuid.uuid4().hex
    body = {"prompt": f"expiry {marker}"}
    key = {"Idempotency-Key": marker}
    first = await api.client.post(GEN, json=body, headers={**h, **key})
    window = api.settings.idempotency_window_seconds
    assert window == 24 * 3600
    real_now = api.services.now
    api.services.now = lambda: real_now() + timedelta(seconds=window - 60)
    inside = await api.client.post(GEN, json=body, headers={**h, **key})
    assert inside.json()["id"] == first.json()["id"]
    api.services.now = lambda: real_now() + timedelta(seconds=window + 1)
    try:
        later = await api.client.post(GEN, json=body, headers={**h, **key})
    finally:
        api.services.now = real_now
    assert later.status_code == 200
    assert later.json()["id"] != first.json()["id"]
    assert len(upstream_requests(emulator, marker)) == 2


async def test_async_endpoint_replays_the_job(api: Api, emulator: EmulatorServer) -> None:
    h = await _user_with_key(api, "alice")
    marker = uuid.uuid4().hex
    key = {"Idempotency-Key": marker}
    body = {"prompt": f"async {marker}"}
    first = await api.client.post("/api/generations", json=body, headers={**h, **key})
    assert first.status_code == 202
    await api.services.job_manager.wait(first.json()["id"])
    again = await api.client.post("/api/generations", json=body, headers={**h, **key})
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    # The same key on the other endpoint is another request.
    other = await api.client.post(GEN, json=body, headers={**h, **key})
    assert other.status_code == 422
    assert len(upstream_requests(emulator, marker)) == 1


async def test_a_replay_whose_image_file_is_gone_says_what_to_fix(api: Api) -> None:
    """The job and its image row are there, the file is not (a worker on another host wrote
    it to its own folder): the seed endpoint and the OpenRouter dialect answer a clear 500
    naming the setting, not a traceback."""
    h = await _user_with_key(api, "ann")
    headers = {**h, "Idempotency-Key": "gone-1"}
    r = await api.client.post(
        "/api/nano-banana/generate", json={"prompt": "a fox"}, headers=headers
    )
    assert r.status_code == 200, r.text
    for path in api.settings.images_dir.rglob("*.png"):
        path.unlink()
    again = await api.client.post(
        "/api/nano-banana/generate", json={"prompt": "a fox"}, headers=headers
    )
    assert again.status_code == 500
    error = again.json()["error"]
    assert error["code"] == "image_file_missing"
    assert "NANOBANANA_STORAGE_URL" in error["message"] and error["job_id"] == r.json()["id"]
    body = {
        "model": "google/gemini-2.5-flash-image",
        "messages": [{"role": "user", "content": "an owl"}],
        "modalities": ["image", "text"],
    }
    compat = {**h, "Idempotency-Key": "gone-2"}
    first = await api.client.post("/api/v1/chat/completions", json=body, headers=compat)
    assert first.status_code == 200, first.text
    for path in api.settings.images_dir.rglob("*.png"):
        path.unlink()
    replay = await api.client.post("/api/v1/chat/completions", json=body, headers=compat)
    assert replay.status_code == 500
    assert "NANOBANANA_STORAGE_URL" in replay.json()["error"]["message"]
