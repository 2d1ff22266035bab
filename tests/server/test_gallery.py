"""The gallery API: images (not generations) filtered, sorted and paged by cursor; facets;
favourites; deleting and zipping several at once; and another user's images never touched."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile
from typing import Any

import pytest

from nanobanana.files import read_provenance
from nanobanana.server.deps import SESSION_COOKIE

from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Api

pytestmark = pytest.mark.timeout(120)

GEN = "/api/nano-banana/generate"


async def _generate(api: Api, h: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await api.client.post(GEN, json=body, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _listing(api: Api, h: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await api.client.get("/api/images", params=params, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _ids(api: Api, h: dict[str, str], **params: Any) -> list[str]:
    return [i["id"] for i in (await _listing(api, h, **params))["items"]]


@pytest.fixture
async def stocked(db_api: Api) -> tuple[Api, dict[str, str], list[dict[str, Any]]]:
    """A user with three generations: two 16:9 images, one 1:1 2K (Google), one 9:16."""
    api = db_api
    h = await api.user("alice")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await api.put_key(h, "google", GOOGLE_CANARY)
    jobs = [
        await _generate(api, h, prompt="a red fox in snow", num_images=2, aspect_ratio="16:9"),
        await _generate(
            api,
            h,
            prompt="a blue whale 100% real",
            provider="google",
            model="gemini-3-pro-image",
            image_size="2K",
        ),
        await _generate(api, h, prompt="a tall lighthouse", aspect_ratio="9:16"),
    ]
    return api, h, jobs


async def test_images_not_generations_newest_first_with_what_made_them(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, (fox, whale, house) = stocked
    page = await _listing(api, h)
    items = page["items"]
    assert page["next_cursor"] is None
    # One item per image; a generation's images together, in their order.
    assert [(i["generation_id"], i["index"]) for i in items] == [
        (house["id"], 0),
        (whale["id"], 0),
        (fox["id"], 0),
        (fox["id"], 1),
    ]
    first = items[-2]
    assert first["prompt"] == "a red fox in snow"
    assert (first["provider"], first["model"]) == ("openrouter", fox["model"])
    assert (first["aspect_ratio"], first["image_size"]) == ("16:9", "1K")
    assert first["width"] > first["height"]
    assert (first["favourite"], first["synthetic"]) == (False, False)
    assert first["url"] == f"/api/images/{first['id']}"
    assert first["thumb_url"] == f"/api/images/{first['id']}?thumb=1"
    w = items[1]
    assert (w["provider"], w["aspect_ratio"], w["image_size"]) == ("google", "1:1", "2K")
    assert items[0]["aspect_ratio"] == "9:16"
    # The bytes behind the item are the image it describes.
    r = await api.client.get(first["url"], headers=h)
    assert hashlib.sha256(r.content).hexdigest() == first["sha256"]

    oldest = await _ids(api, h, sort="oldest")
    assert oldest == [items[2]["id"], items[3]["id"], items[1]["id"], items[0]["id"]]


async def test_filters_narrow_the_list(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, (fox, whale, house) = stocked
    by_job = {i["id"]: i["generation_id"] for i in (await _listing(api, h))["items"]}

    async def jobs(**params: Any) -> list[str]:
        return [by_job[i] for i in await _ids(api, h, **params)]

    assert await jobs(provider="google") == [whale["id"]]
    assert await jobs(model="gemini-3-pro-image") == [whale["id"]]
    assert await jobs(aspect_ratio="16:9") == [fox["id"], fox["id"]]
    assert await jobs(aspect_ratio="16x9") == [fox["id"], fox["id"]]
    assert await jobs(image_size="2k") == [whale["id"]]
    assert await jobs(q="LIGHTHOUSE") == [house["id"]]
    assert await jobs(q="100%") == [whale["id"]]  # % is a character, not a wildcard
    assert await jobs(q="100%", provider="openrouter") == []
    assert await jobs(generation_id=fox["id"]) == [fox["id"], fox["id"]]
    assert await jobs(synthetic=True) == []
    assert len(await jobs(synthetic=False)) == 4
    assert len(await jobs(since="2000-01-01")) == 4
    assert await jobs(until="2000-01-01") == []
    assert await jobs(since="2999-01-01T00:00:00Z") == []
    assert len(await jobs(until="2999-01-01T00:00:00+02:00")) == 4


async def test_cursor_paging_visits_every_image_once(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, _ = stocked
    for sort in ("newest", "oldest"):
        everything = await _ids(api, h, sort=sort)
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = await _listing(api, h, **params)
            assert len(page["items"]) == 1
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == everything and len(set(seen)) == 4


async def test_facets_count_what_there_is(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, (fox, _, _) = stocked
    facets = (await api.client.get("/api/images/facets", headers=h)).json()
    assert facets["total"] == 4 and facets["favourites"] == 0 and facets["synthetic"] == 0
    assert facets["providers"] == [
        {"value": "openrouter", "count": 3},
        {"value": "google", "count": 1},
    ]
    assert {f["value"]: f["count"] for f in facets["aspect_ratios"]} == {
        "16:9": 2,
        "1:1": 1,
        "9:16": 1,
    }
    assert {f["value"]: f["count"] for f in facets["image_sizes"]} == {"1K": 3, "2K": 1}
    assert {f["value"] for f in facets["models"]} == {fox["model"], "gemini-3-pro-image"}


async def test_favourites(stocked: tuple[Api, dict[str, str], list[dict[str, Any]]]) -> None:
    api, h, _ = stocked
    ids = await _ids(api, h)
    r = await api.client.patch(f"/api/images/{ids[1]}", json={"favourite": True}, headers=h)
    assert r.status_code == 200 and r.json()["favourite"] is True
    r = await api.client.post(
        "/api/images/favourite", json={"ids": [ids[2], ids[3]], "favourite": True}, headers=h
    )
    assert [i["favourite"] for i in r.json()["items"]] == [True, True]
    assert await _ids(api, h, favourite=True) == ids[1:]
    assert await _ids(api, h, favourite=False) == ids[:1]
    r = await api.client.patch(f"/api/images/{ids[2]}", json={"favourite": False}, headers=h)
    assert await _ids(api, h, favourite=True) == [ids[1], ids[3]]
    facets = (await api.client.get("/api/images/facets", headers=h)).json()
    assert facets["favourites"] == 2 and facets["total"] == 4
    # Favourites split the groups the counts come from; each facet still adds them up.
    assert facets["providers"] == [
        {"value": "openrouter", "count": 3},
        {"value": "google", "count": 1},
    ]
    assert sum(f["count"] for f in facets["image_sizes"]) == 4
    # Strict input: "yes" is not a boolean.
    r = await api.client.patch(f"/api/images/{ids[0]}", json={"favourite": "yes"}, headers=h)
    assert r.status_code == 422


async def test_bulk_delete_keeps_the_generations_records(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, (fox, _, _) = stocked
    items = (await _listing(api, h))["items"]
    fox_images = [i for i in items if i["generation_id"] == fox["id"]]
    files = list((api.settings.data_dir / "images").rglob("*.png"))
    r = await api.client.post(
        "/api/images/delete", json={"ids": [i["id"] for i in fox_images]}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": [i["id"] for i in fox_images]}
    assert len(await _ids(api, h)) == 2
    for i in fox_images:
        assert (await api.client.get(i["url"], headers=h)).status_code == 404
    # The generation's record (prompt, cost) stays, without images.
    job = (await api.client.get(f"/api/generations/{fox['id']}", headers=h)).json()
    assert job["status"] == "succeeded" and job["images"] == [] and job["prompt"]
    # Their files are gone; the others' are not.
    left = list((api.settings.data_dir / "images").rglob("*.png"))
    assert len(left) == len(files) - 2
    # One by one.
    other = items[0]["id"]
    assert (await api.client.delete(f"/api/images/{other}", headers=h)).status_code == 204
    assert (await api.client.delete(f"/api/images/{other}", headers=h)).status_code == 404


async def test_bulk_calls_are_all_or_nothing(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, _ = stocked
    ids = await _ids(api, h)
    stranger = uuid.uuid4().hex
    for path, extra in (("delete", {}), ("favourite", {"favourite": True}), ("zip", {})):
        r = await api.client.post(
            f"/api/images/{path}", json={"ids": [ids[0], stranger], **extra}, headers=h
        )
        assert r.status_code == 404, (path, r.text)
        err = r.json()["error"]
        assert err["code"] == "images_not_found" and err["ids"] == [stranger]
        assert stranger in err["message"] and "nothing was changed" in err["message"]
    assert await _ids(api, h) == ids
    assert await _ids(api, h, favourite=True) == []
    # Bad input says what to fix.
    for body in ({"ids": []}, {"ids": ["../etc"]}, {"ids": [ids[0]] * 501}, {}):
        r = await api.client.post("/api/images/delete", json=body, headers=h)
        assert r.status_code == 422, body
    r = await api.client.post("/api/images/delete", json={"ids": ["nope"]}, headers=h)
    assert "32 lowercase hex characters" in r.json()["error"]["message"]
    for params in ({"cursor": "garbage"}, {"sort": "largest"}, {"aspect_ratio": "wide"}):
        r = await api.client.get("/api/images", params=params, headers=h)
        assert r.status_code == 422, params
    for when in ("2026-01-01T10:00:00", "0", "2026-13-40"):
        r = await api.client.get("/api/images", params={"since": when}, headers=h)
        assert r.status_code == 422, when
        assert "since" in r.json()["error"]["message"]


async def test_zip_holds_each_image_as_stored(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, _ = stocked
    items = (await _listing(api, h))["items"]
    r = await api.client.post("/api/images/zip", json={"ids": [i["id"] for i in items]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith('attachment; filename="nanobanana-')
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        assert len(names) == 4 and len(set(names)) == 4
        assert all(z.getinfo(n).compress_type == zipfile.ZIP_STORED for n in names)
        for item, name in zip(items, names, strict=True):
            data = z.read(name)
            assert hashlib.sha256(data).hexdigest() == item["sha256"]
            assert item["id"][:8] in name and name.endswith(".png")
            assert read_provenance(data)["prompt"] == item["prompt"]
    assert any("a-red-fox-in-snow" in n for n in names)


async def test_another_users_images_are_not_found(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, alice, _ = stocked
    ids = await _ids(api, alice)
    bob = await api.user("bob")
    assert (await _listing(api, bob))["items"] == []
    facets = (await api.client.get("/api/images/facets", headers=bob)).json()
    assert facets["total"] == 0 and facets["providers"] == []
    r = await api.client.patch(f"/api/images/{ids[0]}", json={"favourite": True}, headers=bob)
    assert r.status_code == 404
    assert (await api.client.delete(f"/api/images/{ids[0]}", headers=bob)).status_code == 404
    for path, extra in (("delete", {}), ("favourite", {"favourite": True}), ("zip", {})):
        r = await api.client.post(f"/api/images/{path}", json={"ids": ids, **extra}, headers=bob)
        assert r.status_code == 404
    # Alice's are untouched.
    assert await _ids(api, alice) == ids
    assert await _ids(api, alice, favourite=True) == []
    assert (await api.client.get("/api/images")).status_code == 401


# --------------------------------------------------------------------- the gallery page
_SENT = re.compile(r'<script type="application/json" id="gallery-first-page">(.*?)</script>', re.S)


async def _gallery_html(api: Api, token: str | None, address: str = "/gallery") -> Any:
    """The gallery page asked for with ``token`` as the session cookie (or none)."""
    api.client.cookies.clear()
    headers = {"Cookie": f"{SESSION_COOKIE}={token}"} if token else {}
    r = await api.client.get(address, headers=headers)
    assert r.status_code == 200, r.text
    return r


def _sent(r: Any) -> dict[str, Any] | None:
    found = _SENT.findall(r.text)
    assert len(found) <= 1
    return json.loads(found[0]) if found else None


async def test_the_gallery_page_brings_its_first_page_to_the_cookie_holder_only(
    stocked: tuple[Api, dict[str, str], list[dict[str, Any]]],
) -> None:
    api, h, _ = stocked
    token = api.tokens["alice"]
    for address, sort in (("/gallery", "newest"), ("/gallery?sort=oldest&group=1", "oldest")):
        r = await _gallery_html(api, token, address)
        sent = _sent(r)
        assert sent is not None, address
        # Exactly what the page's script would have asked the API for.
        assert sent["user"] == "alice"
        assert sent["url"] == f"/api/images?limit=30&sort={sort}"
        assert sent["page"] == await _listing(api, h, limit=30, sort=sort)
        assert len(sent["page"]["items"]) == 4
        assert r.headers["cache-control"] == "no-store"
        assert "cookie" in r.headers["vary"].lower()
        assert token not in r.text

    # Without a cookie, or with one that is no session: the page as it is for anybody.
    for cookie in (None, "not-a-token", "x" * 5000):
        r = await _gallery_html(api, cookie)
        assert _sent(r) is None
        assert r.headers["cache-control"] == "no-cache"
    # A search, a filter, a day (the browser's time zone) or an unknown order: left to the
    # page's script.
    for address in (
        "/gallery?q=fox",
        "/gallery?provider=google",
        "/gallery?since=2026-01-01",
        "/gallery?sort=sideways",
        "/gallery?favourite=true",
    ):
        assert _sent(await _gallery_html(api, token, address)) is None, address

    # Another account's cookie brings that account's page (empty), nothing of alice's.
    await api.user("bob")
    r = await _gallery_html(api, api.tokens["bob"])
    assert _sent(r) == {
        "user": "bob",
        "url": "/api/images?limit=30&sort=newest",
        "page": {"items": [], "next_cursor": None},
    }
    assert "fox" not in r.text and "lighthouse" not in r.text

    # Signed out: the cookie's token no longer brings anything.
    out = await api.client.post("/api/auth/logout", headers=h)
    assert out.status_code == 204
    assert _sent(await _gallery_html(api, token)) is None


async def test_a_prompt_cannot_end_the_page_data_block(db_api: Api) -> None:
    api = db_api
    h = await api.user("mallory")
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    prompt = "</script><script>alert(1)</script> & <!-- a 'quoted' \"prompt\" \u2028"
    await _generate(api, h, prompt=prompt)
    r = await _gallery_html(api, api.tokens["mallory"])
    assert "<script>alert(1)" not in r.text
    sent = _sent(r)
    assert sent is not None
    assert sent["page"]["items"][0]["prompt"] == prompt
