"""The browser-console snippets, run character for character after a sign-in through the UI.

The design notes test the service from the console of its page with
``localStorage.getItem('token')``; the README and docs/server.md carry their own snippets. Each
runs here as written, and after "Sign out" the same call must fail with a 401 that says how to
sign in.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import OPENROUTER_KEY, PASSWORD, Browsing, LiveServer

ROOT = Path(__file__).resolve().parents[2]

#: The design notes' console test, as they write it.
DESIGN_NOTE_SNIPPET = """\
const token = localStorage.getItem('token');
fetch('/api/nano-banana/generate', {
  method: 'POST',
  headers: {
    'Content-Type': 'application/json',
    'Authorization': `Bearer ${token}`
  },
  body: JSON.stringify({
    prompt: 'A beautiful sunset over mountains',
    negative_prompt: 'blurry, low quality',
    num_images: 1,
    provider: 'openrouter'
  })
}).then(r => r.json()).then(console.log);
"""


def documented_snippets() -> list[tuple[str, str]]:
    """Every ``js`` block of README.md and docs/ that reads the token from localStorage."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```js\n(.*?)```", path.read_text(), flags=re.DOTALL)
        found += [
            (f"{path.name}#{i}", b) for i, b in enumerate(blocks) if "localStorage.getItem" in b
        ]
    return found


def run_in_console(page: Any, snippet: str) -> Any:
    """Run ``snippet`` as the console would (top-level await allowed); return what it logged
    with console.log, or the value of ``{images, prompt, model}`` when it declares them."""
    logged: list[Any] = []
    page.on("console", lambda m: logged.append(m) if m.type == "log" else None)
    declares = re.search(r"const \{ images, prompt, model \}", snippet) is not None
    tail = "return { images, prompt, model };" if declares else ""
    result = page.evaluate(f"async () => {{\n{snippet}\n{tail}\n}}")
    if declares:
        return result
    page.wait_for_timeout(100)
    deadline = 300
    while not logged and deadline:
        page.wait_for_timeout(100)
        deadline -= 1
    assert logged, "the snippet logged nothing"
    return logged[0].args[0].json_value()


def sign_in_through_the_ui(web: Browsing, server: LiveServer) -> str:
    username, token = server.new_user("console")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    page = web.page
    page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    return username


def assert_png(b64: str) -> None:
    assert base64.b64decode(b64, validate=True).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_design_notes_snippet_works_as_written(web: Browsing, server: LiveServer) -> None:
    sign_in_through_the_ui(web, server)
    answer = run_in_console(web.page, DESIGN_NOTE_SNIPPET)
    assert {"images", "prompt", "model"} <= set(answer)
    assert len(answer["images"]) == 1
    assert_png(answer["images"][0])
    assert answer["prompt"] == "A beautiful sunset over mountains"


@pytest.mark.parametrize(("where", "snippet"), documented_snippets())
def test_the_documented_snippets_work_as_written(
    web: Browsing, server: LiveServer, where: str, snippet: str
) -> None:
    sign_in_through_the_ui(web, server)
    answer = run_in_console(web.page, snippet)
    assert answer["images"], where
    assert_png(answer["images"][0])
    assert answer["prompt"] == "a banana" and answer["model"]


def test_after_sign_out_the_snippet_gets_a_401_that_says_how_to_sign_in(
    web: Browsing, server: LiveServer
) -> None:
    sign_in_through_the_ui(web, server)
    page = web.page
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login\?signed_out=1$"))
    assert page.evaluate("localStorage.getItem('token')") is None
    answer = run_in_console(page, DESIGN_NOTE_SNIPPET)
    assert answer["error"]["code"] == "unauthorized"
    message = answer["error"]["message"]
    assert "not signed in" in message and "/login" in message
    # The browser logs the failed request itself; that is what a 401 looks like in a console.
    web.console.allow(r"401")


def test_the_documented_snippets_exist() -> None:
    assert {w.split("#")[0] for w, _ in documented_snippets()} == {"README.md", "server.md"}


def test_a_session_stored_in_the_earlier_shape_stays_signed_in(
    web: Browsing, server: LiveServer
) -> None:
    username, token = server.new_user("earlier")
    page = web.page
    page.goto(f"{server.url}/login")
    page.evaluate(
        "([token, username]) => localStorage.setItem('nanobanana.session', "
        "JSON.stringify({token, expires_at: null, username}))",
        [token, username],
    )
    page.goto(f"{server.url}/gallery")
    expect(page.locator("#account-name")).to_have_text(username)
    assert page.evaluate("localStorage.getItem('token')") == token
    stored = page.evaluate("JSON.parse(localStorage.getItem('nanobanana.session'))")
    assert stored == {"expires_at": None, "username": username}
