"""The schema: migrations match the models on both databases; the headless user hook."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from nanobanana.errors import UsageError
from nanobanana.server.db.engine import create_engine
from nanobanana.server.db.migrate import HEAD_REVISION, include_object, upgrade_database
from nanobanana.server.db.models import Base
from nanobanana.server.settings import Settings
from nanobanana.server.users import create_user

from .conftest import PASSWORD, running

pytestmark = pytest.mark.timeout(60)


async def test_migrations_match_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade_database(engine)
        await upgrade_database(engine)  # idempotent

        def diff(conn: object) -> list[object]:
            ctx = MigrationContext.configure(
                conn,  # type: ignore[arg-type]
                opts={"compare_type": True, "include_object": include_object},
            )
            return list(compare_metadata(ctx, Base.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            assert version == HEAD_REVISION
    finally:
        await engine.dispose()


def test_head_revision_constant_matches_the_scripts() -> None:
    """``HEAD_REVISION`` lets a current database skip Alembic; a new migration must move it."""
    from alembic.script import ScriptDirectory

    from nanobanana.server.db.migrate import alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_a_current_database_starts_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    code = (
        "import asyncio, sys\n"
        "from nanobanana.server.db.engine import create_engine\n"
        "from nanobanana.server.db.migrate import upgrade_database\n"
        "async def main():\n"
        f"    engine = create_engine({url!r})\n"
        "    await upgrade_database(engine)\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    # The first start migrates (Alembic), the second finds the schema current.
    assert [r.stdout.strip() for r in runs] == ["True", "False"], [r.stderr for r in runs]


def test_serve_migrates_in_a_child_process(tmp_path: Path) -> None:
    """``nanobanana serve`` migrates a new database in a child process, so the serving
    process itself never loads Alembic (and its start-up finds the schema current)."""
    db = tmp_path / "data" / "db.sqlite"
    code = (
        "import sys\n"
        "from nanobanana.server.db.migrate import migrate_in_child\n"
        f"ok = migrate_in_child('sqlite+aiosqlite:///{db}')\n"
        "print(ok, 'alembic' in sys.modules)\n"
        "import subprocess\n"
        "def refuse(*a, **k): raise AssertionError('a child for a current schema')\n"
        "subprocess.run = refuse\n"
        f"print(migrate_in_child('sqlite+aiosqlite:///{db}'))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Migrated by a child, Alembic never loaded here; the next start needs no child at all.
    assert run.stdout.split() == ["True", "False", "True"], run.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            HEAD_REVISION,
        )


@pytest.mark.postgres
async def test_postgres_prompt_search_uses_the_trigram_index(pg_database: str) -> None:
    engine = create_engine(pg_database)
    try:
        await upgrade_database(engine)
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                row[0]
                for row in await conn.execute(
                    text("EXPLAIN SELECT id FROM jobs WHERE prompt ILIKE '%lighthouse%'")
                )
            )
        assert "ix_jobs_prompt_trgm" in plan, plan
        # New jobs wait in a short pending list, which every search scans until it is merged.
        async with engine.connect() as conn:
            options = await conn.scalar(
                text("SELECT reloptions FROM pg_class WHERE relname = 'ix_jobs_prompt_trgm'")
            )
        assert options == ["gin_pending_list_limit=64"]
    finally:
        await engine.dispose()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x' / 'db.sqlite'}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
        assert (mode, fks) == ("wal", 1)
        assert busy is not None and busy >= 5000
    finally:
        await engine.dispose()


def test_create_user_hook(db_url: str, settings_for: Callable[..., Settings]) -> None:
    """``nanobanana users create``: a headless account, usable at once."""
    import asyncio

    settings = settings_for(db_url)
    user_id = create_user(settings, "ops", PASSWORD, admin=True)
    assert len(user_id) == 32
    with pytest.raises(UsageError, match="taken"):
        create_user(settings, "OPS", PASSWORD)
    with pytest.raises(UsageError):
        create_user(settings, "x", "short")

    async def check() -> None:
        async with running(settings) as api:
            token = await api.login("ops")
            me = await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["is_admin"] is True and me.json()["id"] == user_id
            # The next registered account is not the first: no admin rights.
            assert (await api.register("second"))["is_admin"] is False

    asyncio.run(check())


def _add_user(conn: Any, user_id: str, now: str) -> None:
    """An account row, as a migration test's earlier schema holds it."""
    conn.execute(
        text(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, "
            "is_active, created_at) VALUES (:id, 'a', 'a', 'x', 0, 1, :now)"
        ),
        {"id": user_id, "now": now},
    )


def test_0008_files_the_images_already_stored_by_their_shape(tmp_path: Path) -> None:
    """The gallery filters on ratio and size: images stored before 0008 get theirs from their
    pixels, and none of them is a favourite."""
    from alembic import command
    from sqlalchemy import create_engine as sync_engine

    from nanobanana.server.db.migrate import alembic_config

    engine = sync_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0007")
        now = "2026-12-01 10:00:00.000000"
        _add_user(conn, "u1", now)
        conn.execute(
            text(
                "INSERT INTO jobs (id, user_id, status, kind, request, prompt, attempts, "
                "failures, warnings, cost_is_estimate, synthetic, created_at, attempt) VALUES "
                "('j1', 'u1', 'succeeded', 'sync', '{}', 'p', '[]', '[]', '[]', 0, 0, :now, 0)"
            ),
            {"now": now},
        )
        shapes = {"i1": (1376, 768), "i2": (2048, 2048), "i3": (512, 2048), "i4": (5504, 3072)}
        for image_id, (w, h) in shapes.items():
            conn.execute(
                text(
                    'INSERT INTO images (id, job_id, user_id, "index", sha256, mime_type, '
                    "width, height, size, storage_key, created_at) VALUES "
                    "(:id, 'j1', 'u1', 0, 'h', 'image/png', :w, :h, 1, 'k', :now)"
                ),
                {"id": image_id, "w": w, "h": h, "now": now},
            )
        command.upgrade(alembic_config(conn), "head")
        rows = conn.execute(
            text("SELECT id, aspect_ratio, image_size, favourite FROM images ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("i1", "16:9", "1K", 0),
        ("i2", "1:1", "2K", 0),
        ("i3", "1:4", "1K", 0),
        ("i4", "16:9", "4K", 0),
    ]


def test_0009_puts_the_jobs_already_stored_in_the_spend_ledger(tmp_path: Path) -> None:
    """Caps count what was spent before they existed: each stored job enters the ledger with
    its recorded cost, nothing held."""
    from alembic import command
    from sqlalchemy import create_engine as sync_engine

    from nanobanana.server.db.migrate import alembic_config

    engine = sync_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0008")
        now = "2026-12-01 10:00:00.000000"
        _add_user(conn, "u1", now)
        for job_id, cost in (("j1", 0.039), ("j2", None)):
            conn.execute(
                text(
                    "INSERT INTO jobs (id, user_id, status, kind, request, prompt, attempts, "
                    "failures, warnings, cost, cost_is_estimate, synthetic, created_at, "
                    "attempt) VALUES (:id, 'u1', 'succeeded', 'sync', '{}', 'p', '[]', '[]', "
                    "'[]', :cost, 0, 0, :now, 0)"
                ),
                {"id": job_id, "cost": cost, "now": now},
            )
        command.upgrade(alembic_config(conn), "head")
        rows = conn.execute(
            text("SELECT job_id, user_id, held_usd, cost_usd FROM spend ORDER BY job_id")
        ).all()
        created = conn.execute(text("SELECT created_at FROM spend WHERE job_id = 'j1'")).scalar()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("j1", "u1", 0, 0.039), ("j2", "u1", 0, None)]
    assert str(created).startswith("2026-12-01 10:00:00")


def test_0010_gives_the_ledger_each_jobs_provider_model_and_images(tmp_path: Path) -> None:
    """Usage by model, provider and images covers what was spent before: each ledger row
    takes them from its job; a row whose job was deleted keeps its money and no names."""
    from alembic import command
    from sqlalchemy import create_engine as sync_engine

    from nanobanana.server.db.migrate import alembic_config

    engine = sync_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0009")
        now = "2026-12-01 10:00:00.000000"
        _add_user(conn, "u1", now)
        conn.execute(
            text(
                "INSERT INTO jobs (id, user_id, status, kind, request, prompt, attempts, "
                "failures, warnings, provider, model, cost, cost_is_estimate, synthetic, "
                "created_at, attempt) VALUES ('j1', 'u1', 'succeeded', 'sync', '{}', 'p', "
                "'[]', '[]', '[]', 'google', 'gemini-3-pro-image', 0.27, 0, 0, :now, 0)"
            ),
            {"now": now},
        )
        for image_id in ("i1", "i2"):
            conn.execute(
                text(
                    'INSERT INTO images (id, job_id, user_id, "index", sha256, mime_type, '
                    "width, height, size, storage_key, created_at, favourite) VALUES "
                    "(:id, 'j1', 'u1', 0, 'h', 'image/png', 1, 1, 1, 'k', :now, 0)"
                ),
                {"id": image_id, "now": now},
            )
        conn.execute(
            text(
                "INSERT INTO spend (job_id, user_id, created_at, held_usd, cost_usd) VALUES "
                "('j1', 'u1', :now, 0, 0.27), ('gone', 'u1', :now, 0, 0.04)"
            ),
            {"now": now},
        )
        command.upgrade(alembic_config(conn), "head")
        rows = conn.execute(
            text("SELECT job_id, provider, model, images, cost_usd FROM spend ORDER BY job_id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("gone", None, None, 0, 0.04),
        ("j1", "google", "gemini-3-pro-image", 2, 0.27),
    ]
