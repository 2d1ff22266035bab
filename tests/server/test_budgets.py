"""Spending caps: refused before any upstream call, reconciled with the real cost after it,
kept when generations are deleted, and held under concurrency, per user and service-wide."""

from __future__ import annotations

import asyncio
import base64
import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from nanobanana.emulator import EmulatorServer
from nanobanana.server.settings import Settings

from ..support import png_bytes
from .conftest import OPENROUTER_CANARY, Api, running, upstream_requests

pytestmark = pytest.mark.timeout(180)

GEN = "/api/nano-banana/generate"
MODEL = "gemini-3.1-flash-image"
#: Found by discovery only: no price in the catalog.
UNPRICED = "black-forest-labs/flux.2-klein-4b"


def _price(api: Api, size: str = "1K") -> float:
    """The catalog's price of one image: what a request is estimated at, per image."""
    spec = api.services.catalog.find(MODEL)
    price = spec.pricing.image_cost(size)
    assert price is not None and price > 0
    return float(price)


def _estimate(api: Api, prompt: str, *, n: float = 1, images: int = 0) -> float:
    """What a request is estimated at, worked out here from the model's published prices:
    per image, its output tokens, plus the prompt (a token per four characters) and each input
    image's tokens at the input price."""
    p = api.services.catalog.find(MODEL).pricing
    assert p.input_per_mtok and p.input_image_tokens
    tokens_in = math.ceil(len(prompt) / 4) + images * p.input_image_tokens
    return n * (_price(api) + tokens_in * p.input_per_mtok / 1_000_000)


async def _team(api: Api) -> tuple[dict[str, str], dict[str, str], str]:
    """An admin (the first account) and a user with an OpenRouter key: their headers, and the
    user's id."""
    admin = await api.user("admin")
    user = await api.user("ann")
    await api.put_key(user, "openrouter", OPENROUTER_CANARY)
    r = await api.client.get("/api/admin/users", headers=admin)
    ann = next(u["id"] for u in r.json()["users"] if u["username"] == "ann")
    return admin, user, ann


async def _put(api: Api, h: dict[str, str], path: str, **caps: Any) -> dict[str, Any]:
    r = await api.client.put(path, json=caps, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _get(api: Api, h: dict[str, str], path: str) -> dict[str, Any]:
    r = await api.client.get(path, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _generate(api: Api, h: dict[str, str], prompt: str, **body: Any) -> Any:
    return await api.client.post(GEN, json={"prompt": prompt, "model": MODEL, **body}, headers=h)


async def test_a_user_cap_refuses_before_any_call_and_counts_the_real_cost(
    db_api: Api, emulator: EmulatorServer
) -> None:
    api = db_api
    admin, h, ann = await _team(api)
    price = _price(api)
    path = f"/api/admin/users/{ann}/budget"
    body = await _put(api, admin, path, daily_usd=round(price * 1.5, 6))
    assert body["scope"] == "user" and body["user_id"] == ann
    assert body["day"]["spent_usd"] == 0 and body["month"]["cap_usd"] is None

    first = f"cap-first-{uuid.uuid4().hex[:8]}"
    r = await _generate(api, h, first)
    assert r.status_code == 200, r.text
    jobs = (await _get(api, h, "/api/generations"))["items"]
    assert len(jobs) == 1
    cost = jobs[0]["cost"]
    assert cost is not None and cost > 0
    # Reconciled: what counts now is the real cost the job recorded, not the estimate.
    spent = (await _get(api, admin, path))["day"]["spent_usd"]
    assert spent == pytest.approx(cost)

    # A second image would pass the cap: refused before any call, stored nowhere.
    second = f"cap-second-{uuid.uuid4().hex[:8]}"
    r = await _generate(api, h, second)
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert error["scope"] == "user" and error["period"] == "day"
    assert error["cap_usd"] == pytest.approx(price * 1.5)
    assert error["spent_usd"] == pytest.approx(cost)
    assert error["estimate_usd"] == pytest.approx(_estimate(api, second))
    assert "daily spending cap of $" in error["message"] and "resets at" in error["message"]
    assert error["resets_at"] == (await _get(api, admin, path))["day"]["resets_at"]
    assert upstream_requests(emulator, second) == []
    assert len((await _get(api, h, "/api/generations"))["items"]) == 1

    # Deleting the generation gives no money back.
    r = await api.client.delete(f"/api/generations/{jobs[0]['id']}", headers=h)
    assert r.status_code == 204, r.text
    assert (await _get(api, admin, path))["day"]["spent_usd"] == pytest.approx(cost)
    assert (await _generate(api, h, second)).status_code == 402

    # Raised by the admin (a month's cap only): it runs again.
    await _put(api, admin, path, monthly_usd=round(price * 10, 6))
    r = await _generate(api, h, second)
    assert r.status_code == 200, r.text
    assert len(upstream_requests(emulator, second)) == 1


async def test_a_fan_out_stops_at_the_service_cap_and_keeps_what_was_made(
    db_api: Api, emulator: EmulatorServer
) -> None:
    api = db_api
    admin, h, _ = await _team(api)
    await api.put_key(admin, "openrouter", OPENROUTER_CANARY)
    three = f"three-{uuid.uuid4().hex[:8]}"
    cap = round(_estimate(api, three, n=2.5), 6)  # two images and a half
    service = await _put(api, admin, "/api/admin/budget", monthly_usd=cap)
    assert service["scope"] == "service" and service["user_id"] is None

    # Three images asked for, room for two: two are made and kept, the third never asked.
    r = await _generate(api, h, three, num_images=3)
    assert r.status_code == 200, r.text
    assert len(r.json()["images"]) == 2
    assert len(upstream_requests(emulator, three)) == 2
    job = (await _get(api, h, "/api/generations"))["items"][0]
    assert len(job["images"]) == 2 and job["request"]["n"] == 3
    said = "1 of the 3 images asked for was not made. This request (estimated at $"
    assert [f["index"] for f in job["failures"]] == [2]
    assert job["failures"][0]["error_code"] == "budget_exceeded"
    assert job["failures"][0]["error"] == "Not made: it would have passed a spending cap."
    [warning] = [w for w in job["warnings"] if w.startswith(said)]
    assert "would pass the service's monthly spending cap" in warning
    spent = (await _get(api, admin, "/api/admin/budget"))["month"]["spent_usd"]
    assert spent == pytest.approx(job["cost"]) and 0 < spent <= cap

    # Then no room for one image, whoever asks: refused whole, before any call.
    late = f"late-{uuid.uuid4().hex[:8]}"
    r = await _generate(api, admin, late, num_images=2)
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert error["scope"] == "service" and error["period"] == "month"
    assert error["estimate_usd"] == pytest.approx(_estimate(api, late, n=2))
    assert error["message"].startswith("This request (estimated at $")
    assert "the service's monthly spending cap" in error["message"]
    assert upstream_requests(emulator, late) == []

    # Cleared: anyone may spend again.
    await _put(api, admin, "/api/admin/budget")
    r = await _generate(api, admin, late, num_images=2)
    assert r.status_code == 200 and len(r.json()["images"]) == 2, r.text


async def test_reference_images_are_part_of_the_estimate(
    api: Api, emulator: EmulatorServer
) -> None:
    admin, h, ann = await _team(api)
    prompt = f"refs-{uuid.uuid4().hex[:8]} put the three of them together"
    bare, with_refs = _estimate(api, prompt), _estimate(api, prompt, images=3)
    assert with_refs > bare
    await _put(api, admin, f"/api/admin/users/{ann}/budget", daily_usd=(bare + with_refs) / 2)
    png = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()

    # The images go out with the prompt, and cost input tokens: over the cap, before any call.
    r = await _generate(api, h, prompt, images=[png] * 3)
    assert r.status_code == 402, r.text
    assert r.json()["error"]["estimate_usd"] == pytest.approx(with_refs)
    assert upstream_requests(emulator, prompt) == []

    r = await _generate(api, h, prompt)  # the same prompt alone fits
    assert r.status_code == 200, r.text
    assert len(upstream_requests(emulator, prompt)) == 1


async def test_a_session_turn_is_estimated_with_the_images_its_earlier_turns_send(
    api: Api, emulator: EmulatorServer
) -> None:
    admin, h, ann = await _team(api)
    sid = (await api.client.post("/api/sessions", json={}, headers=h)).json()["id"]
    turn = f"/api/sessions/{sid}/turns"
    png = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    for body in ({"prompt": "a red fox"}, {"prompt": "by this barn", "images": [png]}):
        r = await api.client.post(turn, json={**body, "model": MODEL}, headers=h)
        assert r.status_code == 200, r.text
    spent = (await _get(api, h, "/api/settings/budget"))["day"]["spent_usd"]
    await _put(api, admin, f"/api/admin/users/{ann}/budget", daily_usd=spent + _price(api) / 2)

    # The third turn sends the two before it whole: their images (the second's reference and
    # each one's answer) are input it pays for.
    third = f"third-{uuid.uuid4().hex[:8]} now in winter"
    r = await api.client.post(turn, json={"prompt": third, "model": MODEL}, headers=h)
    assert r.status_code == 402, r.text
    assert r.json()["error"]["estimate_usd"] == pytest.approx(_estimate(api, third, images=3))
    assert upstream_requests(emulator, third) == []


async def test_a_model_without_a_catalog_price_is_estimated_at_what_it_cost_lately(
    db_api: Api, emulator: EmulatorServer
) -> None:
    """A model found only by discovery has no catalog price: under a cap, its requests are
    estimated at the most one of its images cost lately, so its fan-outs stop at the cap
    too."""
    api = db_api
    for _ in range(500):  # the background listing brings it in
        if api.services.catalog.find(UNPRICED) is not None:
            break
        await asyncio.sleep(0.02)
    assert api.services.catalog.find(UNPRICED).pricing.image_cost("1K") is None
    admin, h, ann = await _team(api)
    path = f"/api/admin/users/{ann}/budget"
    await _put(api, admin, path, daily_usd=1000.0)

    # Never used: estimated at nothing, counted at its real cost.
    r = await _generate(api, h, f"first-{uuid.uuid4().hex[:8]}", model=UNPRICED)
    assert r.status_code == 200, r.text
    cost = (await _get(api, h, "/api/generations"))["items"][0]["cost"]
    assert cost is not None and cost > 0
    await _put(api, admin, path, daily_usd=round(cost * 2.5, 6))

    # Now known: three images have room for one, which is made; the others are never asked.
    three = f"three-{uuid.uuid4().hex[:8]}"
    r = await _generate(api, h, three, model=UNPRICED, num_images=3)
    assert r.status_code == 200, r.text
    assert len(r.json()["images"]) == 1
    assert len(upstream_requests(emulator, three)) == 1
    job = (await _get(api, h, "/api/generations"))["items"][0]
    assert [(f["index"], f["error_code"]) for f in job["failures"]] == [
        (1, "budget_exceeded"),
        (2, "budget_exceeded"),
    ]

    # Half an image's room left: refused, at the price it cost.
    last = f"last-{uuid.uuid4().hex[:8]}"
    r = await _generate(api, h, last, model=UNPRICED)
    assert r.status_code == 402, r.text
    assert r.json()["error"]["estimate_usd"] == pytest.approx(cost, rel=0.05)
    assert upstream_requests(emulator, last) == []


async def test_a_failure_that_was_not_billed_releases_its_hold(
    settings_for: Callable[..., Settings], quota_emulator: EmulatorServer
) -> None:
    # Every answer upstream is a quota error (429): nothing is billed, nothing stays held.
    settings = settings_for(
        openrouter_base_url=quota_emulator.openrouter_url,
        gemini_base_url=quota_emulator.gemini_url,
    )
    async with running(settings) as api:
        admin, h, ann = await _team(api)
        price = _price(api)
        path = f"/api/admin/users/{ann}/budget"
        await _put(api, admin, path, daily_usd=round(price * 1.5, 6))
        for _ in range(3):  # each would pass the cap if the last one's hold had stayed
            r = await _generate(api, h, "a quota wall")
            assert r.status_code == 429, r.text
        assert (await _get(api, admin, path))["day"]["spent_usd"] == 0


async def test_concurrent_requests_never_overshoot_a_nearly_spent_cap(
    db_api: Api, emulator: EmulatorServer
) -> None:
    api = db_api
    admin, h, ann = await _team(api)
    price = _price(api)
    cap = round(price * 3.5, 6)  # room for three images' estimates, not four
    await _put(api, admin, f"/api/admin/users/{ann}/budget", daily_usd=cap)
    marker = f"race-{uuid.uuid4().hex[:8]}"

    results = await asyncio.gather(*(_generate(api, h, f"{marker} {i}") for i in range(50)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 3, statuses
    assert set(statuses) == {200, 402}, statuses
    assert len(upstream_requests(emulator, marker)) == 3
    spent = (await _get(api, admin, f"/api/admin/users/{ann}/budget"))["day"]["spent_usd"]
    assert spent <= cap


async def test_only_admins_set_caps_and_bad_caps_say_what_to_fix(api: Api) -> None:
    admin, h, ann = await _team(api)
    for method, path in (
        ("GET", "/api/admin/budget"),
        ("PUT", "/api/admin/budget"),
        ("GET", f"/api/admin/users/{ann}/budget"),
        ("PUT", f"/api/admin/users/{ann}/budget"),
    ):
        r = await api.client.request(method, path, json={}, headers=h)
        assert r.status_code == 403, (method, path, r.text)
    r = await api.client.put(f"/api/admin/users/{'0' * 32}/budget", json={}, headers=admin)
    assert r.status_code == 404
    for bad in ({"daily_usd": -1}, {"monthly_usd": "ten"}, {"weekly_usd": 5}):
        r = await api.client.put("/api/admin/budget", json=bad, headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"]


async def test_each_user_sees_their_own_spend_and_the_admin_sees_everyone(api: Api) -> None:
    admin, h, ann = await _team(api)
    bob = await api.user("bob")
    await api.put_key(bob, "openrouter", OPENROUTER_CANARY)
    await _put(api, admin, f"/api/admin/users/{ann}/budget", monthly_usd=5)
    for headers, n in ((h, 2), (bob, 1)):
        r = await _generate(api, headers, f"spend-{uuid.uuid4().hex[:8]}", num_images=n)
        assert r.status_code == 200, r.text
    costs = {}
    for name, headers in (("ann", h), ("bob", bob)):
        items = (await _get(api, headers, "/api/generations"))["items"]
        costs[name] = sum(j["cost"] for j in items)

    mine = await _get(api, h, "/api/settings/budget")
    assert mine["scope"] == "user" and mine["user_id"] == ann
    assert mine["day"]["spent_usd"] == pytest.approx(costs["ann"])
    assert mine["month"]["cap_usd"] == 5 and mine["day"]["cap_usd"] is None
    theirs = await _get(api, bob, "/api/settings/budget")
    assert theirs["day"]["spent_usd"] == pytest.approx(costs["bob"])
    assert theirs["month"]["cap_usd"] is None

    everyone = await _get(api, admin, "/api/admin/budgets")
    rows = {u["username"]: u for u in everyone["users"]}
    assert list(rows) == ["admin", "ann", "bob"]  # oldest first
    assert rows["ann"] == {**mine, "username": "ann"}
    assert rows["bob"]["month"]["spent_usd"] == pytest.approx(costs["bob"])
    assert rows["admin"]["day"]["spent_usd"] == 0
    total = everyone["service"]["day"]["spent_usd"]
    assert total == pytest.approx(costs["ann"] + costs["bob"])
    assert everyone["service"] == await _get(api, admin, "/api/admin/budget")


async def test_a_cancelled_job_keeps_its_hold_only_if_its_call_was_sent(
    settings_for: Callable[..., Settings],
) -> None:
    """One running job per user: a two-image job cancelled after its first image keeps its
    whole estimate (the second call may have been billed); the job queued behind it, cancelled
    before it ran, holds nothing."""
    settings = settings_for(max_concurrent_jobs_per_user=1)
    marker = uuid.uuid4().hex
    async with running(settings) as api:
        _, h, _ = await _team(api)
        body = {"prompt": f"two {marker} [emulator:stagger:4:{marker}]", "num_images": 2}
        two = _estimate(api, body["prompt"], n=2)
        running_id = (await api.client.post("/api/generations", json=body, headers=h)).json()["id"]
        for _ in range(200):
            got = await _get(api, h, f"/api/generations/{running_id}")
            if got["images"]:
                break
            await asyncio.sleep(0.02)
        assert got["status"] == "running" and len(got["images"]) == 1, got
        queued = await api.client.post("/api/generations", json={"prompt": "next"}, headers=h)
        queued_id = queued.json()["id"]
        assert (await _get(api, h, f"/api/generations/{queued_id}"))["status"] == "queued"
        # Both held while they wait or run: two images' estimate and one.
        held = (await _get(api, h, "/api/settings/budget"))["day"]["spent_usd"]
        assert held == pytest.approx(two + _estimate(api, "next"))

        for job_id in (queued_id, running_id):
            r = await api.client.post(f"/api/generations/{job_id}/cancel", headers=h)
            assert r.status_code == 200 and r.json()["error"]["code"] == "job_cancelled", r.text
        cancelled = await _get(api, h, f"/api/generations/{running_id}")
        assert cancelled["error"]["may_be_billed"] is True
        # What it recorded (the image that arrived; unknown while a call streams) is less than
        # what it may have cost: the estimate stays held.
        assert cancelled["cost"] is None or cancelled["cost"] < two
        spent = (await _get(api, h, "/api/settings/budget"))["day"]["spent_usd"]
        assert spent == pytest.approx(two)
        # Usage tells the same: two requests, the one image kept, the rest still held.
        total = (await _get(api, h, "/api/usage"))["total"]
        assert total["generations"] == 2 and total["images"] == 1
        assert total["cost_usd"] + total["held_usd"] == pytest.approx(two)


async def test_synthetic_images_in_demo_mode_cost_nothing_under_a_cap(
    settings_for: Callable[..., Settings],
) -> None:
    """Demo mode without a key of one's own: the built-in emulator's images are estimated at
    nothing and cost nothing, so a cap below one real image's price refuses none of them."""
    settings = settings_for(demo=True, openrouter_base_url=None, gemini_base_url=None)
    async with running(settings) as api:
        admin = await api.user("admin")
        await api.user("dee")
        users = (await _get(api, admin, "/api/admin/users"))["users"]
        dee = next(u["id"] for u in users if u["username"] == "dee")
        await _put(api, admin, f"/api/admin/users/{dee}/budget", daily_usd=0.01)
        h = {"Authorization": f"Bearer {api.tokens['dee']}"}
        for _ in range(2):
            r = await _generate(api, h, "a synthetic heron", num_images=2)
            assert r.status_code == 200, r.text
            assert r.json()["synthetic"] is True
        assert (await _get(api, h, "/api/settings/budget"))["day"]["spent_usd"] == 0


async def test_an_interrupted_job_keeps_its_hold_only_if_it_was_running(
    db_api: Api,
) -> None:
    """A process that dies while a job's call is in flight: the job ends ``interrupted`` and
    its estimate stays held (the call may have been billed); one that was only queued gives
    its hold back.  A webhook hears of both ends."""
    from sqlalchemy import select

    from nanobanana.server.db.models import Job, Spend, User, WebhookDelivery
    from nanobanana.server.jobs import mark_interrupted

    api = db_api
    await api.user("ann")
    services = api.services
    now = services.now()
    async with services.sessionmaker() as s, s.begin():
        user = await s.scalar(select(User))
        assert user is not None
        ids = {}
        for status in ("running", "queued"):
            job = Job(
                user_id=user.id,
                status=status,
                kind="async",
                request={"prompt": "left", "n": 2, "provider": "openrouter"},
                prompt=f"left {status}",
                created_at=now,
                webhook_url="https://hooks.example.com/images",
            )
            s.add(job)
            await s.flush()
            s.add(Spend(job_id=job.id, user_id=user.id, created_at=now, held_usd=0.25))
            ids[status] = job.id
    assert await mark_interrupted(services, list(ids.values())) == 2
    async with services.sessionmaker() as s:
        held = {
            j: await s.scalar(select(Spend.held_usd).where(Spend.job_id == j)) for j in ids.values()
        }
        events = dict(
            (await s.execute(select(WebhookDelivery.job_id, WebhookDelivery.event))).all()
        )
    assert held == {ids["running"]: 0.25, ids["queued"]: 0.0}
    assert events == {j: "generation.interrupted" for j in ids.values()}
    total = (await _get(api, {"Authorization": f"Bearer {api.tokens['ann']}"}, "/api/usage"))[
        "total"
    ]
    assert total["generations"] == 2 and total["held_usd"] == 0.25
