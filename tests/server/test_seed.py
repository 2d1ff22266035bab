"""The seed API: POST /api/nano-banana/generate and GET /api/nano-banana/models."""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Callable

import pytest

from nanobanana.catalog import DEFAULT_MODEL, Catalog
from nanobanana.emulator import EmulatorServer
from nanobanana.files import read_metadata
from nanobanana.imaging import to_data_url
from nanobanana.server import listings
from nanobanana.server.settings import Settings
from nanobanana.types import ReferenceImage

from ..support import image_size, png_bytes
from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Api, running, upstream_requests

pytestmark = pytest.mark.timeout(60)
GEN = "/api/nano-banana/generate"


def tag() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def test_happy_path_16_9(db_api: Api, emulator: EmulatorServer) -> None:
    c = db_api.client
    h = await db_api.user("alice")
    await db_api.put_key(h, "openrouter", OPENROUTER_CANARY)
    marker = tag()
    r = await c.post(GEN, json={"prompt": f"a fox {marker}", "aspect_ratio": "16:9"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prompt"] == f"a fox {marker}"
    assert body["model"] == DEFAULT_MODEL
    assert body["provider"] == "openrouter" and body["synthetic"] is False
    assert len(body["images"]) == 1 and len(body["image_urls"]) == 1
    data = base64.b64decode(body["images"][0], validate=True)
    assert data.startswith(b"\x89PNG")
    assert image_size(data) == (1344, 768)
    assert body["cost"] is not None and body["usage"]["cost"] == body["cost"]
    assert [a["status"] for a in body["fallback"]] == ["ok"]
    # Provenance travels in the PNG, without any secret.
    meta = read_metadata(data)
    assert meta["prompt"] == f"a fox {marker}" and meta["provider"] == "openrouter"
    assert OPENROUTER_CANARY.encode() not in data

    served = await c.get(body["image_urls"][0], headers=h)
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert served.headers["vary"] == "Authorization, Cookie"  # a browser keeps it per account
    thumb = await c.get(body["image_urls"][0] + "?thumb=1", headers=h)
    assert thumb.headers["content-type"] == "image/webp"
    assert max(image_size(thumb.content)) <= 384
    # HEAD: the GET's headers, no bytes; to the owner only.
    for url, got in ((body["image_urls"][0], served), (body["image_urls"][0] + "?thumb=1", thumb)):
        head = await c.head(url, headers=h)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["etag"] == got.headers["etag"]
    assert (await c.head(body["image_urls"][0])).status_code == 401

    # One upstream call, carrying the user's key in a header, never in the URL.
    seen = upstream_requests(emulator, marker)
    assert len(seen) == 1
    assert seen[0]["api_key"] == OPENROUTER_CANARY and not seen[0]["key_in_query"]

    job = (await c.get(f"/api/generations/{body['id']}", headers=h)).json()
    assert job["status"] == "succeeded"
    assert job["images"][0]["sha256"] == hashlib.sha256(data).hexdigest()


async def test_several_images_and_google(api: Api, emulator: EmulatorServer) -> None:
    h = await api.user("alice")
    await api.put_key(h, "google", GOOGLE_CANARY)
    marker = tag()
    r = await api.client.post(
        GEN,
        json={"prompt": f"two cats {marker}", "num_images": 2, "provider": "google"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provider"] == "google" and len(body["images"]) == 2
    seen = upstream_requests(emulator, marker)
    assert len(seen) == 2
    assert {s["auth_header"] for s in seen} == {"x-goog-api-key"}
    assert not any(s["key_in_query"] for s in seen)


async def test_no_key_is_400_naming_the_fix(api: Api, emulator: EmulatorServer) -> None:
    h = await api.user("alice")
    marker = tag()
    r = await api.client.post(GEN, json={"prompt": f"x {marker}", "provider": "google"}, headers=h)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "missing_api_key" and err["provider"] == "google"
    assert "settings page" in err["message"] and "PUT /api/settings/keys/google" in err["message"]
    assert upstream_requests(emulator, marker) == []
    # Nothing was stored for a refused request.
    assert (await api.client.get("/api/generations", headers=h)).json()["items"] == []


async def test_google_quota_falls_back_to_openrouter(
    settings_for: Callable[..., Settings], quota_emulator: EmulatorServer, emulator: EmulatorServer
) -> None:
    settings = settings_for(gemini_base_url=quota_emulator.gemini_url)
    async with running(settings) as api:
        h = await api.user("alice")
        await api.put_key(h, "google", GOOGLE_CANARY)
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        marker = tag()
        r = await api.client.post(
            GEN, json={"prompt": f"fallback {marker}", "provider": "google"}, headers=h
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["provider"] == "openrouter"
        steps = [(a["provider"], a["status"], a["error_code"]) for a in body["fallback"]]
        assert steps == [("google", "error", "quota_exceeded"), ("openrouter", "ok", None)]
        assert any("fallback" in w for w in body["warnings"])
        assert len(upstream_requests(quota_emulator, marker)) == 1
        assert len(upstream_requests(emulator, marker)) == 1


async def test_quota_without_fallback_is_429(api: Api) -> None:
    h = await api.user("alice")
    await api.put_key(h, "google", GOOGLE_CANARY)
    r = await api.client.post(
        GEN, json={"prompt": "busy [emulator:quota:90]", "provider": "google"}, headers=h
    )
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == "90"
    err = r.json()["error"]
    assert err["code"] == "quota_exceeded" and err["job_id"]
    job = (await api.client.get(f"/api/generations/{err['job_id']}", headers=h)).json()
    assert job["status"] == "failed" and job["error"]["code"] == "quota_exceeded"
    assert job["error"]["status"] == 429


async def test_upstream_failure_is_503(db_api: Api) -> None:
    h = await db_api.user("alice")
    await db_api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await db_api.client.post(
        GEN, json={"prompt": "down [emulator:server-error:503]"}, headers=h
    )
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "upstream_failed" and err["reason"] == "upstream_unavailable"
    assert err["fallback"][0]["http_status"] == 503
    assert OPENROUTER_CANARY not in r.text


async def test_error_in_200_is_a_failure_not_a_file(api: Api) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    for scenario in ("error-in-200", "bad-base64", "truncated-image"):
        r = await api.client.post(GEN, json={"prompt": f"x [emulator:{scenario}]"}, headers=h)
        assert r.status_code == 503, (scenario, r.text)
        job_id = r.json()["error"]["job_id"]
        job = (await api.client.get(f"/api/generations/{job_id}", headers=h)).json()
        assert job["status"] == "failed" and job["images"] == []
    assert not any(api.settings.images_dir.rglob("*.png"))


async def test_blocked_content(db_api: Api) -> None:
    h = await db_api.user("alice")
    await db_api.put_key(h, "google", GOOGLE_CANARY)
    r = await db_api.client.post(
        GEN, json={"prompt": "forbidden [emulator:safety]", "provider": "google"}, headers=h
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "content_blocked"
    assert err["reason"] or err["finish_reason"]
    assert "text" in err
    job = (await db_api.client.get(f"/api/generations/{err['job_id']}", headers=h)).json()
    assert job["status"] == "blocked"


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        ({"aspect_ratio": "7:3"}, "aspect_ratio", "16:9"),
        ({"model": "gemini-2.5-flash-image", "image_size": "4K"}, "image_size", "1K"),
        ({"model": "no-such-model"}, "model", "gemini-3-pro-image"),
        ({"model": "black-forest-labs/flux.2-pro", "provider": "google"}, "model", "openrouter"),
        ({"model": "nano-banana-2-lite", "thinking": "low"}, "thinking", "high"),
    ],
)
async def test_bad_parameters_name_the_allowed_values(
    api: Api, body: dict[str, str], field: str, allowed: str
) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await api.put_key(h, "google", GOOGLE_CANARY)
    r = await api.client.post(GEN, json={"prompt": "x", **body}, headers=h)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field
    assert allowed in err["allowed"]


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": ""},
        {"prompt": "x", "num_images": 11},
        {"prompt": "x", "num_images": 0},
        {"prompt": "x", "num_images": "2"},
        {"prompt": "x", "num_images": True},
        {"prompt": "x", "provider": "azure"},
        {"prompt": "x", "seed": -1},
        {"prompt": "x", "thinking": "maximum"},
        {"prompt": "x", "google_search": "yes"},
        {"prompt": "x", "user_id": "someone"},
        {"prompt": "nul \u0000 byte"},
        {"prompt": 5},
        {},
    ],
)
async def test_schema_validation(api: Api, body: dict[str, object]) -> None:
    h = await api.user("alice")
    r = await api.client.post(GEN, json=body, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["errors"]


async def test_reference_images(api: Api, emulator: EmulatorServer) -> None:
    c = api.client
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    up = await c.post(
        "/api/uploads", files={"file": ("ref.png", png_bytes(), "image/png")}, headers=h
    )
    assert up.status_code == 201
    data_url = to_data_url(ReferenceImage(png_bytes(32, 32), "image/png", 32, 32))
    marker = tag()
    r = await c.post(
        GEN, json={"prompt": f"edit {marker}", "images": [up.json()["id"], data_url]}, headers=h
    )
    assert r.status_code == 200, r.text
    sent = upstream_requests(emulator, marker)
    assert len(sent) == 1
    assert str(sent[0]["body"]).count("data:image/png;base64,") >= 2
    job = (await c.get(f"/api/generations/{r.json()['id']}", headers=h)).json()
    assert len(job["request"]["images"]) == 2  # the data URL became an upload
    assert all(len(i) == 32 for i in job["request"]["images"])


@pytest.mark.parametrize(
    "ref",
    [
        "/etc/passwd",
        "http://127.0.0.1:9/x.png",
        "file:///etc/passwd",
        "0" * 32,
        "data:text/html;base64,PGI+",
    ],
)
async def test_reference_images_refused(api: Api, emulator: EmulatorServer, ref: str) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    marker = tag()
    r = await api.client.post(GEN, json={"prompt": f"x {marker}", "images": [ref]}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "images"
    assert upstream_requests(emulator, marker) == []


async def test_defaults_apply(api: Api, emulator: EmulatorServer) -> None:
    c = api.client
    h = await api.user("alice")
    await api.put_key(h, "google", GOOGLE_CANARY)
    r = await c.put(
        "/api/settings/defaults",
        json={"provider": "google", "aspect_ratio": "9:16", "model": None, "image_size": None},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert (await c.get("/api/settings/defaults", headers=h)).json()["provider"] == "google"
    r = await c.post(GEN, json={"prompt": "portrait"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["provider"] == "google"
    assert image_size(base64.b64decode(r.json()["images"][0])) == (768, 1344)
    bad = await c.put("/api/settings/defaults", json={"image_size": "9K"}, headers=h)
    assert bad.status_code == 422
    bad = await c.put("/api/settings/defaults", json={"model": "nope"}, headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_model"


async def test_models_endpoint(api: Api) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await api.client.get("/api/nano-banana/models", headers=h)
    assert r.status_code == 200
    models = r.json()["models"]
    assert {m["provider"] for m in models} == {"openrouter", "google"}
    nano = {m["provider"]: m for m in models if m["id"] == DEFAULT_MODEL}
    assert nano["openrouter"]["recommended"] is True
    assert nano["google"]["recommended"] is False
    assert nano["openrouter"]["available"] is True and nano["google"]["available"] is False
    assert "16:9" in nano["openrouter"]["aspect_ratios"]
    for m in models:
        assert {"id", "name", "provider", "description", "requires_api_key", "recommended"} <= set(
            m
        )
    only = (await api.client.get("/api/nano-banana/models?provider=google", headers=h)).json()
    assert {m["provider"] for m in only["models"]} == {"google"}
    assert (await api.client.get("/api/nano-banana/models")).status_code == 401


async def test_demo_mode(
    settings_for: Callable[..., Settings],
    emulator: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nanobanana.server")
    async with running(settings_for(demo=None)) as api:  # auto: no key in the environment
        c = api.client
        assert api.services.demo is not None
        assert "DEMO MODE" in caplog.text and "SYNTHETIC" in caplog.text
        h = await api.user("alice")
        assert (await c.get("/api/auth/me", headers=h)).json()["demo"] is True
        marker = tag()
        r = await c.post(GEN, json={"prompt": f"demo {marker}"}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["synthetic"] is True
        assert r.json()["cost"] is None  # nothing was spent
        assert r.json()["usage"]["cost"] is None  # nor is the emulator's made-up price shown
        meta = read_metadata(base64.b64decode(r.json()["images"][0]))
        assert meta["synthetic"] is True and meta["cost"] is None
        assert upstream_requests(emulator, marker) == []  # the built-in emulator served it
        job = (await c.get(f"/api/generations/{r.json()['id']}", headers=h)).json()
        assert job["synthetic"] is True
        assert "SYNTHETIC" in caplog.text.split(r.json()["id"])[-1].splitlines()[0]
        # A key of one's own switches to the configured (real) provider.
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        assert (await c.get("/api/auth/me", headers=h)).json()["demo"] is False
        marker = tag()
        r = await c.post(GEN, json={"prompt": f"real {marker}"}, headers=h)
        assert r.status_code == 200 and r.json()["synthetic"] is False
        assert len(upstream_requests(emulator, marker)) == 1


async def test_demo_mode_survives_a_huge_one_word_prompt(
    settings_for: Callable[..., Settings],
) -> None:
    """A 31,000-character word with four images once held a core for minutes (the emulator's
    word wrap trimmed one character per measurement); now it is drawn like a short prompt."""
    async with running(settings_for(demo=None)) as api:
        h = await api.user("alice")
        prompt = "x" * 31_000
        r = await api.client.post(GEN, json={"prompt": prompt, "num_images": 4}, headers=h)
        assert r.status_code == 200, r.text
        assert len(r.json()["images"]) == 4 and r.json()["synthetic"] is True
        assert r.json()["prompt"] == prompt
        assert (await api.client.get("/healthz")).status_code == 200


async def test_server_keys_only_when_admin_allows(
    settings_for: Callable[..., Settings], emulator: EmulatorServer
) -> None:
    settings = settings_for(openrouter_api_key=OPENROUTER_CANARY)
    assert settings.demo_enabled is False
    async with running(settings) as api:
        c = api.client
        admin = await api.user("root")
        user = await api.user("bob")
        r = await c.post(GEN, json={"prompt": "x"}, headers=user)
        assert r.status_code == 400
        assert (await c.get("/api/admin/settings", headers=user)).status_code == 403
        r = await c.put("/api/admin/settings", json={"allow_server_keys": True}, headers=admin)
        assert r.status_code == 200
        assert r.json() == {
            "allow_server_keys": True,
            "server_keys": {"openrouter": True, "google": False},
            "demo": False,
        }
        assert OPENROUTER_CANARY not in r.text
        marker = tag()
        r = await c.post(GEN, json={"prompt": f"x {marker}"}, headers=user)
        assert r.status_code == 200, r.text
        assert upstream_requests(emulator, marker)[0]["api_key"] == OPENROUTER_CANARY
        keys = (await c.get("/api/settings/keys", headers=user)).json()["keys"]
        assert keys[0]["effective_source"] == "server" and keys[0]["masked"] is None


@pytest.mark.parametrize("fault", ["hangup", "reset", "truncated"])
async def test_ambiguous_failure_is_never_resent(
    api: Api, emulator: EmulatorServer, fault: str
) -> None:
    """The upstream read the request, then the connection died: it may have billed it, so it
    is neither retried nor sent to the fallback provider (U2)."""
    settings_retry = api.settings.retry_max_attempts
    assert settings_retry == 1
    h = await api.user("alice")
    await api.put_key(h, "google", GOOGLE_CANARY)
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    marker = tag()
    r = await api.client.post(
        GEN, json={"prompt": f"gone {marker} [emulator:{fault}]", "provider": "google"}, headers=h
    )
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "upstream_failed" and err["may_be_billed"] is True
    assert [a["provider"] for a in err["fallback"]] == ["google"]
    assert len(upstream_requests(emulator, marker)) == 1
    job = (await api.client.get(f"/api/generations/{err['job_id']}", headers=h)).json()
    assert job["status"] == "failed" and job["fallback"][0]["may_be_billed"] is True


async def test_retries_are_configurable(settings_for: Callable[..., Settings]) -> None:
    async with running(settings_for(retry_max_attempts=3)) as api:
        h = await api.user("alice")
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        r = await api.client.post(
            GEN, json={"prompt": f"flaky {tag()} [emulator:flaky:2:503]"}, headers=h
        )
        assert r.status_code == 200, r.text
        assert [a["status"] for a in r.json()["fallback"]] == ["error", "error", "ok"]


async def test_jpeg_from_upstream_is_served_as_jpeg(api: Api) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await api.client.post(GEN, json={"prompt": "photo [emulator:jpeg]"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["mime_types"] == ["image/jpeg"]
    served = await api.client.get(r.json()["image_urls"][0], headers=h)
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content[:3] == b"\xff\xd8\xff"
    assert served.headers["content-disposition"].endswith('.jpg"')


#: The design notes' model ids: each generates with the current model and a warning.
NOTES_IDS = {
    "google/gemini-2.5-flash-image-preview": "gemini-2.5-flash-image",
    "google/gemini-3-pro-image-preview": "gemini-3-pro-image",
    "gemini-2.5-flash-image-preview": "gemini-2.5-flash-image",
    "openrouter/gemini-2.5-flash-image-preview": "gemini-2.5-flash-image",
}


@pytest.mark.parametrize("name", NOTES_IDS)
async def test_the_design_notes_model_ids_generate(
    api: Api, emulator: EmulatorServer, name: str
) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await api.client.post(GEN, json={"prompt": f"a fox {tag()}", "model": name}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == NOTES_IDS[name] and len(body["images"]) == 1
    note = Catalog().resolve(name).note
    if name != "google/gemini-3-pro-image-preview":  # OpenRouter's current id: no note
        assert note is not None and note in body["warnings"], body["warnings"]
    history = (await api.client.get(f"/api/generations/{body['id']}", headers=h)).json()
    assert history["model"] == NOTES_IDS[name]


async def test_the_free_variant_is_sent_to_openrouter_as_asked(
    api: Api, emulator: EmulatorServer
) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await api.put_key(h, "google", GOOGLE_CANARY)
    marker = tag()
    r = await api.client.post(
        GEN,
        json={"prompt": f"a fox {marker}", "model": "google/gemini-2.5-flash-image-preview:free"},
        headers=h,
    )
    # The emulator, like OpenRouter, lists no free variant of this model: the refusal is the
    # answer, never a paid call without ":free".
    assert r.status_code == 503, r.text
    assert r.json()["error"]["upstream_status"] == 400
    assert "':free' variant" in r.json()["error"]["message"]
    sent = upstream_requests(emulator, marker)
    assert [q["body"]["model"] for q in sent] == ["google/gemini-2.5-flash-image:free"]


async def test_a_variant_with_google_is_a_422_at_the_provider_field(api: Api) -> None:
    h = await api.user("alice")
    await api.put_key(h, "google", GOOGLE_CANARY)
    r = await api.client.post(
        GEN,
        json={"prompt": "a fox", "model": "gemini-3.1-flash-image:nitro", "provider": "google"},
        headers=h,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "provider"
    assert "OpenRouter model variant" in r.json()["error"]["message"]


async def test_bad_bodies_get_messages_that_say_what_to_fix(api: Api) -> None:
    h = await api.user("alice")
    c = api.client
    r = await c.post(
        GEN, content=b'{"prompt": }', headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"] == (
        "The request body is not valid JSON (Expecting value at character 11). "
        'Send a JSON object, e.g. {"prompt": "a banana"}.'
    )
    r = await c.post(GEN, content=b'{"prompt": "a fox"}', headers={**h, "Content-Type": ""})
    assert r.status_code == 422
    assert "sent with 'Content-Type: application/json'" in r.json()["error"]["message"]
    r = await c.post(GEN, json={"prompt": ""}, headers=h)
    assert r.json()["error"]["message"] == "The prompt is empty: describe the image you want."
    for blank in (" ", "\n\t "):  # refused as input: no failed job is stored for it
        r = await c.post(GEN, json={"prompt": blank}, headers=h)
        assert r.status_code == 422
        assert r.json()["error"]["message"] == (
            "The prompt is blank (only spaces): describe the image you want."
        )
        r = await c.post("/api/generations", json={"prompt": blank}, headers=h)
        assert r.status_code == 422
    assert (await c.get("/api/generations", headers=h)).json()["items"] == []
    r = await c.post(GEN, json={}, headers=h)
    assert r.json()["error"]["message"] == "prompt is required."
    r = await c.post(GEN, json={"prompt": "x", "num_images": 11}, headers=h)
    assert r.json()["error"]["message"] == (
        "Invalid num_images: Input should be less than or equal to 10."
    )


async def test_a_401_says_how_to_get_a_token(api: Api) -> None:
    r = await api.client.post(GEN, json={"prompt": "x"})
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    assert "Sign in at /login" in message and "/settings" in message
    r = await api.client.post(GEN, json={"prompt": "x"}, headers={"Authorization": "Bearer null"})
    assert "this browser is not signed in" in r.json()["error"]["message"]


async def test_a_variant_goes_to_openrouter_whatever_the_saved_default_provider(
    api: Api, emulator: EmulatorServer
) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await api.put_key(h, "google", GOOGLE_CANARY)
    r = await api.client.put("/api/settings/defaults", json={"provider": "google"}, headers=h)
    assert r.status_code == 200, r.text
    # OpenRouter's public listing read (the background does it too): the GA id it lists is sent.
    await listings.refresh(api.services)
    marker = tag()
    r = await api.client.post(
        GEN, json={"prompt": f"a fox {marker}", "model": "gemini-3.1-flash-image:nitro"}, headers=h
    )
    assert r.status_code == 200, r.text
    sent = upstream_requests(emulator, marker)
    assert [q["body"]["model"] for q in sent] == ["google/gemini-3.1-flash-image:nitro"]


async def test_the_thinking_level_is_sent_and_kept(api: Api, emulator: EmulatorServer) -> None:
    h = await api.user("alice")
    await api.put_key(h, "google", GOOGLE_CANARY)
    marker = tag()
    body = {"prompt": f"a fox {marker}", "model": "nano-banana-2-lite", "thinking": "high"}
    r = await api.client.post(GEN, json=body, headers=h)
    assert r.status_code == 200, r.text
    [seen] = upstream_requests(emulator, marker)
    assert seen["body"]["generationConfig"]["thinkingConfig"] == {"thinking_level": "HIGH"}
    data = base64.b64decode(r.json()["images"][0])
    assert read_metadata(data)["thinking"] == "high"
    job = (await api.client.get(f"/api/generations/{r.json()['id']}", headers=h)).json()
    assert job["request"]["thinking"] == "high"
    models = (await api.client.get("/api/nano-banana/models", headers=h)).json()["models"]
    levels = {m["id"]: m["thinking_levels"] for m in models if m["provider"] == "google"}
    assert levels["gemini-3.1-flash-lite-image"] == ["minimal", "high"]
    assert levels[DEFAULT_MODEL] is None  # not known: passed on


def test_the_service_offers_the_catalogs_thinking_levels() -> None:
    from typing import get_args

    from nanobanana.catalog import THINKING_LEVELS
    from nanobanana.server.schemas import ThinkingLevel

    assert get_args(ThinkingLevel) == THINKING_LEVELS


async def test_google_search_is_sent_kept_and_refused_where_it_cannot_be(
    api: Api, emulator: EmulatorServer
) -> None:
    h = await api.user("alice")
    await api.put_key(h, "google", GOOGLE_CANARY)
    marker = tag()
    body = {"prompt": f"a fox {marker}", "provider": "google", "google_search": True}
    r = await api.client.post(GEN, json=body, headers=h)
    assert r.status_code == 200, r.text
    [seen] = upstream_requests(emulator, marker)
    assert seen["body"]["tools"] == [{"googleSearch": {}}]
    # What the search looked up comes back in the answer and stays with the job.
    grounding = r.json()["grounding"]
    assert grounding["queries"] == [f"a fox {marker}"] and len(grounding["sources"]) == 2
    assert grounding["search_entry_point"].startswith("<style>")
    job = (await api.client.get(f"/api/generations/{r.json()['id']}", headers=h)).json()
    assert job["request"]["google_search"] is True
    assert job["grounding"] == grounding
    plain = await api.client.post(GEN, json={"prompt": "a fox", "provider": "google"}, headers=h)
    assert plain.json()["grounding"] is None
    lite = {**body, "model": "nano-banana-2-lite"}
    r = await api.client.post(GEN, json=lite, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "google_search"
    models = (await api.client.get("/api/nano-banana/models", headers=h)).json()["models"]
    search = {m["id"]: m["google_search"] for m in models if m["provider"] == "openrouter"}
    assert search["black-forest-labs/flux.2-pro"] is False and search[DEFAULT_MODEL] is None


def test_requests_from_before_the_new_fields_hash_as_they_did() -> None:
    """An idempotent retry that spans an upgrade is the same request: fields added later
    leave the hash alone at their defaults."""
    from nanobanana.server.generation import request_hash
    from nanobanana.server.schemas import GenerateIn

    body = GenerateIn(prompt="a fox")
    assert request_hash(body, "seed") == request_hash(
        GenerateIn(prompt="a fox", google_search=False), "seed"
    )
    assert request_hash(body, "seed") != request_hash(
        GenerateIn(prompt="a fox", google_search=True), "seed"
    )
    assert request_hash(body, "seed") == request_hash(
        GenerateIn(prompt="a fox", image_options={}), "seed"
    )
    assert request_hash(body, "seed") != request_hash(
        GenerateIn(prompt="a fox", image_options={"style": "x"}), "seed"
    )
    assert request_hash(body, "seed") != request_hash(
        GenerateIn(prompt="a fox", thinking="high"), "seed"
    )


async def test_image_options_are_sent_kept_and_refused_where_they_cannot_go(
    api: Api, emulator: EmulatorServer
) -> None:
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await api.put_key(h, "google", GOOGLE_CANARY)
    marker = tag()
    options = {"style": "Photorealism", "strength": 0.5}
    body = {"prompt": f"a fox {marker}", "provider": "openrouter", "image_options": options}
    r = await api.client.post(GEN, json=body, headers=h)
    assert r.status_code == 200, r.text
    [seen] = upstream_requests(emulator, marker)
    assert seen["body"]["image_config"] == options
    assert read_metadata(base64.b64decode(r.json()["images"][0]))["image_options"] == options
    job = (await api.client.get(f"/api/generations/{r.json()['id']}", headers=h)).json()
    assert job["request"]["image_options"] == options
    for bad, says in [
        ({**body, "provider": "google"}, "only openrouter passes on; google has none"),
        ({**body, "image_options": {"aspect_ratio": "16:9"}}, "set aspect_ratio"),
        ({**body, "image_options": {"on": True}}, "Image option on is bool"),
    ]:
        r = await api.client.post(GEN, json=bad, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "image_options"
        assert says in r.json()["error"]["message"]
    assert len(upstream_requests(emulator, marker)) == 1
