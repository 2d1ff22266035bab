"""OpenAI-compatible Images API, driven by the real ``openai`` SDK over HTTP:
``images.generate`` (b64_json and url), ``images.edit`` (one and several files), the sizes a
model cannot make, quality, content blocks, and ``models.list``."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from nanobanana.emulator import EmulatorServer
from nanobanana.server.deps import SIGN_IN

from ..support import image_size, png_bytes
from .conftest import Live, decode_data_url, live_server, tag, upstream_prompts

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client(live: Live) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=live.token, max_retries=0) as c:
        yield c


def job(live: Live, job_id: str) -> dict[str, Any]:
    with live.http(live.token) as c:
        out: dict[str, Any] = c.get(f"/api/generations/{job_id}").json()
        return out


def test_generate_b64_json(client: openai.OpenAI, live: Live, emulator: EmulatorServer) -> None:
    marker = tag()
    raw = client.images.with_raw_response.generate(
        model="gemini-2.5-flash-image",
        prompt=f"a red fox {marker}",
        size="1344x768",
        response_format="b64_json",
    )
    r = raw.parse()
    assert r.created > 0 and r.data is not None and len(r.data) == 1
    data = base64.b64decode(r.data[0].b64_json or "", validate=True)
    assert data.startswith(b"\x89PNG") and image_size(data) == (1344, 768)
    assert r.usage is not None and r.usage.total_tokens > 0
    record = job(live, raw.headers["x-job-id"])
    assert record["kind"] == "openai" and record["status"] == "succeeded"
    assert (record["request"]["aspect_ratio"], record["request"]["image_size"]) == ("16:9", "1K")
    assert len(upstream_prompts(emulator, marker)) == 1


def test_generate_urls_and_n(client: openai.OpenAI, live: Live) -> None:
    r = client.images.generate(
        model="nano-banana",
        prompt=f"two owls {tag()}",
        n=2,
        size="1024x1024",
        response_format="url",
    )
    assert r.data is not None and len(r.data) == 2
    urls = [d.url or "" for d in r.data]
    assert all(u.startswith(f"{live.url}/api/images/") for u in urls)
    with live.http(live.token) as c:
        for url in urls:
            got = c.get(url)
            assert got.status_code == 200 and got.headers["content-type"] == "image/png"
            assert image_size(got.content) == (1024, 1024)
    assert httpx.get(urls[0]).status_code == 401  # the same token is needed


def test_a_nul_in_the_prompt_is_refused_as_by_the_native_api(live: Live) -> None:
    with live.http(live.token) as c:
        native = c.post("/api/nano-banana/generate", json={"prompt": "a\u0000 fox"})
        images = c.post("/v1/images/generations", json={"prompt": "a\u0000 fox"})
        chat = c.post(
            "/api/v1/chat/completions",
            json={
                "model": "google/gemini-2.5-flash-image",
                "modalities": ["image", "text"],
                "messages": [{"role": "user", "content": "a\u0000 fox"}],
            },
        )
    assert native.status_code == 422
    for r in (images, chat):
        assert r.status_code == 400, r.text
        assert "U+0000" in r.json()["error"]["message"]


def test_url_links_never_follow_the_host_header(live: Live, tmp_path: Path) -> None:
    """A client that names another Host gets links to this service, not to that host (whose
    owner would then receive the next client's bearer token)."""
    body = {"model": "nano-banana", "prompt": f"a lamp {tag()}", "response_format": "url"}
    with live.http(live.token) as c:
        r = c.post("/v1/images/generations", json=body, headers={"Host": "attacker.example"})
        assert r.status_code == 200, r.text
        [link] = [d["url"] for d in r.json()["data"]]
        assert link.startswith(f"{live.url}/api/images/") and "attacker" not in link
        assert c.get(link).status_code == 200


def test_url_links_use_the_configured_public_url(live: Live, tmp_path: Path) -> None:
    emu_or = live.services.settings.openrouter_base_url
    emu_gemini = live.services.settings.gemini_base_url
    with (
        live_server(
            tmp_path, str(emu_or), str(emu_gemini), public_url="https://images.example.com/"
        ) as other,
        other.http(other.token) as c,
    ):
        r = c.post(
            "/v1/images/generations",
            json={"model": "nano-banana", "prompt": "a lamp", "response_format": "url"},
            headers={"Host": "attacker.example"},
        )
        [link] = [d["url"] for d in r.json()["data"]]
        assert link.startswith("https://images.example.com/api/images/")


def test_openai_model_names_and_quality(client: openai.OpenAI, live: Live) -> None:
    # A tool that hard-codes an OpenAI model gets the default model; quality picks 0.5K on a
    # model that has it.
    r = client.images.generate(model="dall-e-3", prompt=f"a cat {tag()}", quality="standard")
    assert r.data is not None
    assert image_size(base64.b64decode(r.data[0].b64_json or "")) == (1024, 1024)
    raw = client.images.with_raw_response.generate(
        model="gemini-3.1-flash-image", prompt=f"a cat {tag()}", quality="low"
    )
    r = raw.parse()
    assert r.data is not None
    assert image_size(base64.b64decode(r.data[0].b64_json or "")) == (512, 512)
    assert job(live, raw.headers["x-job-id"])["request"]["image_size"] == "0.5K"


def test_a_size_the_model_lacks_gets_the_nearest_and_says_so(
    client: openai.OpenAI, live: Live
) -> None:
    """Tools hard-code other models' sizes (Open WebUI 512x512, gpt-image 1536x1024) and show
    their users no error text: the nearest size is made, and a header says so."""
    raw = client.images.with_raw_response.generate(
        model="gemini-2.5-flash-image", prompt=f"x {tag()}", size="1536x1024"
    )
    r = raw.parse()
    assert r.data is not None
    assert image_size(base64.b64decode(r.data[0].b64_json or "")) == (1248, 832)
    warning = raw.headers["nanobanana-warning"]
    assert "1536x1024" in warning and "1248x832 (3:2 at 1K)" in warning
    request = job(live, raw.headers["x-job-id"])["request"]
    assert (request["aspect_ratio"], request["image_size"]) == ("3:2", "1K")
    exact = client.images.with_raw_response.generate(
        model="gemini-2.5-flash-image", prompt=f"x {tag()}", size="1344x768"
    )
    assert "nanobanana-warning" not in exact.headers
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gemini-2.5-flash-image", prompt="x", size="wide")
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "size"
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt="x", n=11)
    assert caught.value.body["param"] == "n"  # type: ignore[index]
    with live.http(live.token) as c:
        streamed = c.post("/v1/images/generations", json={"prompt": "x", "stream": True})
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "stream"


def test_edit_one_and_several_images(
    client: openai.OpenAI, live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    first, second = png_bytes(64, 48), png_bytes(32, 32, (0, 90, 200))
    r = client.images.edit(
        model="gemini-2.5-flash-image",
        image=("photo.png", io.BytesIO(first), "image/png"),
        prompt=f"make the sky purple {marker}",
        size="1024x1024",
    )
    assert r.data is not None
    assert image_size(base64.b64decode(r.data[0].b64_json or "")) == (1024, 1024)
    sent = upstream_prompts(emulator, marker)[0]["body"]["messages"][0]["content"]
    refs = [decode_data_url(p["image_url"]["url"])[1] for p in sent if p["type"] == "image_url"]
    assert refs == [first]

    marker = tag()
    raw = client.images.with_raw_response.edit(
        model="gemini-2.5-flash-image",
        image=[
            ("a.png", io.BytesIO(first), "image/png"),
            ("b.png", io.BytesIO(second), "image/png"),
        ],
        prompt=f"put them together {marker}",
    )
    assert raw.parse().data
    assert len(job(live, raw.headers["x-job-id"])["request"]["images"]) == 2
    sent = upstream_prompts(emulator, marker)[0]["body"]["messages"][0]["content"]
    refs = [decode_data_url(p["image_url"]["url"])[1] for p in sent if p["type"] == "image_url"]
    assert refs == [first, second]


def test_edit_refusals(client: openai.OpenAI) -> None:
    png = ("photo.png", io.BytesIO(png_bytes()), "image/png")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            image=png, mask=("m.png", io.BytesIO(png_bytes()), "image/png"), prompt="x"
        )
    assert caught.value.body["param"] == "mask"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            image=("notes.txt", io.BytesIO(b"not an image"), "text/plain"), prompt="x"
        )
    assert caught.value.body["param"] == "image"  # type: ignore[index]


def test_fields_of_the_wrong_kind_get_plain_errors(live: Live) -> None:
    """A mask or image sent as text says it must be a file (no Python type names); a stream
    flag must be a JSON boolean, as the request is strict elsewhere (0 is not false)."""
    png = png_bytes()
    with live.http(live.token) as c:
        r = c.post(
            "/v1/images/edits",
            data={"prompt": "x", "mask": "not a file"},
            files={"image": ("p.png", png, "image/png")},
        )
        assert r.status_code == 400
        message = r.json()["error"]["message"]
        assert "must be a file" in message and "class" not in message and "<" not in message
        r = c.post("/v1/images/edits", data={"prompt": "x", "image": "some text"})
        assert r.status_code == 400 and "class" not in r.json()["error"]["message"]
        for stream in (0, 1, "false", True):
            r = c.post("/v1/images/generations", json={"prompt": "x", "stream": stream})
            assert r.status_code == 400, stream
            assert r.json()["error"]["param"] == "stream"
        chat = {
            "model": "google/gemini-2.5-flash-image",
            "messages": [{"role": "user", "content": "x"}],
        }
        r = c.post("/api/v1/chat/completions", json={**chat, "n": True})
        assert r.status_code == 400


def test_content_block_is_content_policy_violation(client: openai.OpenAI, live: Live) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt=f"forbidden {tag()} [emulator:safety]")
    err = caught.value
    assert err.code == "content_policy_violation"
    # It may have been billed: the SDK is told not to retry it.
    assert err.response.headers["x-should-retry"] == "false"
    assert job(live, err.response.headers["x-job-id"])["status"] == "blocked"


def test_models_list_and_bad_token(client: openai.OpenAI, live: Live) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gemini-2.5-flash-image", "gemini-3-pro-image", "black-forest-labs/flux.2-pro"} <= ids
    with live.http(live.token) as c:
        assert c.get("/v1/models", params={"limit": "2"}).json()["error"]["param"] == "limit"
    with (
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="nope", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        bad.images.generate(prompt="x")
    assert caught.value.body == {
        "message": f"Missing or invalid bearer token. {SIGN_IN}",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }


@pytest.mark.parametrize(
    ("size", "made", "warned"),
    [
        ("512x512", (1024, 1024), True),
        ("1024x1024", (1024, 1024), False),
        ("auto", (1024, 1024), False),
    ],
)
def test_open_webui_image_engine_request(
    live: Live, size: str, made: tuple[int, int], warned: bool
) -> None:
    """The request Open WebUI's OpenAI image engine sends (backend/open_webui/routers/
    images.py: model, prompt, n, its IMAGE_SIZE setting, default 512x512, and
    response_format b64_json), answered with an image it can read at any of those sizes."""
    body = {
        "model": "gemini-2.5-flash-image",
        "prompt": f"a lighthouse at dusk {tag()}",
        "n": 1,
        "size": size,
        "response_format": "b64_json",
    }
    with live.http(live.token) as c:
        r = c.post("/v1/images/generations", json=body)
    assert r.status_code == 200, r.text
    [item] = r.json()["data"]
    assert image_size(base64.b64decode(item["b64_json"])) == made
    assert ("nanobanana-warning" in r.headers) is warned
