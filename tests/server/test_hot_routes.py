"""The two hot routes served beside FastAPI (``server/hotroutes.py``): the same answers as the
FastAPI routes give, and FastAPI's answer whenever the hot path could not give it as well.

Each comparison sends the same request twice: as clients send it (``application/json``: the
hot path) and with a ``+json`` content type, which FastAPI reads as JSON but the hot path hands
on (FastAPI's route).  A spy on the hot path's ``authenticate`` says which one answered."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from nanobanana.server import deps, hotroutes
from nanobanana.server.compat.openrouter_request import ChatRequest
from nanobanana.server.db.models import User
from nanobanana.server.deps import Auth
from nanobanana.server.middleware import API_CSP
from nanobanana.server.schemas import GenerateIn

from .conftest import OPENROUTER_CANARY, Api, running

SEED = "/api/nano-banana/generate"
CHAT = "/api/v1/chat/completions"
FASTAPI_JSON = "application/vnd.nanobanana+json"
#: Headers both paths must give alike (the rest, such as Content-Length, may differ).
COMPARED_HEADERS = (
    "content-type",
    "www-authenticate",
    "retry-after",
    "idempotent-replayed",
    "x-content-type-options",
    "content-security-policy",
    "x-frame-options",
)


@pytest.fixture
def hot_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The tokens the hot path authenticated, in order."""
    calls: list[str] = []
    real = hotroutes.authenticate

    async def spy(services: Any, raw: str | None, session: Any = None) -> Auth:
        calls.append(str(raw))
        return await real(services, raw, session)

    monkeypatch.setattr(hotroutes, "authenticate", spy)
    yield calls


async def post(
    api: Api, path: str, body: Any, headers: dict[str, str], content_type: str
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await api.client.post(
        path, content=raw, headers={**headers, "Content-Type": content_type}
    )


def shape(r: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """What must be equal on both paths: status, body (less ids and times), headers."""
    body: Any = r.json() if r.headers.get("content-type", "").endswith("json") else r.text
    if isinstance(body, dict) and r.status_code == 200:
        body = sorted(body)  # a new job: new ids, times and images; the same fields
    headers = {k: r.headers[k] for k in COMPARED_HEADERS if k in r.headers}
    return r.status_code, body, headers


async def both(
    api: Api, hot_calls: list[str], path: str, body: Any, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """The request on the hot path, then on FastAPI's; checks which path answered each."""
    hot = await post(api, path, body, headers, "application/json")
    assert len(hot_calls) == 1, "the hot path did not answer"
    slow = await post(api, path, body, headers, FASTAPI_JSON)
    assert len(hot_calls) == 1, "the hot path answered a +json request"
    hot_calls.clear()
    return hot, slow


async def test_a_generation_answers_alike_on_both_paths(api: Api, hot_calls: list[str]) -> None:
    h = await api.user("hot")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    hot, slow = await both(api, hot_calls, SEED, {"prompt": "a hot banana"}, h)
    assert hot.status_code == 200, hot.text
    assert shape(hot) == shape(slow)
    assert len(hot.json()["images"]) == 1 and hot.json()["prompt"] == "a hot banana"
    # The token read as FastAPI reads it, spaces around it and all.
    spaced = {"Authorization": h["Authorization"].replace(" ", "   ", 1) + "  "}
    hot, slow = await both(api, hot_calls, SEED, {"prompt": "spaced"}, spaced)
    assert hot.status_code == 200, hot.text
    assert shape(hot) == shape(slow)
    # Kept in the history like any other generation.
    listed = (await api.client.get("/api/generations", headers=h)).json()
    assert hot.json()["id"] in {g["id"] for g in listed["items"]}

    body = {
        "model": "google/gemini-2.5-flash-image",
        "messages": [{"role": "user", "content": "a hot banana"}],
        "modalities": ["image", "text"],
    }
    hot, slow = await both(api, hot_calls, CHAT, body, h)
    assert hot.status_code == 200, hot.text
    assert shape(hot) == shape(slow)
    assert hot.json()["choices"][0]["message"]["images"][0]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    assert hot.headers["x-generation-id"] == f"gen-{hot.headers['x-job-id']}"


@pytest.mark.parametrize("path", [SEED, CHAT, "/v1/chat/completions"])
async def test_errors_answer_alike_on_both_paths(api: Api, hot_calls: list[str], path: str) -> None:
    h = await api.user("nokey")  # no provider key stored
    body: dict[str, Any] = (
        {"prompt": "a banana"}
        if path == SEED
        else {"messages": [{"role": "user", "content": "a banana"}]}
    )
    cases: list[tuple[dict[str, Any], dict[str, str], int]] = [
        (body, h, 400),  # no key for the provider
        (body, {"Authorization": "Bearer not-a-token"}, 401),
        (body, {"Authorization": "Bearer null"}, 401),
        (body, {**h, "Idempotency-Key": "x" * 256}, 400),
        ({**body, "model": "no-such-model"}, h, 400 if path != SEED else 422),
    ]
    for request, headers, status in cases:
        hot, slow = await both(api, hot_calls, path, request, headers)
        assert hot.status_code == status, (request, headers, hot.text)
        assert shape(hot) == shape(slow), (request, headers)
    # The dialect of each path: OpenRouter's integer code, the service's string code.
    hot, _ = await both(api, hot_calls, path, body, {"Authorization": "Bearer not-a-token"})
    assert hot.headers["www-authenticate"] == "Bearer"
    assert hot.json()["error"]["code"] == ("unauthorized" if path == SEED else 401)


async def test_what_the_hot_path_cannot_answer_goes_to_fastapi(
    api: Api, hot_calls: list[str]
) -> None:
    h = await api.user("fallthrough")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    c = api.client
    # A body that does not validate: FastAPI's 422, which names the field.
    r = await post(api, SEED, {"prompt": "x", "num_images": 99}, h, "application/json")
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["loc"] == ["body", "num_images"]
    r = await post(api, SEED, b'{"prompt": ', h, "application/json")
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
    # A query string: refused as on every service route.
    r = await post(api, SEED + "?limt=5", {"prompt": "x"}, h, "application/json")
    assert r.status_code == 422 and "limt" in r.json()["error"]["message"]
    # No bearer header, another method, another content type.
    r = await post(api, SEED, {"prompt": "x"}, {}, "application/json")
    assert r.status_code == 401 and "Sign in" in r.json()["error"]["message"]
    r = await c.get(SEED, headers=h)
    assert r.status_code == 405
    r = await post(api, SEED, b"prompt=x", h, "application/x-www-form-urlencoded")
    assert r.status_code == 422
    assert hot_calls == []
    # The hot path still answers a good request after all that.
    r = await post(api, SEED, {"prompt": "x"}, h, "application/json; charset=utf-8")
    assert r.status_code == 200 and len(hot_calls) == 1


async def test_replays_and_streams_on_the_hot_path(api: Api, hot_calls: list[str]) -> None:
    h = await api.user("replay")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    keyed = {**h, "Idempotency-Key": "hot-1"}
    first = await post(api, SEED, {"prompt": "once"}, keyed, "application/json")
    again = await post(api, SEED, {"prompt": "once"}, keyed, "application/json")
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    body = {"messages": [{"role": "user", "content": "streamed"}], "stream": True}
    r = await post(api, CHAT, body, h, "application/json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert '"images"' in r.text and r.text.rstrip().endswith("data: [DONE]")
    assert len(hot_calls) == 3


@pytest.mark.parametrize("path", [SEED, CHAT])
async def test_a_waiting_generation_holds_neither_its_body_nor_its_user(
    api: Api, hot_calls: list[str], path: str
) -> None:
    h = await api.user("lean")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    prompt = f"a slow banana {path} [emulator:latency:1.5]"
    body: dict[str, Any] = (
        {"prompt": prompt} if path == SEED else {"messages": [{"role": "user", "content": prompt}]}
    )
    request = asyncio.create_task(post(api, path, body, h, "application/json"))
    while not api.services.job_manager._calls:  # the upstream call has begun
        await asyncio.sleep(0.02)
    gc.collect()
    # type(), not isinstance(): the heap holds objects (torch's, in the whole suite) whose
    # __class__ warns when it is read.
    objects = gc.get_objects()
    bodies = [o for o in objects if type(o) in (GenerateIn, ChatRequest) and prompt in repr(o)]
    users = [o for o in objects if type(o) is User and o.__dict__.get("username") == "lean"]
    assert bodies == [] and users == []
    r = await request
    assert r.status_code == 200 and len(hot_calls) == 1


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("path", [SEED, CHAT])
async def test_a_streamed_body_over_the_limit_is_refused_in_the_path_s_dialect(
    settings_for: Any, path: str
) -> None:
    async with running(settings_for(max_request_bytes=50_000)) as api:
        h = await api.user("big")
        big = orjson.dumps({"prompt": "x" * 60_000})
        # No Content-Length: the limit is found while the body is read.
        r = await api.client.post(
            path,
            content=_chunks(big, 16_384),
            headers={**h, "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        error = r.json()["error"]
        assert error["code"] == (413 if path == CHAT else "payload_too_large")
        assert "50,000" in error["message"]


async def test_the_hot_path_keeps_the_security_headers_and_the_declared_limit(
    settings_for: Any, hot_calls: list[str]
) -> None:
    async with running(settings_for(max_request_bytes=50_000)) as api:
        h = await api.user("headers")
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        r = await post(api, SEED, {"prompt": "x"}, h, "application/json")
        assert r.status_code == 200 and hot_calls
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-security-policy"] == API_CSP
        # A declared Content-Length over the limit: refused before a byte is read.
        hot_calls.clear()
        r = await post(api, CHAT, {"prompt": "x" * 60_000}, h, "application/json")
        assert r.status_code == 413 and r.json()["error"]["code"] == 413
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_cross_origin_calls_get_cors_headers(settings_for: Any, hot_calls: list[str]) -> None:
    origin = "https://images.example"
    async with running(settings_for(cors_origins=[origin])) as api:
        h = await api.user("cors")
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        r = await post(api, SEED, {"prompt": "x"}, {**h, "Origin": origin}, "application/json")
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
        assert "x-job-id" not in r.headers  # the seed route's headers, through CORS
        r = await post(api, SEED, {"prompt": "x"}, h, "application/json")
        assert r.status_code == 200 and len(hot_calls) == 1


@pytest.mark.parametrize("path", [SEED, CHAT])
async def test_an_unexpected_error_is_a_500_in_the_path_s_dialect(
    api: Api, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    h = await api.user("broken")

    async def broken(*args: Any) -> Auth:
        raise RuntimeError("a bug")

    monkeypatch.setattr(hotroutes, "authenticate", broken)
    monkeypatch.setattr(deps, "authenticate", broken)
    body = {"prompt": "x"} if path == SEED else {"messages": [{"role": "user", "content": "x"}]}
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answers = []
        for content_type in ("application/json", FASTAPI_JSON):
            r = await client.post(
                path, content=orjson.dumps(body), headers={**h, "Content-Type": content_type}
            )
            answers.append(shape(r))
    hot, slow = answers
    assert hot[:2] == slow[:2]  # FastAPI's 500 comes from outside its security headers
    assert hot[0] == 500 and hot[2]["content-security-policy"] == API_CSP
    assert hot[1]["error"]["code"] == (500 if path == CHAT else "internal_error")
    assert "a bug" not in str(hot[1])


async def test_a_client_gone_before_its_body_arrived_gets_nothing() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise AssertionError("handed on")

    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": SEED,
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer t"), (b"content-type", b"application/json")],
    }
    await hotroutes.HotRoutes(app, None, max_bytes=1000, cors=False)(scope, receive, send)
    assert sent == []


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        (SEED, {"prompt": "{p}"}, FASTAPI_JSON),
        (CHAT, {"messages": [{"role": "user", "content": "{p}"}]}, FASTAPI_JSON),
        ("/api/v1/images", {"prompt": "{p}", "model": "google/gemini-2.5-flash-image"}, None),
        ("/v1/images/generations", {"prompt": "{p}"}, None),
    ],
)
async def test_no_route_holds_a_database_session_while_its_generation_waits(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    body: dict[str, Any],
    content_type: str | None,
) -> None:
    """FastAPI's routes too: the authentication and the intake each close their session before
    the wait (one per waiting request would be thousands held for a slow upstream)."""
    h = await api.user("waiter")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    prompt = f"a slow banana {path} [emulator:latency:1.5]"
    raw = orjson.dumps(body).replace(b"{p}", prompt.encode())
    # The sessions this service opens from now on (not those of other tests' services).
    made: list[weakref.ref[AsyncSession]] = []
    real = api.services.sessionmaker

    def recording(*args: Any, **kwargs: Any) -> AsyncSession:
        session = real(*args, **kwargs)
        made.append(weakref.ref(session))
        return session

    monkeypatch.setattr(api.services, "sessionmaker", recording)
    request = asyncio.create_task(post(api, path, raw, h, content_type or "application/json"))
    while not api.services.job_manager._calls:  # the upstream call has begun
        await asyncio.sleep(0.02)
    gc.collect()
    assert made, "no session was opened: the test no longer sees the request's"
    assert [ref() for ref in made if ref() is not None] == []
    r = await request
    assert r.status_code == 200, r.text
