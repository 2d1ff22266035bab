"""OpenRouter's official Python SDK (``openrouter`` on PyPI, as published) against the service.

The SDK validates every answer against OpenRouter's OpenAPI description, so each field it
requires must be there, and every error under ``/api/v1`` must have OpenRouter's shape (an
integer ``code``) or the SDK reports a validation error instead of the service's message.
"""

from __future__ import annotations

import base64
import http.client
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors
from openrouter.utils import BackoffStrategy, RetryConfig

from nanobanana.emulator import EmulatorServer

from ..support import image_size, png_bytes
from .conftest import Live, tag, upstream_prompts

pytestmark = pytest.mark.timeout(60)
MODEL = "google/gemini-2.5-flash-image"


def sdk(live: Live, token: str | None = None) -> OpenRouter:
    return OpenRouter(api_key=token or live.token, server_url=f"{live.url}/api/v1")


@pytest.fixture
def client(live: Live) -> Iterator[OpenRouter]:
    with sdk(live) as c:
        yield c


# ---------------------------------------------------------------------------------- errors
def test_an_endpoint_the_service_lacks_is_a_404_the_sdk_understands(client: OpenRouter) -> None:
    with pytest.raises(errors.NotFoundResponseError) as caught:
        client.generations.get_generation(id="gen-0")
    err = caught.value
    assert err.status_code == 404
    assert err.data.error.code == 404
    assert err.data.error.message == "This service has no endpoint /api/v1/generation."


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/no/such/thing", 404),
        ("DELETE", "/api/v1/models", 405),
        ("GET", "/api/v1/chat/completions", 405),
    ],
)
def test_unrouted_errors_under_api_v1_have_openrouter_shape(
    live: Live, method: str, path: str, status: int
) -> None:
    with live.http(live.token) as c:
        r = c.request(method, path)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == status and isinstance(error["code"], int)
    assert error["message"] and isinstance(error["metadata"], dict)
    if status == 405:
        assert r.headers["Allow"] and r.headers["Allow"] in error["message"]


def test_refusals_before_any_route_have_openrouter_shape(live: Live) -> None:
    """The body limit refuses a declared size before FastAPI sees the request; a body that is
    not JSON never reaches the route's parser."""
    limit = live.services.settings.max_request_bytes
    url = httpx.URL(live.url)
    conn = http.client.HTTPConnection(url.host, url.port, timeout=30)
    conn.putrequest("POST", "/api/v1/images")
    for name, value in (
        ("Authorization", f"Bearer {live.token}"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(limit + 1)),  # declared, never sent: refused on the header
    ):
        conn.putheader(name, value)
    conn.endheaders()
    answer = conn.getresponse()
    big = httpx.Response(answer.status, content=answer.read())
    conn.close()
    with live.http(live.token) as c:
        garbled = c.post(
            "/api/v1/chat/completions",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert big.status_code == 413
    assert big.json()["error"]["code"] == 413
    assert big.json()["error"]["metadata"]["limit_bytes"] == limit
    assert garbled.status_code == 400
    error = garbled.json()["error"]
    assert error["code"] == 400 and error["message"].startswith(
        "The request body is not valid JSON"
    )


def test_unrouted_errors_under_v1_have_openai_shape(live: Live) -> None:
    with live.http(live.token) as c:
        r = c.get("/v1/no/such/thing")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "This service has no endpoint /v1/no/such/thing.",
            "type": "invalid_request_error",
            "param": None,
            "code": "not_found",
        }
    }


def test_the_service_own_routes_keep_their_shape(live: Live) -> None:
    with live.http(live.token) as c:
        r = c.get("/api/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_a_bad_token_is_an_unauthorized_error_for_the_sdk(live: Live) -> None:
    with (
        sdk(live, token="nb_not-a-real-token") as c,
        pytest.raises(errors.UnauthorizedResponseError) as caught,
    ):
        c.chat.send(
            model="google/gemini-2.5-flash-image", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.data.error.code == 401
    assert "bearer token" in caught.value.data.error.message


def test_errors_carry_no_secret(live: Live) -> None:
    canary = "nb_CANARY-sdk-0123456789abcdef"
    with httpx.Client(base_url=live.url, timeout=30) as c:
        r = c.get("/api/v1/missing", headers={"Authorization": f"Bearer {canary}"})
    assert r.status_code == 404 and canary not in r.text


# ---------------------------------------------------------------------------------- models
def test_models_list_validates_and_pages(client: OpenRouter) -> None:
    every = client.models.list(output_modalities="image")
    assert every is not None
    listing = every.result
    ids = [m.id for m in listing.data]
    assert "google/gemini-2.5-flash-image" in ids
    assert listing.total_count == len(ids) and listing.links.next is None
    flash = next(m for m in listing.data if m.id == "google/gemini-2.5-flash-image")
    assert flash.architecture.output_modalities == ["image", "text"]
    assert flash.pricing.prompt == "0.0000003"
    assert flash.links.details.startswith("https://openrouter.ai/api/v1/models/google/")
    # The SDK pages by offset and limit: it fetches the next page while the last was full.
    first = client.models.list(output_modalities="image", limit=2)
    assert first is not None
    seen = []
    page = first
    while page is not None:
        seen += [m.id for m in page.result.data]
        page = page.next()
    assert seen == ids
    assert first.result.links.next is not None and "offset=2" in first.result.links.next


def test_models_list_refuses_a_bad_filter_with_a_400(client: OpenRouter) -> None:
    with pytest.raises(errors.BadRequestResponseError) as caught:
        client.models.list(input_modalities="smell")
    assert caught.value.data.error.code == 400
    assert "input modality 'smell'" in caught.value.data.error.message


# ------------------------------------------------------------------------------- Image API
def test_images_generate_returns_the_images_and_a_job(
    client: OpenRouter, live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    r = client.images.generate(
        model=MODEL, prompt=f"a red fox {marker}", aspect_ratio="16:9", resolution="1K", n=2
    )
    assert len(r.data) == 2
    for item in r.data:
        raw = base64.b64decode(item.b64_json, validate=True)
        assert item.media_type == "image/png" and image_size(raw) == (1344, 768)
    assert r.usage is not None and r.usage.cost and r.usage.completion_tokens > 0
    assert len(upstream_prompts(emulator, marker)) == 2  # one call per image, no more
    with live.http(live.token) as c:
        items = c.get("/api/generations").json()["items"]
    job = next(i for i in items if marker in i["prompt"])
    assert job["status"] == "succeeded" and job["request"]["n"] == 2
    assert len(job["images"]) == 2 and job["kind"] == "openrouter"


def test_images_generate_takes_references_size_and_routes(
    client: OpenRouter, emulator: EmulatorServer
) -> None:
    marker = tag()
    reference = "data:image/png;base64," + base64.b64encode(png_bytes(64, 48)).decode()
    r = client.images.generate(
        model="gemini-3.1-flash-image",
        prompt=f"the same fox, in winter {marker}",
        size="2048x2048",
        input_references=[{"type": "image_url", "image_url": {"url": reference}}],
        provider={"only": ["google"]},
        stream=True,  # answered whole, as OpenRouter answers it for Gemini
    )
    [item] = r.data
    assert image_size(base64.b64decode(item.b64_json)) == (2048, 2048)
    [seen] = upstream_prompts(emulator, marker)
    assert seen["service"] == "gemini"  # provider.only named a route of the service
    parts = seen["body"]["contents"][-1]["parts"]
    assert any("inlineData" in p or "inline_data" in p for p in parts)


@pytest.mark.parametrize(
    ("args", "param", "words"),
    [
        ({"aspect_ratio": "2.35:1"}, "aspect_ratio", "can make; use 1:1"),
        ({"resolution": "4K"}, "resolution", "can make; use"),
        ({"size": "huge"}, "size", "can make; use 1K"),
        ({"size": "1344x768", "aspect_ratio": "1:1"}, "size", "Send size alone"),
        ({"n": 11}, "n", "less than or equal to 10"),
        (
            {"input_references": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            "input_references",
            "not a data URL",
        ),
    ],
)
def test_images_generate_refuses_what_the_model_cannot_make(
    client: OpenRouter, args: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(errors.BadRequestResponseError) as caught:
        client.images.generate(model=MODEL, prompt="a red fox", **args)
    error = caught.value.data.error
    assert error.code == 400 and words in error.message
    assert error.metadata and error.metadata["param"] == param


def test_images_generate_without_a_key_says_where_to_add_one(live: Live) -> None:
    token = live.new_user(keys={})
    with sdk(live, token) as c, pytest.raises(errors.BadRequestResponseError) as caught:
        c.images.generate(model=MODEL, prompt="a red fox")
    error = caught.value.data.error
    assert error.metadata and error.metadata["error_type"] == "missing_api_key"
    assert "/settings" in error.message


def test_images_list_models_and_endpoints(client: OpenRouter) -> None:
    listing = client.images.list_models()
    by_id = {m.id: m for m in listing.data}
    flash = by_id[MODEL]
    assert flash.supports_streaming is False
    ratios = flash.supported_parameters["aspect_ratio"]
    assert ratios.type == "enum" and "16:9" in ratios.values
    assert flash.supported_parameters["n"].max == 10
    assert "black-forest-labs/flux.2-pro" in by_id
    author, slug = MODEL.split("/")
    assert flash.endpoints == f"/api/v1/images/models/{MODEL}/endpoints"
    found = client.images.list_model_endpoints(author=author, slug=slug)
    assert found.id == MODEL
    assert {e.provider_slug for e in found.endpoints} == {"openrouter", "google"}
    assert all(e.pricing and e.pricing[0].billable == "output_image" for e in found.endpoints)
    with pytest.raises(errors.NotFoundResponseError):
        client.images.list_model_endpoints(author="nobody", slug="nothing")


# ---------------------------------------------------------------------------- blind retries
def fast_retries() -> RetryConfig:
    """The SDK's own policy (every 5xx, backoff), squeezed from an hour into 2 seconds."""
    return RetryConfig("backoff", BackoffStrategy(20, 100, 1.5, 2000), True)


def jobs_with(live: Live, marker: str) -> list[dict[str, Any]]:
    with live.http(live.token) as c:
        items = c.get("/api/generations", params={"limit": 100}).json()["items"]
    return [i for i in items if marker in i["prompt"]]


def test_a_blindly_retried_ambiguous_failure_pays_once(
    live: Live, emulator: EmulatorServer
) -> None:
    """The SDK resends a 502 for as long as its policy allows, ignoring x-should-retry: the
    call reaches the upstream once, and every retry gets the first failure, marked."""
    marker = tag()
    prompt = f"a red fox {marker} [emulator@openrouter:reset]"
    sent: list[int] = []
    hooks = {"response": [lambda r: sent.append(r.status_code)]}
    http = httpx.Client(event_hooks=hooks, timeout=30)
    with (
        OpenRouter(
            api_key=live.token,
            server_url=f"{live.url}/api/v1",
            retry_config=fast_retries(),
            client=http,
        ) as c,
        pytest.raises(errors.BadGatewayResponseError) as caught,
    ):
        c.images.generate(model=MODEL, prompt=prompt, provider={"only": ["openrouter"]})
    assert len(sent) >= 3 and set(sent) == {502}  # the SDK did retry, several times
    assert len(upstream_prompts(emulator, marker)) == 1
    [job] = jobs_with(live, marker)
    assert job["status"] == "failed", job["error"]
    assert job["error"]["may_be_billed"] is True
    error = caught.value.data.error
    assert error.metadata and error.metadata["replayed"] is True
    assert f"gen-{job['id']}" in error.message and "Idempotency-Key" in error.message
    assert caught.value.raw_response.headers["Idempotent-Replayed"] == "true"
    assert caught.value.raw_response.headers["x-should-retry"] == "false"


def test_a_new_idempotency_key_or_a_changed_body_pays_again(
    client: OpenRouter, emulator: EmulatorServer
) -> None:
    marker = tag()
    prompt = f"a red fox {marker} [emulator@openrouter:reset]"
    for headers in ({}, {}, {"Idempotency-Key": f"again-{marker}"}):
        with pytest.raises(errors.BadGatewayResponseError):
            client.images.generate(
                model=MODEL,
                prompt=prompt,
                provider={"only": ["openrouter"]},
                retries=RetryConfig("none", BackoffStrategy(1, 1, 1, 1), False),
                http_headers=headers,
            )
    assert len(upstream_prompts(emulator, marker)) == 2  # the first, and the keyed one
    with pytest.raises(errors.BadGatewayResponseError):
        client.images.generate(model=MODEL, prompt=prompt + " again", retries=None)
    assert len(upstream_prompts(emulator, marker)) == 3


def test_successes_and_unbilled_failures_run_anew(
    client: OpenRouter, live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    for _ in range(2):  # the same prompt twice is two images, as a user asking again expects
        client.images.generate(model=MODEL, prompt=f"a red fox {marker}")
    assert len(upstream_prompts(emulator, marker)) == 2
    refused = tag()
    for _ in range(2):  # a 402 costs nothing: a retry may try again
        with pytest.raises(errors.OpenRouterError) as caught:
            client.images.generate(
                model=MODEL,
                prompt=f"a red fox {refused} [emulator:payment]",
                provider={"only": ["openrouter"]},
            )
        assert caught.value.status_code == 402
    assert len(upstream_prompts(emulator, refused)) == 2


def test_the_replay_window_ends(client: OpenRouter, live: Live, emulator: EmulatorServer) -> None:
    marker = tag()
    prompt = f"a red fox {marker} [emulator@openrouter:reset]"
    no_retries = RetryConfig("none", BackoffStrategy(1, 1, 1, 1), False)
    with pytest.raises(errors.BadGatewayResponseError):
        client.images.generate(model=MODEL, prompt=prompt, retries=no_retries)
    services = live.services
    window = timedelta(seconds=services.settings.retry_replay_seconds + 1)
    real_now = services.now
    services.now = lambda: real_now() + window
    try:
        with pytest.raises(errors.BadGatewayResponseError) as caught:
            client.images.generate(model=MODEL, prompt=prompt, retries=no_retries)
    finally:
        services.now = real_now
    assert "replayed" not in (caught.value.data.error.metadata or {})
    assert len(upstream_prompts(emulator, marker)) == 2


# -------------------------------------------------------------------------------- model ids
@pytest.mark.parametrize("variant", ["nitro", "floor", "online"])
def test_variant_suffixes_pass_through_to_openrouter(
    client: OpenRouter, emulator: EmulatorServer, variant: str
) -> None:
    marker = tag()
    r = client.images.generate(model=f"{MODEL}:{variant}", prompt=f"a red fox {marker}")
    assert len(r.data) == 1
    [seen] = upstream_prompts(emulator, marker)
    assert seen["service"] == "openrouter" and seen["body"]["model"] == f"{MODEL}:{variant}"


def test_unknown_models_are_named_with_openrouter_ids(client: OpenRouter) -> None:
    with pytest.raises(errors.BadRequestResponseError) as caught:
        client.chat.send(model="google/no-such-model", messages=[{"role": "user", "content": "x"}])
    error = caught.value.data.error
    assert error.metadata and MODEL in error.metadata["allowed"]
    assert "gemini-2.5-flash-image" not in error.metadata["allowed"]  # the catalog's own id
    assert f"Known models: {MODEL}, " in error.message
    assert ": gemini-" not in error.message and ", gemini-" not in error.message  # catalog ids
    assert "nanobanana models" not in error.message  # the CLI's hint is not for HTTP clients
    assert "GET /api/v1/models" in error.message
    with pytest.raises(errors.BadRequestResponseError) as caught:
        client.images.generate(model="google/gemini-2.5-flash-imag", prompt="x")
    assert f"Did you mean '{MODEL}'" in caught.value.data.error.message
