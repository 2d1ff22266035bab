"""Stored provider keys: encrypted at rest, masked on read, rotated, refused loudly (K1, K2)."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.engine import make_url

from nanobanana.emulator import EmulatorConfig, EmulatorServer
from nanobanana.server.db.models import ProviderKey
from nanobanana.server.security import StartupError
from nanobanana.server.settings import Settings

from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Api, running

pytestmark = pytest.mark.timeout(60)


def _raw_database_bytes(url: str) -> bytes:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = Path(str(u.database))
        return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    out = subprocess.run(
        ["pg_dump", "-h", str(u.host), "-p", str(u.port), "-U", "postgres", str(u.database)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return out.stdout


async def test_keys_encrypted_at_rest_and_masked(db_api: Api) -> None:
    c = db_api.client
    h = await db_api.user("alice")
    await db_api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await c.put("/api/settings/keys/google", json={"api_key": GOOGLE_CANARY}, headers=h)
    assert r.status_code == 200
    assert r.json() == {
        "provider": "google",
        "configured": True,
        "masked": "…" + GOOGLE_CANARY[-4:],
        "updated_at": r.json()["updated_at"],
        "effective_source": "user",
    }
    listed = await c.get("/api/settings/keys", headers=h)
    assert listed.status_code == 200
    for canary in (OPENROUTER_CANARY, GOOGLE_CANARY):
        assert canary not in listed.text
        assert canary[:-4] not in listed.text
    masked = {k["provider"]: k["masked"] for k in listed.json()["keys"]}
    assert masked == {
        "openrouter": "…" + OPENROUTER_CANARY[-4:],
        "google": "…" + GOOGLE_CANARY[-4:],
    }

    raw = _raw_database_bytes(db_api.settings.resolved_database_url)
    assert len(raw) > 1000
    for canary in (OPENROUTER_CANARY, GOOGLE_CANARY):
        assert canary.encode() not in raw
        assert canary[8:24].encode() not in raw
    # ...and the rows really hold Fernet tokens the vault opens.
    async with db_api.services.sessionmaker() as s:
        rows = (await s.scalars(select(ProviderKey))).all()
    assert {db_api.services.vault.decrypt(r.ciphertext) for r in rows} == {
        OPENROUTER_CANARY,
        GOOGLE_CANARY,
    }

    assert (await c.delete("/api/settings/keys/google", headers=h)).status_code == 204
    assert (await c.delete("/api/settings/keys/google", headers=h)).status_code == 404
    keys = (await c.get("/api/settings/keys", headers=h)).json()["keys"]
    assert [k["configured"] for k in keys] == [True, False]


async def test_key_validation(api: Api) -> None:
    h = await api.user("alice")
    for bad in ("short", "has space in it", "x" * 600, "tab\there-1234"):
        r = await api.client.put("/api/settings/keys/openrouter", json={"api_key": bad}, headers=h)
        assert r.status_code == 422, bad
        assert bad not in r.text
    r = await api.client.put("/api/settings/keys/azure", json={"api_key": "x" * 20}, headers=h)
    assert r.status_code == 422


async def test_key_test_endpoint(api: Api) -> None:
    c = api.client
    h = await api.user("alice")
    r = await c.post("/api/settings/keys/openrouter/test", headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_api_key"
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    r = await c.post("/api/settings/keys/openrouter/test", headers=h)
    assert r.status_code == 200
    assert r.json()["ok"] is True and r.json()["credit_used"] is not None
    assert r.json()["credit_limit"] is None and "no spending limit" in r.json()["message"]
    # OpenRouter lists models without a key: the test asks an endpoint that checks it.
    await api.put_key(h, "openrouter", "sk-or-v1-invalid-key-0000")
    r = await c.post("/api/settings/keys/openrouter/test", headers=h)
    assert r.status_code == 200
    assert r.json()["ok"] is False and r.json()["error_code"] == "upstream_auth"
    assert "invalid-key" not in r.text
    await api.put_key(h, "google", GOOGLE_CANARY)
    r = await c.post("/api/settings/keys/google/test", headers=h)
    assert r.json()["ok"] is True and r.json()["models"] > 0
    await api.put_key(h, "google", "AIza-invalid-key-0000")
    r = await c.post("/api/settings/keys/google/test", headers=h)
    assert r.status_code == 200
    assert r.json()["ok"] is False and r.json()["error_code"] == "upstream_auth"
    assert "invalid-key" not in r.text


async def test_key_test_shows_the_credit_left(settings_for: Callable[..., Settings]) -> None:
    """What OpenRouter says about the key (its limit, what is left, what it spent) is shown."""
    with EmulatorServer(EmulatorConfig(key_limit=10.0)) as upstream:
        settings = settings_for(openrouter_base_url=upstream.openrouter_url)
        async with running(settings) as api:
            h = await api.user("alice")
            await api.put_key(h, "openrouter", OPENROUTER_CANARY)
            r = await api.client.post("/api/nano-banana/generate", json={"prompt": "x"}, headers=h)
            cost = r.json()["cost"]
            r = await api.client.post("/api/settings/keys/openrouter/test", headers=h)
    body = r.json()
    assert body["ok"] is True and body["credit_limit"] == 10.0
    assert body["credit_used"] == pytest.approx(cost)
    assert body["credit_remaining"] == pytest.approx(10.0 - cost)
    assert f"${10.0 - cost:.2f} of its $10.00 limit left" in body["message"]
    assert body["message"].startswith("The OpenRouter key works: ")
    # The key's label (a masked form of the key) is not passed on.
    assert f"{OPENROUTER_CANARY[:11]}...{OPENROUTER_CANARY[-3:]}" not in r.text


async def test_master_key_file_generated_with_mode_0600(api: Api) -> None:
    path = api.settings.resolved_master_key_file
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(path.read_bytes().strip())  # a valid key


async def test_database_file_is_private(
    settings_for: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SQLite file holds password hashes, token hashes and encrypted keys: 0600 when
    created, and made so (with a warning) when an older install left it readable by others."""
    fresh = tmp_path / "fresh" / "nanobanana.db"
    async with running(settings_for(f"sqlite+aiosqlite:///{fresh}")) as api:
        await api.user("alice")  # written through, WAL and all
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode) for p in fresh.parent.glob("nanobanana.db*")
        }
    assert modes and all(mode == 0o600 for mode in modes.values()), modes
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    async with running(settings_for(f"sqlite+aiosqlite:///{old}")):
        pass
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


async def test_rotation_and_wrong_master_key(
    db_url: str, settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    old, new, other = (Fernet.generate_key().decode() for _ in range(3))
    async with running(settings_for(db_url, master_keys=old)) as api:
        h = await api.user("alice")
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        async with api.services.sessionmaker() as s:
            before = (await s.scalars(select(ProviderKey))).one().ciphertext

    # New key first, old key after: every row is re-encrypted under the new key on start.
    async with (
        running(settings_for(db_url, master_keys=f"{new},{old}")) as api,
        api.services.sessionmaker() as s,
    ):
        after = (await s.scalars(select(ProviderKey))).one().ciphertext
    assert after != before
    assert Fernet(new.encode()).decrypt(after).decode() == OPENROUTER_CANARY

    # The old key can go: the rows open with the new one alone.
    async with running(settings_for(db_url, master_keys=new)) as api:
        h = {"Authorization": f"Bearer {await api.login('alice')}"}
        r = await api.client.post("/api/settings/keys/openrouter/test", headers=h)
        assert r.json()["ok"] is True

    # A master key that opens nothing: the start fails, saying what to do, showing no secret.
    with pytest.raises(StartupError) as err:
        async with running(settings_for(db_url, master_keys=other)):
            pass
    message = str(err.value)
    assert "cannot be decrypted" in message and "NANOBANANA_MASTER_KEYS" in message
    for secret in (old, new, other, OPENROUTER_CANARY):
        assert secret not in message

    with pytest.raises(StartupError, match="not a valid Fernet key"):
        async with running(settings_for(db_url, master_keys="not-a-key")):
            pass
