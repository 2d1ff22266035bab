"""Usage: totals equal the recorded costs, grouped by day, model, provider and user, the same
as JSON and CSV, kept when generations are deleted; nobody sees another user's usage."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from nanobanana.server import usage
from nanobanana.server.db.models import User

from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Api

pytestmark = pytest.mark.timeout(180)

GEN = "/api/nano-banana/generate"
FLASH = "gemini-3.1-flash-image"
OLDER = "gemini-2.5-flash-image"


async def _team(api: Api) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """An admin (the first account) and two users with keys of both providers."""
    admin = await api.user("admin")
    ann, bob = await api.user("ann"), await api.user("bob")
    for h in (ann, bob):
        await api.put_key(h, "openrouter", OPENROUTER_CANARY)
        await api.put_key(h, "google", GOOGLE_CANARY)
    return admin, ann, bob


async def _get(api: Api, h: dict[str, str], path: str, **params: Any) -> Any:
    r = await api.client.get(path, params=params, headers=h)
    assert r.status_code == 200, r.text
    return r.json() if params.get("format") != "csv" else r


async def _generate(api: Api, h: dict[str, str], **body: Any) -> dict[str, Any]:
    body = {"prompt": f"usage {uuid.uuid4().hex[:8]}", **body}
    r = await api.client.post(GEN, json=body, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _jobs(api: Api, h: dict[str, str]) -> list[dict[str, Any]]:
    return list((await _get(api, h, "/api/generations", limit=100))["items"])


def _sum(items: list[dict[str, Any]], key: str) -> float:
    return sum(item[key] for item in items)


async def test_usage_totals_are_the_recorded_costs_by_day_model_and_provider(
    db_api: Api,
) -> None:
    api = db_api
    _, ann, _ = await _team(api)
    real_now = api.services.now
    today = real_now().date()
    # Three days ago and today, through both providers and two models.
    api.services.now = lambda: real_now() - timedelta(days=3)
    try:
        await _generate(api, ann, model=OLDER)
    finally:
        api.services.now = real_now
    await _generate(api, ann, model=FLASH, num_images=2)
    await _generate(api, ann, model=FLASH, provider="google")

    jobs = await _jobs(api, ann)
    assert len(jobs) == 3 and all(j["cost"] for j in jobs)
    mine = await _get(api, ann, "/api/usage")
    assert mine["from"] == (today - timedelta(days=29)).isoformat()
    assert mine["to"] == today.isoformat() and mine["timezone"] == "UTC"
    assert mine["users"] is None
    total = mine["total"]
    assert total["cost_usd"] == pytest.approx(_sum(jobs, "cost"))
    assert total["generations"] == 3 and total["images"] == 4 and total["held_usd"] == 0

    days = {d["date"]: d for d in mine["days"]}
    assert len(days) == 30  # every day of the range, the empty ones too
    older = next(j for j in jobs if j["model"] == OLDER)
    three_ago = (today - timedelta(days=3)).isoformat()
    assert days[three_ago]["cost_usd"] == pytest.approx(older["cost"])
    assert days[three_ago]["images"] == 1 and days[three_ago]["generations"] == 1
    assert days[today.isoformat()]["images"] == 3
    assert sum(d["cost_usd"] for d in mine["days"]) == pytest.approx(total["cost_usd"])
    assert days[(today - timedelta(days=1)).isoformat()]["generations"] == 0

    models = {m["model"]: m for m in mine["models"]}
    assert set(models) == {FLASH, OLDER}
    assert models[FLASH]["images"] == 3 and models[FLASH]["generations"] == 2
    flash = [j for j in jobs if j["model"] == FLASH]
    assert models[FLASH]["cost_usd"] == pytest.approx(_sum(flash, "cost"))
    providers = {p["provider"]: p for p in mine["providers"]}
    assert set(providers) == {"openrouter", "google"}
    google = [j for j in jobs if j["provider"] == "google"]
    assert len(google) == 1
    assert providers["google"]["cost_usd"] == pytest.approx(google[0]["cost"])
    assert [m["cost_usd"] for m in mine["models"]] == sorted(
        (m["cost_usd"] for m in mine["models"]), reverse=True
    )

    # A range: only the days asked for.
    r = await _get(api, ann, "/api/usage", **{"from": three_ago, "to": three_ago})
    assert [d["date"] for d in r["days"]] == [three_ago]
    assert r["total"]["cost_usd"] == pytest.approx(older["cost"])

    # The CSV holds the same lines, one per day, provider and model.
    response = await _get(api, ann, "/api/usage", format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    assert "attachment;" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(usage.CSV_COLUMNS)
    assert len(rows) == 3  # (3 days ago, OLDER, openrouter), today x (openrouter, google)
    assert sum(float(row["cost_usd"]) for row in rows) == pytest.approx(total["cost_usd"])
    assert sum(int(row["images"]) for row in rows) == 4

    # Deleting a generation gives back neither money nor the images it made.
    r = await api.client.delete(f"/api/generations/{older['id']}", headers=ann)
    assert r.status_code == 204, r.text
    after = await _get(api, ann, "/api/usage")
    assert after["total"] == total
    assert after["days"] == mine["days"]


async def test_nobody_sees_another_users_usage_and_the_admin_sees_everyone(api: Api) -> None:
    admin, ann, bob = await _team(api)
    await _generate(api, ann, num_images=2)
    await _generate(api, bob)
    costs = {name: _sum(await _jobs(api, h), "cost") for name, h in (("ann", ann), ("bob", bob))}

    for name, h in (("ann", ann), ("bob", bob)):
        mine = await _get(api, h, "/api/usage")
        assert mine["total"]["cost_usd"] == pytest.approx(costs[name])
        assert mine["users"] is None
        assert {line.get("username") for line in mine["lines"]} == {None}
        # No parameter reaches another account's usage; the admin's view is the admin's.
        r = await api.client.get("/api/usage", params={"user_id": "x"}, headers=h)
        assert r.status_code == 422, r.text
        r = await api.client.get("/api/admin/usage", headers=h)
        assert r.status_code == 403, r.text
    assert (await _get(api, admin, "/api/usage"))["total"]["generations"] == 0

    everyone = await _get(api, admin, "/api/admin/usage")
    assert everyone["user_id"] is None
    users = {u["username"]: u for u in everyone["users"]}
    assert set(users) == {"ann", "bob"}
    assert users["ann"]["cost_usd"] == pytest.approx(costs["ann"])
    assert users["ann"]["images"] == 2 and users["bob"]["images"] == 1
    assert everyone["total"]["cost_usd"] == pytest.approx(costs["ann"] + costs["bob"])
    assert everyone["users"][0]["username"] == "ann"  # largest spend first
    ann_id = users["ann"]["user_id"]

    one = await _get(api, admin, "/api/admin/usage", user_id=ann_id)
    assert one["user_id"] == ann_id
    assert one["total"] == {key: users["ann"][key] for key in one["total"]}
    assert one["total"]["cost_usd"] == pytest.approx(costs["ann"])
    assert [u["username"] for u in one["users"]] == ["ann"]

    rows = list(
        csv.DictReader(io.StringIO((await _get(api, admin, "/api/admin/usage", format="csv")).text))
    )
    assert {row["username"] for row in rows} == {"ann", "bob"}
    assert sum(float(row["cost_usd"]) for row in rows) == pytest.approx(sum(costs.values()))

    # An account deleted since: its spend stays in the service's usage, under no name.
    async with api.services.sessionmaker() as session:
        await session.execute(delete(User).where(User.username == "bob"))
        await session.commit()
    later = await _get(api, admin, "/api/admin/usage")
    assert later["total"] == everyone["total"]
    assert {u["username"] for u in later["users"]} == {"ann", usage.DELETED}


async def test_a_running_generation_is_held_until_it_ends(api: Api) -> None:
    _, ann, _ = await _team(api)
    r = await api.client.post(
        "/api/generations",
        json={"prompt": "[emulator:latency:1.5] slow", "model": FLASH},
        headers=ann,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    during = (await _get(api, ann, "/api/usage"))["total"]
    assert during["generations"] == 1 and during["cost_usd"] == 0
    assert during["held_usd"] > 0
    events = await api.client.get(f"/api/generations/{job_id}/events", headers=ann)
    assert "event: done" in events.text  # the stream ends with the job
    job = await _get(api, ann, f"/api/generations/{job_id}")
    after = (await _get(api, ann, "/api/usage"))["total"]
    assert after == {"generations": 1, "images": 1, "cost_usd": job["cost"], "held_usd": 0}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"from": "2026-12-07", "to": "2026-12-01"}, "before it starts"),
        ({"from": "2025-01-01", "to": "2026-12-01"}, "at most 366 days"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"format": "xlsx"}, "format"),
        ({"since": "2026-12-01"}, "since"),
    ],
)
async def test_a_bad_range_says_what_to_fix(api: Api, params: dict[str, str], says: str) -> None:
    h = await api.user("ann")
    r = await api.client.get("/api/usage", params=params, headers=h)
    assert r.status_code == 422, r.text
    assert says in r.json()["error"]["message"]


def test_the_csv_cannot_carry_a_formula_into_a_spreadsheet() -> None:
    line = {"date": date(2026, 12, 1), "user_id": "u", "username": "=HYPERLINK(1)"}
    line |= {"provider": "openrouter", "model": "+m", "generations": 1, "images": 0}
    line |= {"cost_usd": 0.0390000001, "held_usd": 0.0}
    text = usage.to_csv({"users": [], "lines": [line]})
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["date", "user_id", "username"]
    assert rows[1][2] == "'=HYPERLINK(1)" and rows[1][4] == "'+m"
    assert rows[1][7:] == ["0.039", "0"]
