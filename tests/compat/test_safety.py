"""Secrets and labels on the compatible APIs: stored provider keys never appear in an answer,
a header or a log line, whatever the outcome; images from the demo emulator say so."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from nanobanana.emulator import EmulatorServer
from nanobanana.server.compat.openrouter_response import SYNTHETIC_LABEL

from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Live, decode_data_url, live_server, tag

pytestmark = pytest.mark.timeout(60)


def test_no_secret_in_any_answer_or_log(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    chat = "/api/v1/chat/completions"
    base = {"model": "google/gemini-2.5-flash-image", "modalities": ["image", "text"]}
    calls = [
        (chat, {**base, "messages": [{"role": "user", "content": f"ok {tag()}"}]}),
        (chat, {**base, "stream": True, "messages": [{"role": "user", "content": f"s {tag()}"}]}),
        *(
            (chat, {**base, "provider": provider, "messages": [{"role": "user", "content": m}]})
            for provider in ("openrouter", "google")
            for m in (
                f"x {tag()} [emulator:quota:90]",
                f"x {tag()} [emulator:payment]",
                f"x {tag()} [emulator:server-error:500]",
                f"x {tag()} [emulator:safety]",
                f"x {tag()} [emulator:bad-base64]",
            )
        ),
        ("/v1/images/generations", {"prompt": f"x {tag()} [emulator:payment]"}),
        ("/v1/images/generations", {"prompt": f"x {tag()}", "size": "3x3"}),
    ]
    seen = []
    with live.http(live.token) as c:
        for path, body in calls:
            r = c.post(path, json=body)
            seen.append((r.status_code, r.text, str(r.headers)))
    statuses = {s for s, _, _ in seen}
    assert {200, 400, 402, 429} <= statuses and statuses & {502, 503}
    for _, text, headers in seen:
        for canary in (OPENROUTER_CANARY, GOOGLE_CANARY):
            assert canary not in text and canary not in headers
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the service did log these jobs
    assert OPENROUTER_CANARY not in logged and GOOGLE_CANARY not in logged


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorServer) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("compat-demo")
    with live_server(tmp, emulator.openrouter_url, emulator.gemini_url, demo=True) as server:
        yield server


def test_demo_images_are_labelled_synthetic(demo: Live) -> None:
    token = demo.new_user()  # no key of its own: the demo emulator serves it
    body = {
        "model": "google/gemini-2.5-flash-image",
        "messages": [{"role": "user", "content": f"a fox {tag()}"}],
        "modalities": ["image", "text"],
    }
    with demo.http(token) as c:
        r = c.post("/api/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        doc = r.json()
        job = c.get(f"/api/generations/{r.headers['x-job-id']}").json()
    assert doc["provider"] == SYNTHETIC_LABEL
    _, raw = decode_data_url(doc["choices"][0]["message"]["images"][0]["image_url"]["url"])
    assert raw.startswith(b"\x89PNG")
    assert job["synthetic"] is True
