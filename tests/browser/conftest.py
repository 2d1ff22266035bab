"""Browser tests: the real app on a loopback port, the emulator upstream, Debian's Chromium.

Playwright's own browser download needs the outside network, so the tests drive
``/usr/bin/chromium`` (installed by ``scripts/browser.sh``, which ``make test`` runs first).
When it is missing the tests fail with the command that fixes it; they never skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support import ServerThread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"
OPENROUTER_KEY = "sk-or-v1-CANARY0000000000000000000000000000000000000000000000000000OR42"
GOOGLE_KEY = "AIzaCANARY00000000000000000000000000GG42"
#: Where screenshots go: docs/screenshots with `make screenshots`, else a temporary folder.
SCREENSHOTS_ENV = "NANOBANANA_SCREENSHOTS_DIR"


# --------------------------------------------------------------------------- live server
@dataclass
class LiveServer:
    url: str
    demo: bool
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def new_user(self, prefix: str = "user") -> tuple[str, str]:
        """Register and sign in a fresh user over the API: (username, token)."""
        username = f"{prefix}-{uuid.uuid4().hex[:8]}"
        with self.client() as c:
            c.post("/api/auth/register", json={"username": username, "password": PASSWORD})
            r = c.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            r.raise_for_status()
            token = r.json()["access_token"]
        self.tokens[username] = token
        return username, token

    def save_key(self, token: str, provider: str, key: str) -> None:
        with self.client(token) as c:
            c.put(f"/api/settings/keys/{provider}", json={"api_key": key}).raise_for_status()

    def generate(self, token: str, **body: Any) -> dict[str, Any]:
        """Run one generation through the synchronous seed endpoint."""
        with self.client(token) as c:
            r = c.post("/api/nano-banana/generate", json=body, timeout=60)
            r.raise_for_status()
            return dict(r.json())


@contextlib.contextmanager
def _serve(settings: Any) -> Iterator[str]:
    from nanobanana.server.app import create_app

    with ServerThread(create_app(settings)) as srv:
        yield srv.url


def _settings(
    data_dir: Path, *, demo: bool, emulator: Any | None, google: Any | None = None
) -> Any:
    from nanobanana.server.settings import Settings

    kwargs: dict[str, Any] = {
        "data_dir": data_dir,
        # Explicit, so a NANOBANANA_DATABASE_URL in the environment cannot redirect these tests.
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'nanobanana.db'}",
        "demo": demo,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "openrouter_api_key": None,
        "gemini_api_key": None,
    }
    if emulator is not None:
        kwargs["openrouter_base_url"] = emulator.openrouter_url
        kwargs["gemini_base_url"] = (google or emulator).gemini_url
    return Settings(**kwargs)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, emulator: Any) -> Iterator[LiveServer]:
    """The service outside demo mode, its providers pointed at the suite's emulator."""
    data = tmp_path_factory.mktemp("server-data")
    with _serve(_settings(data, demo=False, emulator=emulator)) as url:
        yield LiveServer(url=url, demo=False)


@pytest.fixture(scope="session")
def quota_server(tmp_path_factory: pytest.TempPathFactory, emulator: Any) -> Iterator[LiveServer]:
    """Google answers every call with a per-minute quota error; OpenRouter works.

    A ``[emulator:quota]`` marker in the prompt would reach both providers (the fallback sends
    the same prompt), so the Google side is a second emulator whose default scenario is quota.
    """
    from nanobanana.emulator import EmulatorConfig, EmulatorServer

    data = tmp_path_factory.mktemp("quota-data")
    with EmulatorServer(EmulatorConfig(default_scenario="quota:0.05")) as google:
        settings = _settings(data, demo=False, emulator=emulator, google=google)
        with _serve(settings) as url:
            yield LiveServer(url=url, demo=False)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The service in demo mode: users without a key get synthetic images."""
    data = tmp_path_factory.mktemp("demo-data")
    with _serve(_settings(data, demo=True, emulator=None)) as url:
        yield LiveServer(url=url, demo=True)


# ------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Per module, not per session: Playwright's sync API owns an event loop while it is open,
    # and the rest of the suite's async tests should not run beside it.
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Install it with `bash scripts/browser.sh` (make test runs it)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # launch() gives every run a fresh, temporary user-data dir.
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Console errors and uncaught exceptions of one page; the test ends with none unexpected."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@dataclass
class Browsing:
    page: Any
    console: Console
    context: Any


def _open(browser: Any, viewport: dict[str, int]) -> Browsing:
    context = browser.new_context(viewport=viewport, device_scale_factor=1, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    console = Console()
    page.on(
        "console",
        lambda m: (
            console.errors.append(f"console.{m.type}: {m.text}")
            if m.type in ("error", "assert")
            else None
        ),
    )
    page.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
    return Browsing(page=page, console=console, context=context)


@pytest.fixture
def web(browser: Any) -> Iterator[Browsing]:
    """A fresh desktop-sized browser context (no storage shared with other tests)."""
    b = _open(browser, DESKTOP)
    try:
        yield b
        assert b.console.unexpected() == [], "errors in the browser console"
    finally:
        b.context.close()


@pytest.fixture
def open_browser(browser: Any) -> Iterator[Any]:
    """Open more contexts at a chosen viewport; each is closed and checked at the end."""
    opened: list[Browsing] = []

    def make(viewport: dict[str, int] = DESKTOP) -> Browsing:
        b = _open(browser, viewport)
        opened.append(b)
        return b

    try:
        yield make
        for b in opened:
            assert b.console.unexpected() == [], "errors in the browser console"
    finally:
        for b in opened:
            b.context.close()


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory, emulator: Any) -> Iterator[LiveServer]:
    """A service of the module's own, so that the first account registered there is its
    admin."""
    data = tmp_path_factory.mktemp("team-data")
    with _serve(_settings(data, demo=False, emulator=emulator)) as url:
        yield LiveServer(url=url, demo=False)


def sign_in(page: Any, server: LiveServer, username: str, token: str) -> None:
    """Store a session the way the sign-in page does, without typing it (fast set-up)."""
    page.goto(f"{server.url}/login")
    page.evaluate(
        "([token, username]) => { localStorage.setItem('token', token); "
        "localStorage.setItem('nanobanana.session', "
        "JSON.stringify({expires_at: null, username})); }",
        [token, username],
    )


def sign_in_with_form(page: Any, server: LiveServer, username: str) -> None:
    """Sign in as a person does, through the sign-in form: the browser then also holds the
    session cookie."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))
    # The page signing in lands on (the generator, with its recent images) has finished
    # loading: nothing it asks for can be taken for what a test's next page asks for.
    page.wait_for_load_state("networkidle")


def open_generator(
    page: Any, server: LiveServer, prefix: str, keys: dict[str, str] | None = None
) -> tuple[str, str]:
    """A new user with ``keys`` (provider: key) saved, signed in, on the generator page once
    it is ready: (username, token)."""
    from playwright.sync_api import expect

    username, token = server.new_user(prefix)
    for provider, key in (keys or {}).items():
        server.save_key(token, provider, key)
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    return username, token


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get(SCREENSHOTS_ENV)
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------- every page
@pytest.fixture(scope="module")
def site_account(demo_server: LiveServer) -> dict[str, Any]:
    """A demo user with something on every page of ``PAGES``: two generations (one of two
    images) and an editing session with a turn."""
    username, token = demo_server.new_user("site")
    first = demo_server.generate(token, prompt="a lighthouse at dusk", aspect_ratio="16:9")
    demo_server.generate(token, prompt="an otter reading", aspect_ratio="3:4", num_images=2)
    with demo_server.client(token) as c:
        session = c.post("/api/sessions", json={"title": "boats"}).json()["id"]
        c.post(f"/api/sessions/{session}/turns", json={"prompt": "a paper boat"})
    return {"username": username, "token": token, "generation": first["id"], "session": session}


def _ready(selector: str, attr: str | None = None, value: str = "true") -> Callable[[Any], None]:
    def wait(page: Any) -> None:
        from playwright.sync_api import expect

        locator = page.locator(selector).first
        if attr:
            expect(locator).to_have_attribute(attr, value)
        else:
            expect(locator).to_be_visible()

    return wait


def _open_viewer(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator(".tile.loaded").first).to_be_visible()
    page.locator(".tile").first.get_by_role("link").click()
    expect(page.locator("#viewer-facts dt").first).to_be_visible()


#: Every page (name, address for ``site_account``, signed in, wait until it has loaded).
PAGES: list[tuple[str, Callable[[dict[str, Any]], str], bool, Callable[[Any], None]]] = [
    ("login", lambda a: "/login", False, _ready("#auth-form")),
    ("register", lambda a: "/register", False, _ready("#auth-form")),
    ("generator", lambda a: "/", True, _ready("#gen-form", "data-ready")),
    ("gallery", lambda a: "/gallery", True, _ready("#gallery", "data-loaded")),
    ("viewer", lambda a: "/gallery", True, _open_viewer),
    ("detail", lambda a: f"/gallery/{a['generation']}", True, _ready("#detail-params dt")),
    ("edit", lambda a: "/edit", True, _ready("#session-list li")),
    ("session", lambda a: f"/edit/{a['session']}", True, _ready("#stage-img[src^='blob:']")),
    ("settings", lambda a: "/settings", True, _ready("body", "data-ready")),
    ("usage", lambda a: "/usage", True, _ready("body", "data-ready")),
]
