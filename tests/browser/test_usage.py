"""The usage page: each user sees their own spend and images by day, model and provider, and
downloads them as CSV; an administrator sees every account's, or one account's."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import OPENROUTER_KEY, Browsing, LiveServer, sign_in

pytestmark = pytest.mark.browser

MODEL = "gemini-3.1-flash-image"


def usd(value: float) -> str:
    """As the page writes an amount below a dollar: up to four decimals, at least two."""
    return "$" + re.sub(r"0{1,2}$", "", f"{value:.4f}")


@dataclass
class Team:
    server: LiveServer
    admin: tuple[str, str]
    ann: tuple[str, str]
    bob: tuple[str, str]
    costs: dict[str, float]


@pytest.fixture(scope="module")
def team(team_server: LiveServer) -> Team:
    """An admin (the first account), ann with two generations (three images) and bob with
    one."""
    server = team_server
    admin, ann, bob = server.new_user("boss"), server.new_user("ann"), server.new_user("bob")
    costs = {}
    for name, (_, token), runs in (("ann", ann, (2, 1)), ("bob", bob, (1,))):
        server.save_key(token, "openrouter", OPENROUTER_KEY)
        done = [
            server.generate(token, prompt=f"a heron for {name}", model=MODEL, num_images=n)
            for n in runs
        ]
        costs[name] = sum(d["cost"] for d in done)
    return Team(server, admin, ann, bob, costs)


def _open(page: Any, server: LiveServer, user: tuple[str, str], query: str = "") -> None:
    sign_in(page, server, *user)
    page.goto(f"{server.url}/usage{query}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("body")).not_to_have_attribute("data-loading", "true")


def test_a_user_sees_her_own_usage_and_downloads_it(web: Browsing, team: Team) -> None:
    page, server = web.page, team.server
    cost = team.costs["ann"]
    _open(page, server, team.ann)
    expect(page.get_by_role("link", name="Usage")).to_have_attribute("aria-current", "page")
    total = page.locator("#usage-total")
    expect(total).to_contain_text(f"{usd(cost)} spent on 3 images in 2 generations")
    expect(page.locator("#usage-who-field")).to_be_hidden()
    expect(page.locator("#usage-users-section")).to_be_hidden()

    # The chart: a bar per day of the last 30 (UTC); only today's stands.
    bars = page.locator("#usage-chart rect.usage-bar")
    expect(bars).to_have_count(30)
    heights = [float(h) for h in bars.evaluate_all("bs => bs.map(b => b.getAttribute('height'))")]
    assert heights[-1] > 0 and not any(heights[:-1])
    expect(bars.last.locator("title")).to_contain_text("3 images, 2 generations")
    caption = page.locator("#usage-chart-caption")
    expect(caption).to_contain_text(f"the most, {usd(cost)}, on")
    page.get_by_label("Images per day").check()
    expect(caption).to_contain_text("Images per day from")
    expect(caption).to_contain_text("the most, 3 images, on")

    model_row = page.locator("#usage-models tbody tr")
    expect(model_row).to_have_count(1)
    expect(model_row).to_contain_text(MODEL)
    expect(model_row.locator("td").last).to_have_text(usd(cost))
    expect(page.locator("#usage-providers tbody tr")).to_contain_text("OpenRouter")

    # The CSV holds the same money.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    path = download.value.path()
    assert download.value.suggested_filename.startswith("nanobanana-usage-")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(cost)
    assert sum(int(r["images"]) for r in rows) == 3
    assert "username" not in rows[0]

    # A range that ends before it starts says what to fix, on the page.
    page.get_by_label("To", exact=True).fill("2026-01-01")
    page.get_by_label("From", exact=True).fill("2026-02-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#usage-message")).to_contain_text("before it starts")
    expect(page.get_by_label("To", exact=True)).to_be_focused()

    # A range with nothing in it.
    page.get_by_label("From", exact=True).fill("2026-01-01")
    page.get_by_role("button", name="Show").click()
    expect(total).to_contain_text("$0.00 spent on 0 images in 0 generations")
    expect(page).to_have_url(re.compile(r"/usage\?from=2026-01-01&to=2026-01-01$"))
    expect(page.locator("#usage-models tbody")).to_have_text("Nothing in this range.")


def test_an_admin_sees_every_account_and_one_at_a_time(web: Browsing, team: Team) -> None:
    page, server = web.page, team.server
    _open(page, server, team.admin)
    expect(page.locator("#usage-users-section")).to_be_visible()
    both = team.costs["ann"] + team.costs["bob"]
    expect(page.locator("#usage-total")).to_contain_text(f"{usd(both)} spent on 4 images")
    for name in ("ann", "bob"):
        row = page.locator("#usage-users tbody tr", has_text=getattr(team, name)[0])
        expect(row.locator("td").last).to_have_text(usd(team.costs[name]))

    who = page.get_by_label("Whose")
    who.select_option(label=team.ann[0])
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#usage-total")).to_contain_text(f"{usd(team.costs['ann'])} spent on 3")
    expect(page.locator("#usage-users tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"&user=[0-9a-f]{32}$"))
    # The address keeps the view: a reload shows the same account.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(who).to_have_value(re.compile(r"^[0-9a-f]{32}$"))
    expect(page.locator("#usage-total")).to_contain_text(f"{usd(team.costs['ann'])} spent on 3")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert {r["username"] for r in rows} == {team.ann[0]}
