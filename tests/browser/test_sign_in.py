"""Where the sign-in page sends the browser afterwards: only to a path of this origin."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, Browsing, LiveServer


def sign_in_with_next(web: Browsing, server: LiveServer, raw_next: str) -> str:
    """Sign in on /login?next=<raw_next> (already URL-encoded); the URL it lands on."""
    username, _ = server.new_user("next")
    page = web.page
    page.goto(f"{server.url}/login?next={raw_next}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => !location.pathname.startsWith('/login')")
    return str(page.url)


@pytest.mark.parametrize(
    "raw_next",
    [
        "/%5Cevil.example:8080/x",  # /\evil.example:8080/x
        "/%09/evil.example/x",  # a tab, which URL parsing drops: //evil.example/x
        "//evil.example/x",
        "/%2F/evil.example/x",
        "https://evil.example/x",
        "javascript:alert(1)",
        "/%0A/evil.example/x",
    ],
)
def test_next_never_leaves_the_origin(web: Browsing, server: LiveServer, raw_next: str) -> None:
    landed = sign_in_with_next(web, server, raw_next)
    assert landed.startswith(server.url + "/"), landed
    assert "evil.example" not in urllib.parse.urlsplit(landed).netloc


def test_next_keeps_a_path_of_this_origin(web: Browsing, server: LiveServer) -> None:
    landed = sign_in_with_next(web, server, urllib.parse.quote("/gallery?page=2", safe=""))
    assert landed == f"{server.url}/gallery?page=2"
    expect(web.page.locator("#account")).to_be_visible()
    assert re.search(r"/gallery\?page=2$", landed)
