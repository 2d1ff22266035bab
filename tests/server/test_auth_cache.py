"""Who a token belongs to is cached per process; every way a token stops being valid is seen
by the very next request, and a token's own expiry is checked on every cached use."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from nanobanana.server.authcache import AuthCache
from nanobanana.server.db.models import Token, User
from nanobanana.server.security import hash_token

from .conftest import Api, auth

ME = "/api/auth/me"


async def _cached(api: Api, headers: dict[str, str]) -> None:
    """Use the token twice: the second answer comes from the cache."""
    for _ in range(2):
        assert (await api.client.get(ME, headers=headers)).status_code == 200
    token = headers["Authorization"].removeprefix("Bearer ")
    assert api.services.auth_cache.get(hash_token(token)) is not None


async def test_cached_token_answers_without_the_database(api: Api) -> None:
    h = await api.user("cached")
    await _cached(api, h)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    from sqlalchemy import event

    sync_engine = api.services.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        r = await api.client.get(ME, headers=h)
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert r.status_code == 200 and r.json()["username"] == "cached"
    assert not any("tokens" in s for s in statements), statements


async def test_logout_is_seen_at_once(api: Api) -> None:
    h = await api.user("leaver")
    await _cached(api, h)
    assert (await api.client.post("/api/auth/logout", headers=h)).status_code == 204
    assert (await api.client.get(ME, headers=h)).status_code == 401


async def test_revoked_api_token_is_refused_at_once(api: Api) -> None:
    c = api.client
    h = await api.user("scripter")
    r = await c.post("/api/auth/tokens", json={"name": "ci"}, headers=h)
    assert r.status_code == 201
    api_token, token_id = r.json()["token"], r.json()["id"]
    await _cached(api, auth(api_token))
    assert (await c.delete(f"/api/auth/tokens/{token_id}", headers=h)).status_code == 204
    assert (await c.get(ME, headers=auth(api_token))).status_code == 401
    assert (await c.get(ME, headers=h)).status_code == 200  # the session token still works


async def test_disabling_and_demoting_are_seen_at_once(api: Api) -> None:
    c = api.client
    root = await api.user("root")
    carol = await api.user("carol")
    carol_id = (await c.get(ME, headers=carol)).json()["id"]
    assert (
        await c.patch(f"/api/admin/users/{carol_id}", json={"is_admin": True}, headers=root)
    ).status_code == 200
    await _cached(api, carol)
    assert (await c.get("/api/admin/users", headers=carol)).status_code == 200
    r = await c.patch(f"/api/admin/users/{carol_id}", json={"is_admin": False}, headers=root)
    assert r.status_code == 200
    assert (await c.get("/api/admin/users", headers=carol)).status_code == 403
    await _cached(api, carol)
    r = await c.patch(f"/api/admin/users/{carol_id}", json={"is_active": False}, headers=root)
    assert r.status_code == 200
    assert (await c.get(ME, headers=carol)).status_code == 401


async def test_expiry_is_checked_on_cached_tokens(api: Api) -> None:
    h = await api.user("expiring")
    await _cached(api, h)
    real_now = api.services.now
    api.services.now = lambda: real_now() + timedelta(seconds=api.settings.token_ttl_seconds + 1)
    try:
        r = await api.client.get(ME, headers=h)
    finally:
        api.services.now = real_now
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


async def test_a_change_made_elsewhere_is_seen_within_the_ttl(api: Api) -> None:
    """Another process sharing the database (not the supported deployment) revokes a token:
    this process refuses it once the cached entry is older than the cache's ttl."""
    clock = [0.0]
    api.services.auth_cache = AuthCache(ttl=30, clock=lambda: clock[0])
    h = await api.user("elsewhere")
    await _cached(api, h)
    async with api.services.sessionmaker() as session, session.begin():
        await session.execute(update(Token).values(revoked_at=api.services.now()))
    assert (await api.client.get(ME, headers=h)).status_code == 200  # within the ttl
    clock[0] = 31.0
    assert (await api.client.get(ME, headers=h)).status_code == 401


async def test_last_used_is_still_recorded(api: Api) -> None:
    h = await api.user("tracked")
    await _cached(api, h)
    token = h["Authorization"].removeprefix("Bearer ")
    real_now = api.services.now
    later = real_now() + timedelta(minutes=5)
    api.services.now = lambda: later
    try:
        assert (await api.client.get(ME, headers=h)).status_code == 200
    finally:
        api.services.now = real_now
    async with api.services.sessionmaker() as session:
        used = await session.scalar(
            select(Token.last_used_at).where(Token.token_hash == hash_token(token))
        )
    assert used is not None and abs((used - later).total_seconds()) < 1


def _rows() -> tuple[User, Token]:
    user = User(id="u1", username="u", username_key="u", password_hash="$argon2id$secret")
    user.is_admin, user.is_active = False, True
    token = Token(id="t1", user_id="u1", token_hash="h", kind="session", name="login")
    return user, token


def test_cache_unit_rules() -> None:
    clock = [0.0]
    cache = AuthCache(ttl=30, max_entries=3, clock=lambda: clock[0])
    user, token = _rows()
    assert cache.get("h") is None
    cache.put("h", user, token, cache.epoch)
    hit = cache.get("h")
    assert hit is not None
    got_user, got_token = hit
    # Fresh objects on every hit, and no password hash kept.
    assert got_user is not user and got_user.id == "u1" and got_user.password_hash is None
    assert cache.get("h")[0] is not got_user  # type: ignore[index]
    assert got_token.id == "t1"
    # A read that started before a revocation does not store what it read.
    epoch = cache.epoch
    cache.forget_user("u1")
    assert cache.get("h") is None
    cache.put("h", user, token, epoch)
    assert cache.get("h") is None
    # Entries end after the ttl.
    cache.put("h", user, token, cache.epoch)
    clock[0] = 31
    assert cache.get("h") is None
    # Bounded: past max_entries, old entries make room.
    for i in range(10):
        cache.put(f"k{i}", user, token, cache.epoch)
    assert len(cache._entries) <= 3
    assert repr(cache).startswith("AuthCache(") and "argon2" not in repr(cache)
