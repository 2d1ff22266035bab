"""OpenRouter-compatible chat completions, driven by real clients over HTTP: the ``openai`` SDK
(plain and streaming, ``extra_body``), ``requests`` (the seed's flow with the URL and key
changed), and nanobanana's own library pointed at the service as its OpenRouter.

Every call must become a job in the caller's history, run with the caller's stored keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import requests

from nanobanana import AsyncClient
from nanobanana.emulator import EmulatorServer
from nanobanana.server.deps import SIGN_IN
from nanobanana.server.routes import compat_openrouter

from ..support import image_size, png_bytes
from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Live, decode_data_url, tag, upstream_prompts

pytestmark = pytest.mark.timeout(60)
MODEL = "google/gemini-2.5-flash-image"
IMAGE_BODY = {"modalities": ["image", "text"], "image_config": {"aspect_ratio": "16:9"}}


def sdk(live: Live, token: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/api/v1", api_key=token or live.token, max_retries=0)


@pytest.fixture
def client(live: Live) -> Iterator[openai.OpenAI]:
    with sdk(live) as c:
        yield c


def job(live: Live, job_id: str, token: str | None = None) -> dict[str, Any]:
    with live.http(token or live.token) as c:
        r = c.get(f"/api/generations/{job_id}")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


def job_id_of(generation_id: str) -> str:
    assert generation_id.startswith("gen-")
    return generation_id.removeprefix("gen-")


def user_text(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_image_in_message_and_job_in_history(
    client: openai.OpenAI, live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    r = client.chat.completions.create(
        model=MODEL,
        messages=user_text(f"a red fox {marker}"),  # type: ignore[arg-type]
        extra_body=IMAGE_BODY,
    )
    message = r.choices[0].message
    images = message.images  # type: ignore[attr-defined]
    assert len(images) == 1 and images[0]["type"] == "image_url"
    mime, raw = decode_data_url(images[0]["image_url"]["url"])
    assert mime == "image/png" and raw.startswith(b"\x89PNG\r\n\x1a\n")
    assert image_size(raw) == (1344, 768)
    assert r.object == "chat.completion" and r.model == MODEL
    assert r.model_extra == {"provider": "OpenRouter"}
    assert r.choices[0].finish_reason == "stop" and message.role == "assistant"
    assert message.content and "red fox" in message.content
    assert r.usage is not None
    cost = (r.usage.model_extra or {})["cost"]
    assert cost > 0 and r.usage.completion_tokens > 0

    # The call is a job in ada's history, with the same image and cost.
    record = job(live, job_id_of(r.id))
    assert record["kind"] == "openrouter" and record["status"] == "succeeded"
    assert record["prompt"] == f"a red fox {marker}"
    assert record["request"]["aspect_ratio"] == "16:9"
    assert record["images"][0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert record["cost"] == pytest.approx(cost)
    with live.http(live.token) as c:
        listed = c.get("/api/generations", params={"q": marker}).json()["items"]
    assert [i["id"] for i in listed] == [record["id"]]
    # One upstream call, with ada's stored key.
    seen = upstream_prompts(emulator, marker)
    assert len(seen) == 1 and seen[0]["api_key"] == OPENROUTER_CANARY


def test_reasoning_effort_is_the_thinking_level(
    client: openai.OpenAI, live: Live, emulator: EmulatorServer
) -> None:
    """OpenRouter's ``reasoning.effort`` through the OpenAI SDK: kept in the job and sent on
    (``xhigh`` means ``high``, as OpenRouter maps it for Gemini); ``none`` is a 400."""
    marker = tag()
    r = client.chat.completions.create(
        model=MODEL,
        messages=user_text(f"a red fox {marker}"),  # type: ignore[arg-type]
        extra_body={**IMAGE_BODY, "reasoning": {"effort": "xhigh", "exclude": True}},
    )
    assert job(live, job_id_of(r.id))["request"]["thinking"] == "high"
    [seen] = upstream_prompts(emulator, marker)
    assert seen["body"]["reasoning"] == {"effort": "high"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=user_text("a fox"),  # type: ignore[arg-type]
            extra_body={**IMAGE_BODY, "reasoning": {"effort": "none"}},
        )
    assert "reasoning.effort 'none'" in str(caught.value)


def test_the_web_plugin_grounds_in_google_search(
    client: openai.OpenAI, live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    r = client.chat.completions.create(
        model=MODEL,
        messages=user_text(f"the tallest tower today {marker}"),  # type: ignore[arg-type]
        extra_body={**IMAGE_BODY, "plugins": [{"id": "web"}]},
    )
    assert job(live, job_id_of(r.id))["request"]["google_search"] is True
    # The pages come back as OpenRouter's web search cites them, and read back with the
    # library's reader.
    cited = r.choices[0].message.annotations  # the OpenAI SDK's own type
    assert cited is not None and [c.type for c in cited] == ["url_citation", "url_citation"]
    assert all(c.url_citation.url.startswith("https://") for c in cited)
    [seen] = upstream_prompts(emulator, marker)
    assert seen["body"]["plugins"] == [{"id": "web", "engine": "native"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=user_text("a fox"),  # type: ignore[arg-type]
            extra_body={**IMAGE_BODY, "plugins": [{"id": "web", "engine": "exa"}]},
        )
    assert "Google Search only" in str(caught.value)


def test_other_image_config_keys_are_passed_on(
    client: openai.OpenAI, live: Live, emulator: EmulatorServer
) -> None:
    """Model-specific image_config keys (Recraft's, Sourceful's) reach OpenRouter as sent,
    and are kept with the job; none is dropped unseen."""
    marker = tag()
    config = {"aspect_ratio": "16:9", "style": "Photorealism", "rgb_colors": [[255, 0, 0]]}
    r = client.chat.completions.create(
        model=MODEL,
        messages=user_text(f"a fox {marker}"),  # type: ignore[arg-type]
        extra_body={**IMAGE_BODY, "image_config": config},
    )
    [seen] = upstream_prompts(emulator, marker)
    assert seen["body"]["image_config"] == config
    kept = job(live, job_id_of(r.id))["request"]["image_options"]
    assert kept == {"style": "Photorealism", "rgb_colors": [[255, 0, 0]]}
    for bad, says in [
        ({"transparent": True}, "Image option transparent is bool"),
        ({"Style": "x"}, "not a snake_case name"),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model=MODEL,
                messages=user_text("a fox"),  # type: ignore[arg-type]
                extra_body={**IMAGE_BODY, "image_config": bad},
            )
        assert says in str(caught.value)
        assert caught.value.body["metadata"]["param"] == "image_config"  # type: ignore[index]


def test_streaming_images_arrive_in_delta_extra(client: openai.OpenAI, live: Live) -> None:
    marker = tag()
    stream = client.chat.completions.create(
        model="nano-banana-2",
        messages=user_text(f"a lighthouse {marker}"),  # type: ignore[arg-type]
        stream=True,
        extra_body={
            "modalities": ["image", "text"],
            "image_config": {"aspect_ratio": "1:4", "image_size": "0.5K"},
        },
    )
    texts, images, finishes, usage, ids = [], [], [], None, set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if delta.content:
            texts.append(delta.content)
        images.extend((delta.model_extra or {}).get("images") or [])
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
    assert len(ids) == 1 and "lighthouse" in "".join(texts)
    assert len(images) == 1 and images[0]["index"] == 0
    _, raw = decode_data_url(images[0]["image_url"]["url"])
    assert image_size(raw) == (256, 1024)
    assert finishes == ["stop"]
    assert usage is not None and (usage.model_extra or {})["cost"] > 0
    record = job(live, job_id_of(ids.pop()))
    assert record["status"] == "succeeded" and record["model"] == "gemini-3.1-flash-image"
    assert record["images"][0]["sha256"] == hashlib.sha256(raw).hexdigest()


def test_stream_keeps_alive_while_the_job_runs(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat_openrouter, "KEEPALIVE_SECONDS", 0.1)
    body = {
        "model": MODEL,
        "messages": user_text(f"slow {tag()} [emulator:latency:0.8]"),
        "stream": True,
        **IMAGE_BODY,
    }
    lines: list[str] = []
    with (
        live.http(live.token) as c,
        c.stream("POST", "/api/v1/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-generation-id"].startswith("gen-")
        lines = [line for line in r.iter_lines() if line]
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert lines[:first_data] == [": OPENROUTER PROCESSING"] * first_data
    assert first_data >= 4  # one at once, then every 0.1 s of the 0.8 s wait
    assert lines[-1] == "data: [DONE]"


def test_midstream_error_the_openrouter_way(client: openai.OpenAI, live: Live) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=user_text(f"fails {tag()} [emulator:midstream-error]"),  # type: ignore[arg-type]
        stream=True,
        extra_body=IMAGE_BODY,
    )
    seen: list[Any] = []
    with pytest.raises(openai.APIError) as caught:
        seen.extend(stream)
    assert seen == []  # nothing but keep-alives before the error
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == 502
    assert body["metadata"]["error_type"] == "provider_unavailable"
    record = job(live, body["metadata"]["job_id"])
    assert record["kind"] == "openrouter" and record["status"] == "failed"


def test_midstream_error_raw_event(live: Live) -> None:
    body = {
        "model": MODEL,
        "messages": user_text(f"fails {tag()} [emulator:server-error:503]"),
        "stream": True,
        **IMAGE_BODY,
    }
    with live.http(live.token) as c:
        r = c.post("/api/v1/chat/completions", json=body)
    assert r.status_code == 200
    events = [e for e in r.text.split("\n\n") if e]
    assert events[0] == ": OPENROUTER PROCESSING"
    doc = json.loads(events[-1].removeprefix("data: "))
    assert doc["object"] == "chat.completion.chunk"
    assert doc["error"]["code"] == 503 and doc["choices"][0]["finish_reason"] == "error"
    assert "data: [DONE]" not in r.text


def test_safety_block_is_content_filter(client: openai.OpenAI, live: Live) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=user_text(f"forbidden {tag()} [emulator:safety]"),  # type: ignore[arg-type]
        extra_body=IMAGE_BODY,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "content_filter"
    assert (choice.model_extra or {})["native_finish_reason"] == "IMAGE_SAFETY"
    assert "images" not in (choice.message.model_extra or {})
    assert job(live, job_id_of(r.id))["status"] == "blocked"

    stream = client.chat.completions.create(
        model=MODEL,
        messages=user_text(f"forbidden {tag()} [emulator:safety]"),  # type: ignore[arg-type]
        extra_body=IMAGE_BODY,
        stream=True,
    )
    finishes = [c.choices[0].finish_reason for c in stream if c.choices]
    assert finishes[-1] == "content_filter"


def test_quota_without_fallback_is_a_429(live: Live) -> None:
    token = live.new_user(keys={"google": GOOGLE_CANARY})
    with sdk(live, token) as c, pytest.raises(openai.RateLimitError) as caught:
        c.chat.completions.create(
            model=MODEL,
            messages=user_text(f"busy {tag()} [emulator:quota:90]"),  # type: ignore[arg-type]
            extra_body=IMAGE_BODY,
        )
    err = caught.value
    assert err.status_code == 429 and err.response.headers["retry-after"] == "90"
    body = err.body
    assert isinstance(body, dict) and body["code"] == 429
    meta = body["metadata"]
    assert meta["error_type"] == "rate_limit_exceeded" and meta["provider_name"] == "google"
    record = job(live, meta["job_id"], token)
    assert record["status"] == "failed" and record["error"]["code"] == "quota_exceeded"
    assert err.response.json() == {"error": body}


def test_quota_falls_back_to_openrouter(
    live_quota: Live, emulator: EmulatorServer, quota_google: EmulatorServer
) -> None:
    marker = tag()
    with sdk(live_quota) as c:
        r = c.chat.completions.create(
            model=MODEL,
            messages=user_text(f"fallback {marker}"),  # type: ignore[arg-type]
            extra_body={**IMAGE_BODY, "provider": "google"},
        )
    assert r.model_extra == {"provider": "OpenRouter"}
    _, raw = decode_data_url(r.choices[0].message.images[0]["image_url"]["url"])  # type: ignore[attr-defined]
    assert image_size(raw) == (1344, 768)
    record = job(live_quota, job_id_of(r.id))
    steps = [(a["provider"], a["status"], a["error_code"]) for a in record["fallback"]]
    assert steps == [("google", "error", "quota_exceeded"), ("openrouter", "ok", None)]
    assert len(upstream_prompts(quota_google, marker)) == 1
    assert len(upstream_prompts(emulator, marker)) == 1


def test_reference_images_from_image_url_parts(
    client: openai.OpenAI, live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    ref = png_bytes(48, 32)
    data_url = "data:image/png;base64," + __import__("base64").b64encode(ref).decode()
    r = client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"make it blue {marker}"},
                    {"type": "image_url", "image_url": {"url": data_url}},
                ],
            }
        ],
        extra_body={"modalities": ["image", "text"]},
    )
    assert r.choices[0].message.images  # type: ignore[attr-defined]
    record = job(live, job_id_of(r.id))
    assert len(record["request"]["images"]) == 1
    sent = upstream_prompts(emulator, marker)[0]["body"]["messages"][0]["content"]
    urls = [p["image_url"]["url"] for p in sent if p["type"] == "image_url"]
    assert [decode_data_url(u)[1] for u in urls] == [ref]


def test_errors_have_openrouters_shape_and_real_statuses(client: openai.OpenAI, live: Live) -> None:
    with sdk(live, "not-a-token") as bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model=MODEL, messages=user_text("x"))  # type: ignore[arg-type]
    assert caught.value.body == {
        "code": 401,
        "message": f"Missing or invalid bearer token. {SIGN_IN}",
        "metadata": {"error_type": "unauthorized"},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="no-such-model", messages=user_text("x"))  # type: ignore[arg-type]
    assert caught.value.body["metadata"]["param"] == "model"  # type: ignore[index]
    # Where this service lists its models, not a command of the CLI.
    assert "GET /api/v1/models" in caught.value.message
    assert "nanobanana models" not in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=user_text("x"),  # type: ignore[arg-type]
            extra_body={"image_config": {"aspect_ratio": "7:3"}},
        )
    assert caught.value.body["metadata"]["param"] == "image_config.aspect_ratio"  # type: ignore[index]
    assert "'16:9'" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=user_text("x"),  # type: ignore[arg-type]
            extra_body={"image_config": {"aspect_ratio": "1:4"}},  # 3.1 Flash only
        )
    meta = caught.value.body["metadata"]  # type: ignore[index]
    assert meta["param"] == "image_config.aspect_ratio" and "16:9" in meta["allowed"]
    assert "1:4" not in meta["allowed"]
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=user_text("x"),  # type: ignore[arg-type]
            extra_body={"modalities": ["text"]},
        )
    assert "No endpoints found" in caught.value.message
    keyless = live.new_user()
    with sdk(live, keyless) as c, pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(model=MODEL, messages=user_text("x"))  # type: ignore[arg-type]
    assert caught.value.body["metadata"]["error_type"] == "missing_api_key"  # type: ignore[index]
    assert "/api/settings/keys/openrouter" in caught.value.message
    with live.http(keyless) as c:
        assert c.get("/api/generations").json()["items"] == []  # refused before any job


def test_the_seeds_requests_flow(live: Live, tmp_path: Path) -> None:
    r = requests.post(
        f"{live.url}/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {live.token}"},
        json={
            "model": "google/gemini-2.5-flash-image",
            "messages": [{"role": "user", "content": "a red fox"}],
            "modalities": ["image", "text"],
            "image_config": {"aspect_ratio": "16:9"},
        },
        timeout=60,
    )
    assert r.status_code == 200
    assert "gzip" not in r.headers.get("content-encoding", "")
    saved = []
    for i, img in enumerate(r.json()["choices"][0]["message"]["images"]):
        _header, b64 = img["image_url"]["url"].split(",", 1)
        path = tmp_path / f"fox-{i}.png"
        path.write_bytes(__import__("base64").b64decode(b64))
        saved.append(path)
    assert len(saved) == 1 and image_size(saved[0].read_bytes()) == (1344, 768)


def test_chat_under_the_v1_base_url_and_idempotency(live: Live, emulator: EmulatorServer) -> None:
    marker = tag()
    body = {"model": MODEL, "messages": user_text(f"twice {marker}"), **IMAGE_BODY}
    with live.http(live.token) as c:
        first = c.post("/v1/chat/completions", json=body, headers={"Idempotency-Key": marker})
        again = c.post("/api/v1/chat/completions", json=body, headers={"Idempotency-Key": marker})
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"] == first.headers["x-generation-id"]
    assert first.content == again.content
    assert len(upstream_prompts(emulator, marker)) == 1


def test_models_list_with_output_modalities(client: openai.OpenAI, live: Live) -> None:
    default = [m.id for m in client.models.list()]
    assert "google/gemini-2.5-flash-image" in default
    assert "black-forest-labs/flux.2-pro" not in default
    with live.http(live.token) as c:
        r = c.get("/api/v1/models", params={"output_modalities": "image"})
        assert r.status_code == 200
        data = r.json()["data"]
        assert "black-forest-labs/flux.2-pro" in {m["id"] for m in data}
        assert all("image" in m["architecture"]["output_modalities"] for m in data)
        bad = c.get("/api/v1/models", params={"output_modalities": "video"})
        typo = c.get("/api/v1/models", params={"output_modality": "image"})
        ignored = c.get("/api/v1/models", params={"supported_parameters": "seed", "limit": "5"})
    assert bad.status_code == 400
    assert bad.json()["error"]["metadata"]["param"] == "output_modalities"
    assert typo.status_code == 400 and "'output_modality'" in typo.json()["error"]["message"]
    assert ignored.status_code == 200
    assert httpx.get(f"{live.url}/api/v1/models").status_code == 401


async def test_nanobanana_library_uses_the_service_as_its_openrouter(live: Live) -> None:
    async with AsyncClient(
        openrouter_api_key=live.token,
        base_urls={"openrouter": f"{live.url}/api/v1"},
        env={},
        use_keys_file=False,
    ) as nb:
        plain = await nb.generate("a fox", model="nano-banana", aspect_ratio="16:9")
        streamed = await nb.generate("an owl", aspect_ratio="1:1", stream=True)
    assert (plain.images[0].width, plain.images[0].height) == (1344, 768)
    assert plain.cost is not None and plain.cost > 0
    assert (streamed.images[0].width, streamed.images[0].height) == (1024, 1024)
    assert plain.warnings == [] or all("shutdown" in w for w in plain.warnings)


def test_a_client_that_leaves_does_not_cancel_the_job(live: Live) -> None:
    import time

    marker = tag()
    body = {
        "model": MODEL,
        "messages": user_text(f"patience {marker} [emulator:latency:0.5]"),
        "stream": True,
        **IMAGE_BODY,
    }
    with (
        live.http(live.token) as c,
        c.stream("POST", "/api/v1/chat/completions", json=body) as r,
    ):
        job_id = r.headers["x-job-id"]
        assert next(r.iter_lines()) == ": OPENROUTER PROCESSING"
    # The connection is closed; the paid call still finishes and is kept.
    deadline = time.monotonic() + 20
    while (record := job(live, job_id))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert record["status"] == "succeeded" and len(record["images"]) == 1


def test_the_design_notes_model_ids_are_accepted(client: openai.OpenAI, live: Live) -> None:
    marker = tag()
    r = client.chat.completions.create(
        model="google/gemini-2.5-flash-image-preview",
        messages=user_text(f"a fox {marker}"),  # type: ignore[arg-type]
        extra_body={"modalities": ["image", "text"]},
    )
    job_record = job(live, job_id_of(r.id))
    assert job_record["model"] == "gemini-2.5-flash-image"
    assert any("retired preview id" in w for w in job_record["warnings"])


def test_a_routing_variant_reaches_openrouter(
    client: openai.OpenAI, live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    client.chat.completions.create(
        model="google/gemini-3.1-flash-image-preview:nitro",
        messages=user_text(f"a fox {marker}"),  # type: ignore[arg-type]
        extra_body={"modalities": ["image", "text"]},
    )
    sent = upstream_prompts(emulator, marker)
    # The model's id as the service currently sends it (the preview id built in, the GA id once
    # a listing has been read), with the variant kept.
    wire = live.services.catalog.get("gemini-3.1-flash-image").provider_ids["openrouter"]
    assert wire in {"google/gemini-3.1-flash-image", "google/gemini-3.1-flash-image-preview"}
    assert [q["body"]["model"] for q in sent] == [f"{wire}:nitro"]
