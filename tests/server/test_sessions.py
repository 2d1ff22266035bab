"""Editing sessions over the service's API: a tree of turns, each a job, each sending upstream
exactly the path that led to it; kept per user, and deleted with its images."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest

from nanobanana.emulator import EmulatorServer, signatures

from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, Api, upstream_requests

pytestmark = pytest.mark.timeout(90)
SESSIONS = "/api/sessions"
MODEL = "gemini-3-pro-image"


def tag() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


async def _user_with_keys(api: Api, name: str) -> dict[str, str]:
    h = await api.user(name)
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    await api.put_key(h, "google", GOOGLE_CANARY)
    return h


async def _turn(api: Api, h: dict[str, str], sid: str, prompt: str, **body: Any) -> dict[str, Any]:
    r = await api.client.post(
        f"{SESSIONS}/{sid}/turns", json={"prompt": prompt, "model": MODEL, **body}, headers=h
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _digest_of_turn(turn: dict[str, Any]) -> str:
    return str(turn["images"][0]["sha256"])[:12]


@pytest.mark.parametrize("provider", ["google", "openrouter"])
async def test_three_turns_and_a_branch_send_exactly_their_paths(
    db_api: Api, emulator: EmulatorServer, provider: str
) -> None:
    c = db_api.client
    h = await _user_with_keys(db_api, "alice")
    r = await c.post(SESSIONS, json={}, headers=h)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    m = tag()
    t1 = await _turn(db_api, h, sid, f"a red fox {m}", provider=provider)
    t2 = await _turn(db_api, h, sid, f"make the sky purple {m}", provider=provider)
    t3 = await _turn(db_api, h, sid, f"now remove the fox {m}", provider=provider)
    t4 = await _turn(
        db_api, h, sid, f"make it autumn {m}", provider=provider, parent_turn_id=t1["id"]
    )
    assert [t["parent_turn_id"] for t in (t1, t2, t3, t4)] == [None, t1["id"], t2["id"], t1["id"]]
    assert all(t["session_id"] == sid and t["provider"] == provider for t in (t1, t2, t3, t4))
    assert all(t["kind"] == "session" and len(t["images"]) == 1 for t in (t1, t2, t3, t4))

    tree = (await c.get(f"{SESSIONS}/{sid}", headers=h)).json()
    assert [t["id"] for t in tree["turns"]] == [t["id"] for t in (t1, t2, t3, t4)]
    assert tree["latest_turn_id"] == t4["id"] and tree["title"] == f"a red fox {m}"
    listed = (await c.get(SESSIONS, headers=h)).json()["items"]
    assert [(s["id"], s["turn_count"]) for s in listed] == [(sid, 4)]

    sent = upstream_requests(emulator, m)
    assert len(sent) == 4
    if provider == "google":
        bodies = [s["body"]["contents"] for s in sent]
        assert [len(b) for b in bodies] == [1, 3, 5, 3]
        # Turn 4 continues turn 1: its answer, never turn 2's or 3's.
        assert [p["text"] for p in _texts(bodies[3], "user")] == [t1["prompt"], t4["prompt"]]
        for body, answered in ((bodies[1], [t1]), (bodies[2], [t1, t2]), (bodies[3], [t1])):
            models = [c for c in body if c["role"] == "model"]
            assert len(models) == len(answered)
            for content, turn in zip(models, answered, strict=True):
                text, image = content["parts"]
                assert text["text"] == turn["text"]
                assert image["inlineData"]["data"].endswith(f"sha256:{_digest_of_turn(turn)}>")
                # Every part with the signature the model gave it.
                assert signatures.verify(text["thoughtSignature"], MODEL)
                assert signatures.verify(image["thoughtSignature"], MODEL)
        assert bodies[1][1] == bodies[3][1]  # turn 1's answer, sent the same both times
    else:
        bodies = [s["body"]["messages"] for s in sent]
        assert [len(b) for b in bodies] == [1, 3, 5, 3]
        last = bodies[3]
        assert [m_["role"] for m_ in last] == ["user", "assistant", "user"]
        assert last[1]["content"] == t1["text"]
        assert signatures.verify(last[1]["reasoning_details"][0]["data"], MODEL)
        drawn = last[2]["content"][0]["image_url"]["url"]
        assert drawn.endswith(f"sha256:{_digest_of_turn(t1)}>")
        assert last[2]["content"][1]["text"] == t4["prompt"]


def _texts(contents: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return [p for c in contents if c["role"] == role for p in c["parts"] if "text" in p]


async def test_a_session_is_its_owners_alone(api: Api) -> None:
    c = api.client
    alice = await _user_with_keys(api, "alice")
    bob = await _user_with_keys(api, "bob")
    sid = (await c.post(SESSIONS, json={"title": "alice's"}, headers=alice)).json()["id"]
    t1 = await _turn(api, alice, sid, f"a fox {tag()}")
    bobs = (await c.post(SESSIONS, json={}, headers=bob)).json()["id"]
    refused = [
        await c.get(f"{SESSIONS}/{sid}", headers=bob),
        await c.post(f"{SESSIONS}/{sid}/turns", json={"prompt": "mine now"}, headers=bob),
        await c.delete(f"{SESSIONS}/{sid}", headers=bob),
        # Alice's turn cannot be continued from Bob's session either.
        await c.post(
            f"{SESSIONS}/{bobs}/turns",
            json={"prompt": "x", "parent_turn_id": t1["id"]},
            headers=bob,
        ),
    ]
    assert [r.status_code for r in refused] == [404, 404, 404, 404]
    assert {r.json()["error"]["code"] for r in refused} == {"session_not_found"}
    assert (await c.get(SESSIONS, headers=bob)).json()["items"][0]["id"] == bobs
    assert (await c.get(f"{SESSIONS}/{sid}", headers=alice)).status_code == 200
    assert (await c.get(SESSIONS)).status_code == 401


async def test_deleting_a_session_removes_its_turns_and_images(api: Api) -> None:
    c = api.client
    h = await _user_with_keys(api, "alice")
    sid = (await c.post(SESSIONS, json={}, headers=h)).json()["id"]
    t1 = await _turn(api, h, sid, f"a fox {tag()}")
    t2 = await _turn(api, h, sid, "purple sky")
    kept = await c.post("/api/nano-banana/generate", json={"prompt": "not in it"}, headers=h)
    assert kept.status_code == 200
    urls = [t["images"][0]["url"] for t in (t1, t2)]
    files_before = _files(api)
    assert [(await c.get(u, headers=h)).status_code for u in urls] == [200, 200]
    r = await c.delete(f"{SESSIONS}/{sid}", headers=h)
    assert r.status_code == 204
    assert (await c.get(f"{SESSIONS}/{sid}", headers=h)).status_code == 404
    assert [(await c.get(u, headers=h)).status_code for u in urls] == [404, 404]
    for turn in (t1, t2):
        assert (await c.get(f"/api/generations/{turn['id']}", headers=h)).status_code == 404
    gone = files_before - _files(api)
    assert len(gone) >= 2  # each turn's image (and any thumbnail)
    assert (await c.get(kept.json()["image_urls"][0], headers=h)).status_code == 200


def _files(api: Api) -> set[Path]:
    root = Path(api.settings.data_dir)
    return {p for p in root.rglob("*") if p.is_file() and p.suffix in (".png", ".webp", ".jpg")}


async def test_a_failed_turn_stays_in_the_tree_and_cannot_be_continued(api: Api) -> None:
    c = api.client
    h = await _user_with_keys(api, "alice")
    sid = (await c.post(SESSIONS, json={}, headers=h)).json()["id"]
    t1 = await _turn(api, h, sid, f"a fox {tag()}", provider="google")
    r = await c.post(
        f"{SESSIONS}/{sid}/turns",
        json={"prompt": "[emulator:safety] purple", "model": MODEL, "provider": "google"},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "content_blocked"
    failed_id = r.json()["error"]["job_id"]
    tree = (await c.get(f"{SESSIONS}/{sid}", headers=h)).json()
    assert [t["status"] for t in tree["turns"]] == ["succeeded", "blocked"]
    assert tree["latest_turn_id"] == t1["id"]
    again = await c.post(
        f"{SESSIONS}/{sid}/turns",
        json={"prompt": "more", "parent_turn_id": failed_id},
        headers=h,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "turn_not_continuable"
    # Without a parent: the latest turn that succeeded.
    t3 = await _turn(api, h, sid, "a bigger fox", provider="google")
    assert t3["parent_turn_id"] == t1["id"]
    # An explicit null starts a new first turn.
    t4 = await _turn(api, h, sid, "a new start", provider="google", parent_turn_id=None)
    assert t4["parent_turn_id"] is None


async def test_a_fallback_mid_session_keeps_the_conversation(
    api: Api, emulator: EmulatorServer
) -> None:
    c = api.client
    h = await _user_with_keys(api, "alice")
    sid = (await c.post(SESSIONS, json={}, headers=h)).json()["id"]
    m = tag()
    t1 = await _turn(api, h, sid, f"a fox {m}", provider="google")
    t2 = await _turn(api, h, sid, "[emulator@gemini:quota-day] purple sky", provider="google")
    t3 = await _turn(api, h, sid, "remove the fox", provider="google")
    assert [t["provider"] for t in (t1, t2, t3)] == ["google", "openrouter", "google"]
    assert [a["provider"] for a in t2["fallback"]] == ["google", "openrouter"]
    last = upstream_requests(emulator, m)[-1]
    assert last["service"] == "gemini" and last["status"] == 200
    foreign = last["body"]["contents"][3]["parts"][-1]
    # OpenRouter's turn goes under the placeholder (the SDK sends its bytes, base64).
    signature = foreign["thoughtSignature"]
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert raw == b"skip_thought_signature_validator"
    listed = (await c.get("/api/generations", headers=h)).json()["items"]
    assert {i["id"] for i in listed} >= {t1["id"], t2["id"], t3["id"]}
