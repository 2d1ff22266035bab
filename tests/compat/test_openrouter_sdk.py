"""OpenRouter's official Python SDK (``openrouter`` on PyPI, as published) against the service.

The SDK validates every answer against OpenRouter's OpenAPI description, so each field it
requires must be there, and every error under ``/api/v1`` must have OpenRouter's shape (an
integer ``code``) or the SDK reports a validation error instead of the service's message.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openrouter import OpenRouter, errors

from .conftest import Live

pytestmark = pytest.mark.timeout(60)


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
