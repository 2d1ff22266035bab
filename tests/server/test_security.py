"""Authorization and hardening: BOLA matrix (B1), admin routes (B1b), secrets sweep (K2, K3),
security headers, CORS and the route inventory (H1), the error shape."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nanobanana.emulator import EmulatorServer
from nanobanana.server.app import create_app
from nanobanana.server.db.models import Job
from nanobanana.server.problems import dialect_of
from nanobanana.server.settings import Settings

from ..support import png_bytes
from .conftest import CANARIES, GOOGLE_CANARY, OPENROUTER_CANARY, Api, running, upstream_requests

pytestmark = pytest.mark.timeout(90)
GEN = "/api/nano-banana/generate"


async def _owner_objects(api: Api, h: dict[str, str]) -> dict[str, str]:
    c = api.client
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    gen = (await c.post(GEN, json={"prompt": "alice's secret garden"}, headers=h)).json()
    upload = (
        await c.post("/api/uploads", files={"file": ("a.png", png_bytes(), "image/png")}, headers=h)
    ).json()
    token = (await c.post("/api/auth/tokens", json={"name": "alice-script"}, headers=h)).json()
    return {
        "job": gen["id"],
        "image": gen["image_urls"][0].rsplit("/", 1)[1],
        "upload": upload["id"],
        "token": token["id"],
    }


async def test_bola_matrix(db_api: Api) -> None:
    c = db_api.client
    admin = await db_api.user("root")
    alice = await db_api.user("alice")
    bob = await db_api.user("bob")
    ids = await _owner_objects(db_api, alice)
    missing = "0" * 32

    def routes(x: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            ("GET", f"/api/generations/{x['job']}", {}),
            ("DELETE", f"/api/generations/{x['job']}", {}),
            ("GET", f"/api/generations/{x['job']}/events", {}),
            ("GET", f"/api/images/{x['image']}", {}),
            ("GET", f"/api/images/{x['image']}?thumb=1", {}),
            ("PATCH", f"/api/images/{x['image']}", {"json": {"favourite": True}}),
            ("DELETE", f"/api/images/{x['image']}", {}),
            ("DELETE", f"/api/auth/tokens/{x['token']}", {}),
        ]

    nobody = dict.fromkeys(ids, missing)
    for (method, url, kw), (_, url_missing, _) in zip(routes(ids), routes(nobody), strict=True):
        theirs = await c.request(method, url, headers=bob, **kw)
        absent = await c.request(method, url_missing, headers=bob, **kw)
        assert theirs.status_code == 404, (method, url, theirs.text)
        assert theirs.json() == absent.json()  # indistinguishable from a missing id
        assert "secret garden" not in theirs.text
    # An upload of Alice's cannot be used as Bob's reference image.
    await db_api.put_key(bob, "openrouter", OPENROUTER_CANARY)
    r = await c.post(GEN, json={"prompt": "steal", "images": [ids["upload"]]}, headers=bob)
    assert r.status_code == 422 and r.json()["error"]["field"] == "images"

    # Lists hold only the caller's rows.
    assert (await c.get("/api/generations", headers=bob)).json()["items"] == []
    found = (await c.get("/api/generations?q=garden", headers=bob)).json()["items"]
    assert found == []
    tokens = (await c.get("/api/auth/tokens", headers=bob)).json()["tokens"]
    assert all(t["name"] != "alice-script" for t in tokens)

    # Alice's objects survived Bob's attempts.
    for method, url, kw in routes(ids):
        if method == "GET":
            assert (await c.request(method, url, headers=alice, **kw)).status_code == 200, url

    # Admin routes refuse user tokens (403), accept the admin's.
    alice_id = (await c.get("/api/auth/me", headers=alice)).json()["id"]
    admin_routes = [
        ("GET", "/api/admin/users", None),
        ("PATCH", f"/api/admin/users/{alice_id}", {"is_active": False}),
        ("GET", "/api/admin/settings", None),
        ("PUT", "/api/admin/settings", {"allow_server_keys": True}),
        ("GET", "/api/admin/budgets", None),
        ("GET", "/api/admin/usage", None),
        ("GET", "/api/admin/budget", None),
        ("PUT", "/api/admin/budget", {"daily_usd": 0}),
        ("GET", f"/api/admin/users/{alice_id}/budget", None),
        ("PUT", f"/api/admin/users/{alice_id}/budget", {"daily_usd": 0}),
    ]
    for method, url, body in admin_routes:
        r = await c.request(method, url, json=body, headers=bob)
        assert r.status_code == 403, (url, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    users = (await c.get("/api/admin/users", headers=admin)).json()["users"]
    assert {u["username"] for u in users} == {"root", "alice", "bob"}
    assert all("password" not in str(u) for u in users)
    assert (await c.patch(f"/api/admin/users/{missing}", json={}, headers=admin)).status_code == 404


async def test_security_headers_everywhere(api: Api) -> None:
    c = api.client
    h = await api.user("alice")
    answers = [
        await c.get("/healthz"),
        await c.get("/api/auth/me", headers=h),
        await c.get("/api/auth/me"),
        await c.get("/no/such/route"),
        await c.delete("/healthz"),
        await c.post(GEN, json={}, headers=h),
        await c.get("/openapi.json"),
        await c.get("/docs"),
    ]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        if r.headers["content-type"].startswith("application/json") and r.status_code >= 400:
            err = r.json()["error"]
            assert isinstance(err["code"], str) and isinstance(err["message"], str)
    assert answers[3].status_code == 404 and answers[3].json()["error"]["code"] == "not_found"
    assert answers[4].status_code == 405
    assert answers[4].json()["error"]["code"] == "method_not_allowed"
    assert answers[0].headers["content-security-policy"].startswith("default-src 'none'")
    assert answers[7].headers["content-type"].startswith("text/html")


async def test_a_405_allows_every_method_of_its_path(api: Api) -> None:
    """Allow names every method of the path, also when several routes serve it (GET in one,
    PUT in another): Starlette named only the first route's."""
    paths = api.app.openapi()["paths"]
    h = await api.user("alice")
    shared = 0
    for path, ops in paths.items():
        allowed = {m.upper() for m in ops}
        if path == "/api/images/{image_id}":
            allowed.add("HEAD")  # the GET's headers; not an operation of its own
        url = re.sub(r"\{[^}]+\}", lambda m: "openrouter" if "provider" in m[0] else "0" * 32, path)
        wrong = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in allowed)
        r = await api.client.request(wrong, url, headers=h)
        assert r.status_code == 405, (wrong, url)
        assert set(r.headers["allow"].split(", ")) == allowed, url
        error = r.json()["error"]
        if dialect_of(url) == "openrouter":  # OpenRouter's shape: the status as the code
            assert error["code"] == 405 and error["metadata"]["error_type"] == "method_not_allowed"
        else:
            assert error["code"] == "method_not_allowed"
        assert f"{wrong} is not allowed here" in r.json()["error"]["message"]
        shared += len(allowed - {"HEAD"}) > 1
    assert shared >= 6  # /api/settings/defaults, /api/generations/{job_id}... have several


async def test_no_redirect_follows_the_host_header(api: Api) -> None:
    """A Host the client chose never ends up in a Location (Starlette's slash redirects built
    one from it: a shared cache could keep a redirect to any host)."""
    h = await api.user("alice")
    evil = {**h, "Host": "attacker.example"}
    slashed = ("/api/generations/", "/settings/", "/login/", "/docs/", "/api/nano-banana/models/")
    for path in slashed:
        r = await api.client.get(path, headers=evil)
        assert "attacker" not in r.headers.get("location", ""), path
        assert r.status_code == 404, path
    r = await api.client.post("/api/generations", json={"prompt": "x"}, headers=evil)
    assert r.status_code in (202, 400) and "attacker" not in r.headers.get("location", "")


async def test_cors_off_by_default_and_configurable(
    api: Api, settings_for: Callable[..., Settings]
) -> None:
    pre = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    r = await api.client.options(GEN, headers=pre)
    assert "access-control-allow-origin" not in r.headers
    r = await api.client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers

    async with running(settings_for(cors_origins="https://app.example")) as other:
        ok = await other.client.options(GEN, headers={**pre, "Origin": "https://app.example"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-credentials" not in ok.headers
        bad = await other.client.options(GEN, headers=pre)
        assert "access-control-allow-origin" not in bad.headers


APPROVED_ROUTES = {
    ("GET", "/healthz"),
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/auth/me"),
    ("POST", "/api/auth/tokens"),
    ("GET", "/api/auth/tokens"),
    ("DELETE", "/api/auth/tokens/{token_id}"),
    ("GET", "/api/settings/keys"),
    ("PUT", "/api/settings/keys/{provider}"),
    ("DELETE", "/api/settings/keys/{provider}"),
    ("POST", "/api/settings/keys/{provider}/test"),
    ("GET", "/api/settings/defaults"),
    ("PUT", "/api/settings/defaults"),
    ("GET", "/api/settings/budget"),
    ("GET", "/api/settings/webhook"),
    ("PUT", "/api/settings/webhook"),
    ("POST", "/api/settings/webhook/rotate"),
    ("GET", "/api/generations/{job_id}/webhook"),
    ("GET", "/api/usage"),
    ("POST", "/api/uploads"),
    ("POST", "/api/nano-banana/generate"),
    ("GET", "/api/nano-banana/models"),
    ("POST", "/api/generations"),
    ("GET", "/api/generations"),
    ("GET", "/api/generations/{job_id}"),
    ("DELETE", "/api/generations/{job_id}"),
    ("POST", "/api/generations/{job_id}/cancel"),
    ("GET", "/api/generations/{job_id}/events"),
    ("GET", "/api/images/{image_id}"),
    ("PATCH", "/api/images/{image_id}"),
    ("DELETE", "/api/images/{image_id}"),
    ("GET", "/api/images"),
    ("GET", "/api/images/facets"),
    ("POST", "/api/images/favourite"),
    ("POST", "/api/images/delete"),
    ("POST", "/api/images/zip"),
    # Editing sessions: a user's own, every lookup by id and owner (tests/server/test_sessions).
    ("POST", "/api/sessions"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/{session_id}"),
    ("DELETE", "/api/sessions/{session_id}"),
    ("POST", "/api/sessions/{session_id}/turns"),
    ("GET", "/api/admin/users"),
    ("PATCH", "/api/admin/users/{user_id}"),
    ("GET", "/api/admin/settings"),
    ("PUT", "/api/admin/settings"),
    ("GET", "/api/admin/budgets"),
    ("GET", "/api/admin/usage"),
    ("GET", "/api/admin/budget"),
    ("PUT", "/api/admin/budget"),
    ("GET", "/api/admin/users/{user_id}/budget"),
    ("PUT", "/api/admin/users/{user_id}/budget"),
    # Personal tokens under their short path, and the OpenRouter/OpenAI-compatible endpoints.
    ("GET", "/api/tokens"),
    ("POST", "/api/tokens"),
    ("DELETE", "/api/tokens/{token_id}"),
    ("POST", "/api/v1/chat/completions"),
    ("GET", "/api/v1/models"),
    ("POST", "/api/v1/images"),
    ("GET", "/api/v1/images/models"),
    ("GET", "/api/v1/images/models/{author}/{slug}/endpoints"),
    ("POST", "/v1/images/generations"),
    ("POST", "/v1/images/edits"),
    ("GET", "/v1/models"),
}
PUBLIC = {("GET", "/healthz"), ("POST", "/api/auth/register"), ("POST", "/api/auth/login")}


def test_route_inventory(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, demo=False))
    schema = app.openapi()
    api_routes = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert api_routes == APPROVED_ROUTES
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            secured = bool(op.get("security"))
            assert secured == ((method.upper(), path) not in PUBLIC), (method, path)
            assert "4XX" in op["responses"], (method, path)
    gated = create_app(Settings(data_dir=tmp_path, demo=False, docs_enabled=False))
    paths = {getattr(r, "path", None) for r in gated.routes}
    assert not paths & {"/docs", "/docs-assets/{path:path}", "/openapi.json"}


async def test_no_secret_anywhere(
    settings_for: Callable[..., Settings],
    emulator: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Canary keys through success, upstream errors and refusals: never in a response, a log
    line, a job record, the database file or an image file."""
    caplog.set_level(logging.DEBUG)
    refused = "sk-or-v1-CANARYinvalid0123456789abcdef"
    canaries = (*CANARIES, refused)
    transcript: list[str] = []

    def keep(r: httpx.Response) -> httpx.Response:
        transcript.append(f"{r.status_code} {dict(r.headers)} {r.text}")
        return r

    settings = settings_for()
    async with running(settings) as api:
        c = api.client
        h = await api.user("alice")
        keep(
            await c.put(
                "/api/settings/keys/openrouter", json={"api_key": OPENROUTER_CANARY}, headers=h
            )
        )
        keep(await c.put("/api/settings/keys/google", json={"api_key": GOOGLE_CANARY}, headers=h))
        keep(await c.get("/api/settings/keys", headers=h))
        for prompt, provider in [
            ("ok", "openrouter"),
            ("ok", "google"),
            ("[emulator:server-error:500]", "openrouter"),
            ("[emulator:server-error:500]", "google"),
            ("[emulator:error-in-200]", "openrouter"),
            ("[emulator:safety]", "google"),
            ("[emulator:quota:90]", "google"),
            ("[emulator:payment]", "openrouter"),
        ]:
            keep(
                await c.post(
                    GEN, json={"prompt": f"canary {prompt}", "provider": provider}, headers=h
                )
            )
        keep(await c.post("/api/settings/keys/openrouter/test", headers=h))
        keep(await c.put("/api/settings/keys/openrouter", json={"api_key": refused}, headers=h))
        keep(await c.post("/api/settings/keys/openrouter/test", headers=h))
        keep(await c.post(GEN, json={"prompt": "canary refused"}, headers=h))
        keep(await c.get("/api/generations?limit=100", headers=h))
        async with api.services.sessionmaker() as s:
            jobs = list(await s.scalars(select(Job)))
        records = [str({k: v for k, v in vars(j).items() if not k.startswith("_")}) for j in jobs]
        assert len(jobs) == 9
    blobs = [
        p.read_bytes()
        for p in settings.data_dir.rglob("*")
        if p.is_file() and "master" not in p.name
    ]
    assert any(b.startswith(b"\x89PNG") for b in blobs)
    everything = "\n".join(transcript + records + [caplog.text])
    for canary in canaries:
        assert canary not in everything
        assert canary[10:30] not in everything
        assert all(canary.encode() not in b for b in blobs)
    # The Gemini key only ever travelled in its header.
    google_calls = [r for r in emulator.requests() if r.get("api_key") == GOOGLE_CANARY]
    assert google_calls
    assert {r["auth_header"] for r in google_calls} == {"x-goog-api-key"}
    assert not any(r["key_in_query"] for r in google_calls)
    assert upstream_requests(emulator, "canary ok")


HOSTILE = ["%00", "a%00b", "%E2%80%AE", "' OR '1'='1", "x" * 2000, "..%2F..%2Fetc", "%F0%9F%8D%8C"]


async def test_hostile_ids_and_queries_never_5xx(db_api: Api) -> None:
    """Odd ids, search text and cursors are 404/422, on SQLite and PostgreSQL alike (PostgreSQL
    refuses NUL bytes: they must never reach it)."""
    c = db_api.client
    admin = await db_api.user("root")
    for raw in HOSTILE:
        for method, url in [
            ("GET", f"/api/generations/{raw}"),
            ("DELETE", f"/api/generations/{raw}"),
            ("GET", f"/api/generations/{raw}/events"),
            ("GET", f"/api/images/{raw}"),
            ("DELETE", f"/api/auth/tokens/{raw}"),
            ("PATCH", f"/api/admin/users/{raw}"),
        ]:
            r = await c.request(method, url, headers=admin, json={} if method == "PATCH" else None)
            assert r.status_code == 404, (method, url, r.status_code, r.text)
        for method in ("PATCH", "DELETE"):  # an image path takes only an id: no route
            r = await c.request(method, f"/api/images/{raw}", headers=admin, json={})
            assert r.status_code == 404, (method, raw, r.status_code, r.text)
        for params in ({"q": raw}, {"cursor": raw}):
            for listing in ("/api/generations", "/api/images"):
                r = await c.get(listing, params=params, headers=admin)
                assert r.status_code in (200, 422), (listing, params, r.text)
        for name in ("model", "aspect_ratio", "image_size", "since", "generation_id"):
            r = await c.get("/api/images", params={name: raw}, headers=admin)
            assert r.status_code == 422, (name, raw, r.text)
    for listing in ("/api/generations", "/api/images"):
        r = await c.get(listing, params={"q": "\x00"}, headers=admin)
        assert r.status_code == 422
        assert r.json()["error"]["message"] == (
            "query.q must not contain a NUL character (\\x00)."
        ), listing
    r = await c.post("/api/auth/login", json={"username": "root\u0000", "password": "x\u0000y"})
    assert r.status_code == 422


async def test_unknown_query_parameters_are_refused(api: Api) -> None:
    h = await api.user("alice")
    r = await api.client.get("/api/generations", params={"limt": "5"}, headers=h)
    assert r.status_code == 422
    assert "limit" in r.json()["error"]["allowed"]
    ok = await api.client.get("/api/generations", params={"limit": "5"}, headers=h)
    assert ok.status_code == 200
