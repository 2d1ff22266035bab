"""Fixtures for the web service: databases (SQLite and PostgreSQL), emulators, apps, users.

PostgreSQL: one database per test session on 127.0.0.1:5432 (user postgres, trust auth), named
uniquely and dropped at the end; tables are emptied before each test that uses it.  If the
server is unreachable, the PostgreSQL tests fail: ``make test`` starts it first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanobanana.emulator import EmulatorConfig, EmulatorServer
from nanobanana.server.app import create_app
from nanobanana.server.settings import Settings

from ..support import S3Server, postgres_database, seaweedfs, service_settings

OPENROUTER_CANARY = "sk-or-v1-CANARY0123456789abcdef0123456789abcdef"
GOOGLE_CANARY = "AIzaSyCANARY0123456789abcdefghijklmnop"
CANARIES = (OPENROUTER_CANARY, GOOGLE_CANARY)
PASSWORD = "correct horse battery"
#: Kept between tests on PostgreSQL: the schema's revision (every other table is emptied).
KEPT_TABLES = frozenset({"alembic_version"})


# ------------------------------------------------------------------------------ databases
@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS on 127.0.0.1:8333 for this test session, with its bucket."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


async def _truncate(url: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        existing = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        present = sorted(existing - KEPT_TABLES)
        if present:
            await conn.execute(f"TRUNCATE {', '.join(present)} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'nanobanana.db'}"
    url: str = request.getfixturevalue("pg_database")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'nanobanana.db'}"


# ------------------------------------------------------------------------------ emulators
# ``emulator`` (the session's emulator) comes from tests/conftest.py.
@pytest.fixture(scope="session")
def fast_emulator() -> Iterator[EmulatorServer]:
    """Serves pre-rendered images: for tests where upstream rendering time would dominate."""
    with EmulatorServer(EmulatorConfig(fixed_payload=True)) as emu:
        yield emu


@pytest.fixture(scope="session")
def quota_emulator() -> Iterator[EmulatorServer]:
    """An upstream whose every answer is a per-day quota error."""
    with EmulatorServer(EmulatorConfig(default_scenario="quota-day")) as emu:
        yield emu


def upstream_requests(emu: EmulatorServer, marker: str) -> list[dict[str, Any]]:
    """Generation requests the emulator saw whose body mentions ``marker``."""
    import json

    out = []
    for req in emu.requests():
        blob = json.dumps(req.get("body"), ensure_ascii=False)
        if marker in blob and req.get("method") == "POST":
            out.append(req)
    return out


# ---------------------------------------------------------------------------- the app
def make_settings(tmp_path: Path, db: str, emu: EmulatorServer | None, **over: Any) -> Settings:
    settings: Settings = service_settings(
        tmp_path / "data",
        db,
        openrouter_url=emu.openrouter_url if emu else None,
        gemini_url=emu.gemini_url if emu else None,
        **over,
    )
    return settings


@dataclass
class Api:
    """An in-process client of one running app, with helpers for accounts."""

    app: Any
    client: httpx.AsyncClient
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def register(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        r = await self.client.post(
            "/api/auth/register", json={"username": username, "password": password}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def login(self, username: str, password: str = PASSWORD) -> str:
        r = await self.client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert r.status_code == 200, r.text
        # Tests say which credentials they send: the login cookie is not kept.
        self.client.cookies.clear()
        token: str = r.json()["access_token"]
        self.tokens[username] = token
        return token

    async def user(self, username: str) -> dict[str, str]:
        """Register and log in; returns the Authorization header."""
        await self.register(username)
        return auth(await self.login(username))

    async def put_key(self, headers: dict[str, str], provider: str, key: str) -> None:
        r = await self.client.put(
            f"/api/settings/keys/{provider}", json={"api_key": key}, headers=headers
        )
        assert r.status_code == 200, r.text


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Api]:
    """The app with its lifespan (migrations, workers...) and an in-process client."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
        ) as client,
    ):
        yield Api(app=app, client=client, settings=settings)


@pytest.fixture
def settings_for(tmp_path: Path, emulator: EmulatorServer) -> Callable[..., Settings]:
    """Settings on SQLite in tmp_path, upstream = the emulator; keyword overrides."""

    def build(db: str | None = None, **over: Any) -> Settings:
        return make_settings(
            tmp_path, db or f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", emulator, **over
        )

    return build


@pytest.fixture
async def api(settings_for: Callable[..., Settings]) -> AsyncIterator[Api]:
    async with running(settings_for()) as a:
        yield a


@pytest.fixture
async def db_api(db_url: str, settings_for: Callable[..., Settings]) -> AsyncIterator[Api]:
    """Like ``api``, on SQLite and on PostgreSQL."""
    async with running(settings_for(db_url)) as a:
        yield a


@pytest.fixture
def log_capture(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
