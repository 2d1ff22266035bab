"""The edit thread in a real browser: a session of three turns with a branch at turn 1, the
tree on the page, and the same tree in the API."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import GOOGLE_KEY, OPENROUTER_KEY, Browsing, LiveServer, sign_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("provider", ["openrouter", "google"])
def test_three_turns_and_a_branch_from_the_page(
    web: Browsing, server: LiveServer, provider: str
) -> None:
    page = web.page
    username, token = server.new_user("editor")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    server.save_key(token, "google", GOOGLE_KEY)
    with server.client(token) as c:
        r = c.put(
            "/api/settings/defaults",
            json={"provider": provider, "model": "gemini-3-pro-image"},
        )
        r.raise_for_status()
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/edit")
    page.get_by_role("button", name="New session").click()
    page.wait_for_url(re.compile(r"/edit/[0-9a-f]{32}$"))
    session_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#continues")).to_have_text("Starts a new first turn.")

    def send(text: str) -> None:
        page.get_by_label("Next instruction").fill(text)
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#turn-tree .turn", has_text=text)).to_have_attribute(
            "aria-pressed", "true", timeout=30_000
        )
        expect(page.locator("#stage-img")).to_have_attribute("src", re.compile("^blob:"))

    send("a red fox in the snow")
    expect(page.locator("#edit-title")).to_have_text("a red fox in the snow")
    send("make the sky purple")
    expect(page.locator("#continues")).to_contain_text("2. make the sky purple")
    # Branch: back to turn 1, and a new instruction from there.
    page.locator("#turn-tree .turn", has_text="1. a red fox").click()
    expect(page.locator("#continues")).to_contain_text("1. a red fox in the snow")
    send("make it autumn")

    # On the page: turns 2 and 3 both under turn 1.
    first = page.locator("#turn-tree > li")
    expect(first).to_have_count(1)
    expect(first.locator(":scope > ol > li > .turn")).to_have_text(
        ["2. make the sky purple", "3. make it autumn"]
    )
    # In the API: the same tree, each turn served by the chosen provider.
    with server.client(token) as c:
        tree = c.get(f"/api/sessions/{session_id}").json()
    one, _, three = tree["turns"]
    assert [t["parent_turn_id"] for t in tree["turns"]] == [None, one["id"], one["id"]]
    assert {t["provider"] for t in tree["turns"]} == {provider}
    assert tree["latest_turn_id"] == three["id"]

    # The list of sessions links to it.
    page.goto(f"{server.url}/edit")
    link = page.get_by_role("link", name="a red fox in the snow")
    expect(link).to_have_attribute("href", f"/edit/{session_id}")
    expect(page.locator("#session-list")).to_contain_text("3 turns")


def test_someone_elses_session_is_not_shown(web: Browsing, server: LiveServer) -> None:
    _, owner = server.new_user("owner")
    with server.client(owner) as c:
        session_id = c.post("/api/sessions", json={"title": "private"}).json()["id"]
    username, token = server.new_user("other")
    sign_in(web.page, server, username, token)
    web.console.allow("404")
    web.page.goto(f"{server.url}/edit/{session_id}")
    expect(web.page.locator("#edit-error")).to_be_visible()
    expect(web.page.locator("#edit-error")).to_contain_text(re.compile("session", re.I))
    expect(web.page.locator("#edit-title")).to_have_text("Edit")


def test_the_controls_work_while_the_page_is_still_loading(
    web: Browsing, server: LiveServer
) -> None:
    """A click on "New session" while the list of sessions is still on its way starts the
    session (a loaded machine once lost that click), and Send waits for the session."""
    page = web.page
    username, token = server.new_user("hasty")
    sign_in(page, server, username, token)
    held: list[object] = []

    def hold_the_list(route: Any) -> None:
        if route.request.method == "GET":
            held.append(route)  # never answered: the list stays loading
        else:
            route.continue_()

    page.route(re.compile(r"/api/sessions$"), hold_the_list)
    page.goto(f"{server.url}/edit")
    page.get_by_role("button", name="New session").click()
    page.wait_for_url(re.compile(r"/edit/[0-9a-f]{32}$"))
    assert len(held) == 1

    session_id = page.url.rsplit("/", 1)[1]
    page.unroute(re.compile(r"/api/sessions$"))
    page.route(re.compile(rf"/api/sessions/{session_id}$"), lambda route: held.append(route))
    page.reload()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    assert len(held) == 2
