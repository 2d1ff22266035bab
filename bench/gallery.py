"""The gallery with 10,000 images: the API's pages, and the page in Chromium.

    .venv/bin/python bench/gallery.py                 # 10,000 images, SQLite
    .venv/bin/python bench/gallery.py --images 50000  # more
    .venv/bin/python bench/gallery.py --postgres      # on PostgreSQL (127.0.0.1:5432)

The service is started as ``nanobanana serve`` on its own data folder; one user's generations
(one to four images each, in seven shapes) are inserted through the service's ORM models,
with real WEBP thumbnails in its image store. Then:

- the API: ``GET /api/images`` first page, a page deep in the list (by cursor), a filtered
  page, favourites, and the facets, each timed over HTTP (auth, query, JSON) at c=1;
- the page: Chromium (``/usr/bin/chromium``, ``make browser``) opens ``/gallery`` signed in
  (through the sign-in form, which leaves the session cookie too; then with the token stored
  by a script, which does not), and the time from the navigation's start until the first
  page of tiles is on screen (the page marks that frame: ``performance.mark``), and until
  their thumbnails have all decoded (an init script marks that frame), is read from the
  page's own clock after the load.
  First visits (``--first``, each in a new browser: its cache holds only what the sign-in
  page loaded) are reported apart from the later loads of the last of them (``--loads``,
  with the cache a user coming back has).

The figures are printed; nothing is asserted (a shared 2-core machine moves them).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import harness

SHAPES = [
    (1024, 1024),
    (1376, 768),
    (768, 1376),
    (1184, 864),
    (864, 1184),
    (1584, 672),
    (896, 1152),
]
PAGE_TARGET_MS = 200.0
#: The frame in which the first page's tiles were shown, as the page marks it.
FIRST_PAGE = "nanobanana:gallery-first-page"
#: Every thumbnail of a tile on the first screen has decoded (the ones below the fold are
#: fetched as they come near: they do not count).
IN_VIEW_DECODED = (
    "[...document.querySelectorAll('.tile')].filter(t => t.getBoundingClientRect().top"
    " < innerHeight).every(t => { const i = t.querySelector('img');"
    " return i && i.complete && i.naturalWidth > 0; })"
)
THUMBS_IN_VIEW = "bench:thumbnails-in-view"
#: Run in the page before its own scripts (an init script, a few lines: Playwright's own
#: injected script, ~15 ms of a cold main thread, would compete with the load it measures):
#: after the first page's mark, checks at each frame whether the thumbnails in view have all
#: decoded and marks that frame.
WATCH = f"""
(() => {{
  const frame = () => {{
    const tiles = performance.getEntriesByName({FIRST_PAGE!r}).length;
    if (tiles && ({IN_VIEW_DECODED})) performance.mark({THUMBS_IN_VIEW!r});
    else requestAnimationFrame(frame);
  }};
  requestAnimationFrame(frame);
}})();
"""
#: Both marks, once both are there (read after the load, never polled during it).
READ_MARKS = f"""() => {{
  const at = (name) => performance.getEntriesByName(name)[0]?.startTime;
  const tiles = at({FIRST_PAGE!r}), thumbs = at({THUMBS_IN_VIEW!r});
  return tiles === undefined || thumbs === undefined ? null : [tiles, thumbs];
}}"""
CHROMIUM = "/usr/bin/chromium"


def _thumbs(store_root: Path) -> list[str]:
    """One real WEBP thumbnail per shape in the store; their keys."""
    from PIL import Image

    from nanobanana.server.storage.local import content_key

    keys = []
    for i, (w, h) in enumerate(SHAPES):
        scale = 384 / max(w, h)
        img = Image.new("RGB", (round(w * scale), round(h * scale)), (40 * i % 255, 120, 200))
        buf = io.BytesIO()
        img.save(buf, "WEBP", quality=80)
        data = buf.getvalue()
        key = content_key(data, "webp", None)
        path = store_root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        keys.append(key)
    return keys


async def seed(database_url: str, username: str, images: int, thumb_keys: list[str]) -> None:
    from sqlalchemy import select

    from nanobanana.catalog import IMAGE_RATIOS, nearest_ratio, size_class
    from nanobanana.server.db.engine import create_engine, create_sessionmaker
    from nanobanana.server.db.models import Job, StoredImage, User, new_id

    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    rng = random.Random(19)
    start = datetime.now(UTC) - timedelta(minutes=images)
    try:
        async with sessions() as session:
            user_id = await session.scalar(select(User.id).where(User.username == username))
            await session.commit()
        made, i = 0, 0
        while made < images:
            async with sessions() as session, session.begin():
                for _ in range(500):
                    if made >= images:
                        break
                    n = min(rng.choice((1, 1, 1, 2, 4)), images - made)
                    shape = rng.randrange(len(SHAPES))
                    w, h = SHAPES[shape]
                    created = start + timedelta(minutes=i)
                    job_id = new_id()
                    prompt = f"a {rng.choice(['fox', 'lighthouse', 'teapot', 'robot'])} {i}"
                    session.add(
                        Job(
                            id=job_id,
                            user_id=user_id,
                            status="succeeded",
                            kind="seed",
                            request={"prompt": prompt, "n": n},
                            prompt=prompt,
                            provider=rng.choice(["openrouter", "google"]),
                            model="gemini-3.1-flash-image",
                            attempts=[],
                            failures=[],
                            warnings=[],
                            cost=0.039 * n,
                            created_at=created,
                            finished_at=created,
                        )
                    )
                    for k in range(n):
                        digest = f"{rng.getrandbits(256):064x}"
                        session.add(
                            StoredImage(
                                id=new_id(),
                                job_id=job_id,
                                user_id=user_id,
                                index=k,
                                sha256=digest,
                                mime_type="image/png",
                                width=w,
                                height=h,
                                size=1_300_000,
                                storage_key=f"{digest[:2]}/{digest}.png",
                                thumb_key=thumb_keys[shape],
                                created_at=created,
                                aspect_ratio=nearest_ratio(IMAGE_RATIOS, w, h),
                                image_size=size_class(w, h),
                                favourite=rng.random() < 0.02,
                            )
                        )
                    made += n
                    i += 1
    finally:
        await engine.dispose()


def _time_api(url: str, token: str, paths: dict[str, str], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in paths}
    for name, path in paths.items():  # warm-up
        status, body = harness.http("GET", url + path, token=token)
        if status != 200:
            raise RuntimeError(f"{name}: HTTP {status} {body[:200]!r}")
    for _ in range(n):
        for name, path in paths.items():
            t = time.perf_counter()
            harness.http("GET", url + path, token=token)
            out[name].append((time.perf_counter() - t) * 1000)
    return out


def _time_page(url: str, token: str | None, loads: int) -> list[tuple[float, float]]:
    """A new browser signs in and opens the gallery ``loads`` times: (first page, thumbnails in
    view) of each load, in ms from its navigation's start.  Signed in through the sign-in form
    (``token`` None: the browser lands on the gallery, and holds the session cookie too), or
    with ``token`` stored in the page's storage by a script (no cookie: the page asks the API)."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.add_init_script(WATCH)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        if token is None:
            page.goto(f"{url}/login?next=/gallery")
            page.get_by_label("Username").fill("bench")
            page.get_by_label("Password").fill(harness.PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/gallery")
        else:
            page.goto(f"{url}/login")
            page.evaluate(
                "t => { localStorage.setItem('token', t); localStorage.setItem("
                "'nanobanana.session', JSON.stringify({expires_at: null, username: 'bench'})); }",
                token,
            )
        for load in range(loads):
            # Nothing is asked of the page while it loads: the page marks the frame its first
            # tiles are shown in, the init script the frame its thumbnails in view have all
            # decoded; both are read once the load is over.
            if load or token is not None:
                page.goto(f"{url}/gallery")
            page.wait_for_load_state("networkidle")
            marks = None
            for _ in range(50):
                marks = page.evaluate(READ_MARKS)
                if marks:
                    break
                time.sleep(0.1)
            if not marks:
                raise RuntimeError("the page did not mark its first page and thumbnails")
            times.append((float(marks[0]), float(marks[1])))
            if page.locator(".tile").count() < 30:
                raise RuntimeError("the first page has fewer than 30 tiles")
            if errors or page.locator("#gallery-error").is_visible():
                raise RuntimeError(f"the page reported an error: {errors}")
        browser.close()
    return times


def _row(name: str, loads: list[tuple[float, float]]) -> str:
    def spread(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.0f}"
        return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    return f"{name:40} {spread([t for t, _ in loads]):>20} {spread([s for _, s in loads]):>24}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=30, help="per API query")
    ap.add_argument("--first", type=int, default=7, help="first visits, each in a new browser")
    ap.add_argument("--loads", type=int, default=6, help="later loads in the last browser")
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()

    pg_url = None
    if args.postgres:
        import asyncpg  # noqa: F401  (the driver the URL names)

        pg_url = "postgresql+asyncpg://postgres@127.0.0.1:5432/nanobanana_bench_gallery"
        asyncio.run(_recreate_pg("nanobanana_bench_gallery"))
    logs = harness.BENCH / "out" / "gallery-logs"
    logs.mkdir(parents=True, exist_ok=True)
    config = harness.ServiceConfig("http://127.0.0.1:9", database_url=pg_url)
    proc, data_dir = harness.start_service(None, config, logs)
    try:
        token = harness.setup_user(proc.url, "bench")
        url = pg_url or f"sqlite+aiosqlite:///{data_dir / 'nanobanana.db'}"
        started = time.perf_counter()
        asyncio.run(seed(url, "bench", args.images, _thumbs(data_dir / "images")))
        print(f"{args.images:,} images inserted in {time.perf_counter() - started:.1f} s")
        _, body = harness.http("GET", f"{proc.url}/api/images?limit=200", token=token)
        cursor = json.loads(body)["next_cursor"]
        for _ in range(args.images // 400):  # halfway down
            _, body = harness.http(
                "GET", f"{proc.url}/api/images?limit=200&cursor={cursor}", token=token
            )
            cursor = json.loads(body)["next_cursor"] or cursor
        paths = {
            "first page (30)": "/api/images?limit=30",
            "halfway down, by cursor (30)": f"/api/images?limit=30&cursor={cursor}",
            "ratio 16:9 (30)": "/api/images?limit=30&aspect_ratio=16:9",
            "favourites (30)": "/api/images?limit=30&favourite=true",
            "oldest first (30)": "/api/images?limit=30&sort=oldest",
            "facets": "/api/images/facets",
        }
        api = _time_api(proc.url, token, paths, args.requests)
        db = "PostgreSQL" if pg_url else "SQLite"
        print(f"\nAPI on {db}, {args.images:,} images, c=1, {args.requests} requests each")
        print(f"{'query':34} {'p50 ms':>8} {'p90 ms':>8}")
        for name, lat in api.items():
            p90 = statistics.quantiles(lat, n=10)[-1]
            print(f"{name:34} {statistics.median(lat):8.1f} {p90:8.1f}")
        print(
            "\nThe page in Chromium (1440x900), ms from navigation start, median (range); "
            f"target < {PAGE_TARGET_MS:g} ms"
        )
        print(f"{'load':40} {'first 30 tiles shown':>20} {'thumbnails in view':>24}")
        for how, signed_in in (
            ("form sign-in", None),
            ("token set by a script", token),
        ):
            first = [_time_page(proc.url, signed_in, 1)[0] for _ in range(args.first - 1)]
            last = _time_page(proc.url, signed_in, 1 + args.loads)
            first.append(last[0])
            print(_row(f"{how}: first visit ({len(first)} browsers)", first))
            if last[1:]:
                print(_row(f"{how}: later loads ({len(last) - 1})", last[1:]))
    finally:
        proc.stop()
        if pg_url:
            asyncio.run(_recreate_pg("nanobanana_bench_gallery", drop=True))
    return 0


async def _recreate_pg(name: str, drop: bool = False) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
