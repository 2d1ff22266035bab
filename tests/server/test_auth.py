"""Accounts and tokens: lifecycle, fuzz, brute force, timing, password hashes (B2-B4, K4)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from nanobanana.server.db.models import Token, User
from nanobanana.server.security import hash_token
from nanobanana.server.settings import Settings

from .conftest import PASSWORD, Api, auth, running

pytestmark = pytest.mark.timeout(60)


async def test_lifecycle_first_user_admin(db_api: Api) -> None:
    c = db_api.client
    alice = await db_api.register("alice")
    bob = await db_api.register("Bob")
    assert alice["is_admin"] is True and bob["is_admin"] is False
    assert "password" not in str(alice) and "hash" not in str(alice)

    r = await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_at"]
    token = body["access_token"]
    me = await c.get("/api/auth/me", headers=auth(token))
    assert me.status_code == 200
    assert me.json()["username"] == "alice" and me.json()["is_admin"] is True

    # Usernames are case-insensitive for login and unique.
    assert (
        await c.post("/api/auth/login", json={"username": "BOB", "password": PASSWORD})
    ).status_code == 200
    dup = await c.post("/api/auth/register", json={"username": "ALICE", "password": PASSWORD})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "username_taken"

    out = await c.post("/api/auth/logout", headers=auth(token))
    assert out.status_code == 204
    again = await c.get("/api/auth/me", headers=auth(token))
    assert again.status_code == 401 and again.json()["error"]["code"] == "unauthorized"
    assert again.headers["www-authenticate"] == "Bearer"


async def test_tokens_are_stored_hashed_and_expire(db_api: Api) -> None:
    c = db_api.client
    await db_api.register("alice")
    token = await db_api.login("alice")
    async with db_api.services.sessionmaker() as s:
        rows = (await s.scalars(select(Token))).all()
    assert [r.token_hash for r in rows] == [hash_token(token)]
    assert all(token not in (r.name or "") for r in rows)

    # Move the service's clock past the expiry: the token stops working at once.
    real_now = db_api.services.now
    ttl = db_api.settings.token_ttl_seconds
    db_api.services.now = lambda: real_now() + timedelta(seconds=ttl + 1)
    try:
        r = await c.get("/api/auth/me", headers=auth(token))
        assert r.status_code == 401
    finally:
        db_api.services.now = real_now
    assert (await c.get("/api/auth/me", headers=auth(token))).status_code == 200


async def test_session_cookie_only_for_reads(api: Api) -> None:
    c = api.client
    await api.register("alice")
    r = await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert (await c.get("/api/auth/me")).status_code == 200  # the cookie, for <img> and SSE
    r = await c.put("/api/settings/defaults", json={"provider": "google"})
    assert r.status_code == 401  # never for a state-changing request
    r = await c.get("/api/auth/me", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401  # an explicit header wins over the cookie
    c.cookies.clear()


def _attributes(set_cookie: str) -> set[str]:
    return {
        a.strip().lower()
        for a in set_cookie.split(";")[1:]
        if not a.strip().lower().startswith(("max-age", "expires"))
    }


@pytest.mark.parametrize("public_url", [None, "https://images.example.com"])
async def test_session_cookie_set_and_cleared_alike(
    settings_for: Callable[..., Settings], public_url: str | None
) -> None:
    """The login and logout cookies carry the same attributes, Secure once the service is
    known to be reached over HTTPS."""
    async with running(settings_for(public_url=public_url)) as api:
        c = api.client
        await api.register("alice")
        r = await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        set_on = _attributes(r.headers["set-cookie"])
        token = r.json()["access_token"]
        r = await c.post("/api/auth/logout", headers=auth(token))
        assert r.status_code == 204
        cleared = _attributes(r.headers["set-cookie"])
        c.cookies.clear()
    assert set_on == cleared
    assert {"httponly", "samesite=strict", "path=/"} <= set_on
    assert ("secure" in set_on) is (public_url is not None)


async def test_api_tokens_create_list_revoke(api: Api) -> None:
    c = api.client
    h = await api.user("alice")
    r = await c.post("/api/auth/tokens", json={"name": "script", "expires_in_days": 30}, headers=h)
    assert r.status_code == 201
    created = r.json()
    api_h = auth(created["token"])
    assert (await c.get("/api/auth/me", headers=api_h)).status_code == 200
    listed = (await c.get("/api/auth/tokens", headers=h)).json()["tokens"]
    assert {t["kind"] for t in listed} == {"session", "api"}
    assert all("token" not in t for t in listed)
    assert (await c.delete(f"/api/auth/tokens/{created['id']}", headers=h)).status_code == 204
    assert (await c.get("/api/auth/me", headers=api_h)).status_code == 401
    assert (await c.delete(f"/api/auth/tokens/{created['id']}", headers=h)).status_code == 404


FUZZ = [
    "' OR '1'='1",
    "' OR 1=1 --",
    '"; DROP TABLE users; --',
    "x" * 10_000,
    "A" * 43,
    "%00",
    "null",
    "${jndi:ldap://x}",
    "\u00e9\u00e8\u00ff" * 10,
]


async def test_token_fuzz_is_always_401(db_api: Api) -> None:
    c = db_api.client
    await db_api.user("alice")
    cases: list[dict[str, str] | list[tuple[bytes, bytes]]] = []
    for token in FUZZ:
        cases.append([(b"authorization", b"Bearer " + token.encode("latin-1"))])
    cases += [
        [(b"authorization", b"Bearer ")],
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"")],
        [(b"authorization", b"Basic YWxpY2U6cHc=")],
        [(b"authorization", "Bearer \u00fc\u00f1\u00ee".encode())],  # UTF-8 bytes on the wire
        [(b"authorization", b"Bearer \xff\xfe\x00\x01")],
        [],
    ]
    for headers in cases:
        started = time.perf_counter()
        r = await c.get("/api/auth/me", headers=headers)
        elapsed = time.perf_counter() - started
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        assert elapsed < 0.5
        # The same on a write route and an object route.
        assert (
            await c.post("/api/generations", json={"prompt": "x"}, headers=headers)
        ).status_code == 401
        # (An image path takes only an id: /api/images/abc is no route at all, a 404.)
        assert (await c.get(f"/api/images/{'0' * 32}", headers=headers)).status_code == 401


async def test_revoked_and_disabled_accounts(api: Api) -> None:
    c = api.client
    admin = await api.user("root")
    bob = await api.user("bob")
    bob_id = (await c.get("/api/auth/me", headers=bob)).json()["id"]
    r = await c.patch(f"/api/admin/users/{bob_id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["is_active"] is False
    # Disabling revokes his tokens, and he cannot log in again (same message as a bad password).
    assert (await c.get("/api/auth/me", headers=bob)).status_code == 401
    r = await c.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["error"]["message"] == "Invalid username or password."
    # An admin cannot lock themselves out.
    me = (await c.get("/api/auth/me", headers=admin)).json()["id"]
    r = await c.patch(f"/api/admin/users/{me}", json={"is_active": False}, headers=admin)
    assert r.status_code == 409


async def test_registration_can_be_closed(settings_for: Callable[..., Settings]) -> None:
    async with running(settings_for(allow_registration=False)) as api:
        await api.register("first")  # the first account can always be made (it is the admin)
        r = await api.client.post(
            "/api/auth/register", json={"username": "second", "password": PASSWORD}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "registration_closed"


async def test_mass_assignment_refused(api: Api) -> None:
    r = await api.client.post(
        "/api/auth/register",
        json={"username": "mallory", "password": PASSWORD, "is_admin": True},
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    # The error does not echo the password back.
    assert PASSWORD not in r.text


async def test_login_bruteforce_per_account(settings_for: Callable[..., Settings]) -> None:
    async with running(settings_for(login_window_seconds=1.0)) as api:
        c = api.client
        await api.register("alice")
        codes = []
        for _ in range(8):
            r = await c.post(
                "/api/auth/login", json={"username": "alice", "password": "wrong-password"}
            )
            codes.append(r.status_code)
        assert codes[:5] == [401] * 5
        assert set(codes[5:]) == {429}
        limited = await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        assert limited.status_code == 429  # even the right password, while locked
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "too_many_attempts"
        time.sleep(1.1)
        ok = await c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        assert ok.status_code == 200


async def test_login_bruteforce_per_address(settings_for: Callable[..., Settings]) -> None:
    async with running(settings_for()) as api:
        c = api.client
        statuses = []
        for i in range(20):
            r = await c.post(
                "/api/auth/login", json={"username": f"user{i}", "password": "wrong-password"}
            )
            statuses.append(r.status_code)
        first_429 = statuses.index(429)
        assert 5 <= first_429 <= 10
        assert all(s == 429 for s in statuses[first_429:])


async def test_unknown_user_and_wrong_password_look_the_same(api: Api) -> None:
    c = api.client
    await api.register("alice")
    api.services.login_guard.accounts.limit = 10**6  # measure the check, not the lock-out
    api.services.login_guard.addresses.limit = 10**6
    unknown: list[float] = []
    wrong: list[float] = []
    bodies = set()
    for i in range(25):
        pair = [("alice", wrong), (f"ghost{i}", unknown)]
        # Each goes first every other time: whatever the request before leaves to do (the
        # failure it recorded, a collection) slows both kinds alike, not always one.
        for name, bucket in pair if i % 2 else pair[::-1]:
            t = time.perf_counter()
            r = await c.post("/api/auth/login", json={"username": name, "password": "not-it-123"})
            bucket.append(time.perf_counter() - t)
            assert r.status_code == 401
            bodies.add(r.text)
    assert len(bodies) == 1
    assert abs(statistics.median(unknown) - statistics.median(wrong)) < 0.02


async def test_password_hash_is_argon2id_and_rehashed(api: Api) -> None:
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    await api.register("alice")
    async with api.services.sessionmaker() as s:
        user = await s.scalar(select(User).where(User.username_key == "alice"))
        assert user is not None
        params = user.password_hash.split("$")
        assert params[1] == "argon2id"
        kv = dict(p.split("=") for p in params[3].split(","))
        assert int(kv["m"]) >= 19456 and int(kv["t"]) >= 2 and int(kv["p"]) >= 1
        assert PASSWORD not in user.password_hash
        # A hash made with weaker parameters is upgraded at the next successful login.
        weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1),))
        user.password_hash = weak.hash(PASSWORD)
        await s.commit()
    await api.login("alice")
    async with api.services.sessionmaker() as s:
        user = await s.scalar(select(User).where(User.username_key == "alice"))
        assert user is not None
        assert "m=19456,t=2,p=1" in user.password_hash


async def test_tokens_are_capped_and_listed_in_pages(settings_for: Callable[..., Settings]) -> None:
    """A user cannot pile up tokens (5,351 once came back in one 960 KB answer): live API
    tokens are capped, old sign-in sessions end, and the list comes in pages."""
    settings = settings_for(max_api_tokens_per_user=5, max_sessions_per_user=3)
    async with running(settings) as api:
        c = api.client
        h = await api.user("alice")
        made = []
        for i in range(4):  # and the sign-in session: 5 live tokens, 4 of them API tokens
            r = await c.post("/api/tokens", json={"name": f"script {i}"}, headers=h)
            assert r.status_code == 201
            made.append(r.json()["id"])
        r = await c.post("/api/tokens", json={"name": "fifth"}, headers=h)
        assert r.status_code == 201
        r = await c.post("/api/tokens", json={"name": "sixth"}, headers=h)
        assert r.status_code == 409 and r.json()["error"]["code"] == "too_many_tokens"
        assert "revoke" in r.json()["error"]["message"]
        assert (await c.delete(f"/api/tokens/{made[0]}", headers=h)).status_code == 204
        assert (await c.post("/api/tokens", json={"name": "sixth"}, headers=h)).status_code == 201

        pages, cursor = [], None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            body = (await c.get("/api/tokens", params=params, headers=h)).json()
            pages.append([t["name"] for t in body["tokens"]])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        names = [n for page in pages for n in page]
        assert [len(p) for p in pages] == [2, 2, 2]  # 5 API tokens and the session
        assert names[0] == "sixth" and "script 0" not in names and len(set(names)) == 6
        only_api = (await c.get("/api/tokens", params={"kind": "api"}, headers=h)).json()
        assert {t["kind"] for t in only_api["tokens"]} == {"api"} and len(only_api["tokens"]) == 5
        bad = await c.get("/api/tokens", params={"cursor": "nope"}, headers=h)
        assert bad.status_code == 422

        first = h
        for _ in range(3):  # three more sign-ins: the first session is the oldest of four
            latest = auth(await api.login("alice"))
        assert (await c.get("/api/auth/me", headers=first)).status_code == 401
        sessions = (await c.get("/api/tokens", params={"kind": "session"}, headers=latest)).json()
        assert len(sessions["tokens"]) == 3
        assert (await c.get("/api/auth/me", headers=latest)).status_code == 200
