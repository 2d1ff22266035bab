"""Scenario 5: the history with 10,000 jobs, on SQLite and on PostgreSQL.

The service creates its schema (its own migrations); the rows are then inserted through the
service's ORM models directly (a job and its stored image each, as a finished generation leaves
them), and the HTTP API is timed: the first page, a page deep in the history (by cursor), and
prompt searches that match often, rarely and never (the last one scans every row).
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import harness
from context import Bench, Service
from report import Table, pct, verdict

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 20.0
_SUBJECTS = ["lighthouse", "fox", "city street", "mountain lake", "robot", "teapot", "forest"]
_STYLES = ["watercolour", "photograph", "oil painting", "pixel art", "line drawing", "3D render"]
_TIMES = ["at dawn", "at night", "in the rain", "under snow", "at noon", "in fog"]
RARE_WORD = "zebra"  # in 1% of the prompts
NO_MATCH = "no prompt contains this text"


def _prompt(i: int, rng: random.Random) -> str:
    words = [rng.choice(_SUBJECTS), rng.choice(_TIMES), "as a", rng.choice(_STYLES)]
    if i % 100 == 0:
        words.insert(1, f"with a {RARE_WORD}")
    return f"a {' '.join(words)}, variation {i}"


async def seed_jobs(database_url: str, username: str, count: int) -> None:
    """Insert ``count`` finished jobs (one image each) for ``username`` through the ORM."""
    from sqlalchemy import select, text

    from nanobanana.server.db.engine import create_engine, create_sessionmaker
    from nanobanana.server.db.models import Job, StoredImage, User, new_id

    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    rng = random.Random(6)
    start = datetime.now(UTC) - timedelta(seconds=count * 60)
    try:
        async with sessions() as session:
            user_id = await session.scalar(select(User.id).where(User.username == username))
            await session.commit()
        if user_id is None:
            raise RuntimeError(f"no user {username!r} in {database_url}")
        batch = 1000
        for first in range(0, count, batch):
            async with sessions() as session, session.begin():
                for i in range(first, min(first + batch, count)):
                    created = start + timedelta(seconds=i * 60)
                    prompt = _prompt(i, rng)
                    job_id, digest = new_id(), f"{rng.getrandbits(256):064x}"
                    request: dict[str, object] = {
                        "prompt": prompt,
                        "negative_prompt": None,
                        "n": 1,
                        "provider": "openrouter",
                        "model": "gemini-2.5-flash-image",
                        "aspect_ratio": "1:1",
                        "image_size": "1K",
                        "seed": None,
                        "images": [],
                    }
                    session.add(
                        Job(
                            id=job_id,
                            user_id=user_id,
                            status="succeeded",
                            kind="seed",
                            request=request,
                            prompt=prompt,
                            effective_prompt=prompt,
                            provider="openrouter",
                            model="gemini-2.5-flash-image",
                            provider_model="google/gemini-2.5-flash-image",
                            attempts=[
                                {
                                    "provider": "openrouter",
                                    "model": "google/gemini-2.5-flash-image",
                                    "status": "ok",
                                    "index": 0,
                                    "elapsed_s": 9.2,
                                }
                            ],
                            failures=[],
                            warnings=[],
                            usage={"input_tokens": 12, "output_tokens": 1290, "cost": 0.0387},
                            cost=0.0387,
                            timings={"queued_s": 0.001, "running_s": 9.2, "elapsed_s": 9.2},
                            request_hash=digest,
                            created_at=created,
                            started_at=created,
                            finished_at=created + timedelta(seconds=9),
                        )
                    )
                    session.add(
                        StoredImage(
                            id=new_id(),
                            job_id=job_id,
                            user_id=user_id,
                            index=0,
                            sha256=digest,
                            mime_type="image/png",
                            width=1024,
                            height=1024,
                            size=1_305_000,
                            storage_key=f"{digest[:2]}/{digest}.png",
                            thumb_key=f"{digest[:2]}/{digest[::-1]}.webp",
                            created_at=created,
                        )
                    )
        if not database_url.startswith("sqlite"):
            # Autovacuum would analyse the new rows within a minute; do it now so that the
            # timing does not depend on when it ran.
            async with engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
    finally:
        await engine.dispose()


async def _pg_database(name: str, drop: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _deep_cursor(svc: Service, pages: int) -> str | None:
    """The cursor ``pages`` x 100 jobs down the history, by following the API's own cursors."""
    cursor = None
    for _ in range(pages):
        url = f"{svc.url}/api/generations?limit=100" + (f"&cursor={cursor}" if cursor else "")
        status, body = harness.http("GET", url, token=svc.token)
        if status != 200:
            raise RuntimeError(f"listing failed: HTTP {status} {body[:200]!r}")
        cursor = json.loads(body)["next_cursor"]
        if cursor is None:
            break
    return cursor


def _queries(svc: Service, n_jobs: int) -> list[tuple[str, str]]:
    deep = _deep_cursor(svc, max(1, n_jobs // 200))
    out = [
        ("first page (20)", "/api/generations?limit=20"),
        ("first page (100)", "/api/generations?limit=100"),
    ]
    if deep:
        out.append(
            ("a page halfway down (20, by cursor)", f"/api/generations?limit=20&cursor={deep}")
        )
    out += [
        ("search, common word (20)", "/api/generations?limit=20&q=lighthouse"),
        ("search, rare word: 1% of prompts (20)", f"/api/generations?limit=20&q={RARE_WORD}"),
        (
            "search, no match (SQLite scans every row)",
            f"/api/generations?limit=20&q={quote(NO_MATCH)}",
        ),
    ]
    return out


def _measure(b: Bench, database_url: str | None, label: str) -> dict[str, list[float]]:
    n_jobs, n = b.sizes.db_jobs, b.sizes.db_requests
    with b.service(database_url=database_url) as svc:
        url = database_url or f"sqlite+aiosqlite:///{svc.data_dir / 'nanobanana.db'}"
        b.say(f"  {label}: inserting {n_jobs:,} jobs through the ORM")
        asyncio.run(seed_jobs(url, "bench", n_jobs))
        queries = _queries(svc, n_jobs)
        targets = [
            {
                "name": name,
                "url": svc.url + path,
                "headers": {"Authorization": f"Bearer {svc.token}"},
                "expect": '"items":[',
                "min_bytes": 12,
            }
            for name, path in queries
        ]
        b.say(f"  {label}: {n} requests per query, c=1, interleaved")
        res = b.loadgen(
            {
                "mode": "alternate",
                "targets": targets,
                "requests": n,
                "warmup": 3,
                "timeout_s": 30,
                "deadline_s": 300,
            }
        )
    out: dict[str, list[float]] = {}
    for t in res["targets"]:
        if t["errors"]:
            raise RuntimeError(f"{label} {t['name']}: {t['errors']} errors: {t['error_samples']}")
        out[t["name"]] = t["latencies_ms"]
    return out


def database(b: Bench) -> Table:
    n_jobs = b.sizes.db_jobs
    b.say(f"scenario 5: history of {n_jobs:,} jobs, SQLite and PostgreSQL")
    table = Table(
        f"5. History with {n_jobs:,} jobs: listing and prompt search ({b.sizes.db_requests} "
        "requests each, c=1)",
        [
            "query",
            "SQLite p50",
            "SQLite p99",
            "PostgreSQL p50",
            "PostgreSQL p99",
            "target",
            "result",
        ],
    )
    results: dict[str, dict[str, list[float]]] = {"sqlite": _measure(b, None, "SQLite")}
    pg_name = f"nanobanana_bench_{abs(hash(b.work)) % 10**8}"
    try:
        asyncio.run(_pg_database(pg_name, drop=False))
    except (OSError, ImportError) as exc:
        b.say(f"  PostgreSQL not available ({type(exc).__name__}: {exc})")
        table.notes.append(f"PostgreSQL was not reachable on 127.0.0.1:5432: {exc}")
    else:
        try:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
            results["postgres"] = _measure(b, url, "PostgreSQL")
        finally:
            asyncio.run(_pg_database(pg_name, drop=True))
    pg = results.get("postgres", {})
    for name, sqlite_lat in results["sqlite"].items():
        pg_lat = pg.get(name)
        p50s = [pct(sqlite_lat, 50)] + ([pct(pg_lat, 50)] if pg_lat else [])
        table.add(
            name,
            pct(sqlite_lat, 50),
            pct(sqlite_lat, 99),
            pct(pg_lat, 50) if pg_lat else "-",
            pct(pg_lat, 99) if pg_lat else "-",
            f"< {TARGET_MS:g} ms p50",
            verdict(all(p < TARGET_MS for p in p50s)),
        )
    table.notes.append(
        "Latency of the whole HTTP request (authentication, query, JSON); each job has one "
        "stored image row. PostgreSQL is ANALYZEd after the insert."
    )
    table.data = results
    return table
