"""Webhooks: a generation's final state POSTed to its webhook, signed per the Standard Webhooks
spec and checked here by a receiver written from the spec alone; retried after a failure
with the same id and body; never sent to private targets; the delivery log is the owner's."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from nanobanana.server import webhooks
from nanobanana.server.db.models import WebhookSecret
from nanobanana.server.settings import Settings

from .conftest import OPENROUTER_CANARY, Api, running, upstream_requests

pytestmark = pytest.mark.timeout(120)

GEN = "/api/nano-banana/generate"


@dataclass
class Receiver:
    """An HTTP endpoint on loopback that records what it is sent and answers with the next of
    ``answers`` (200 once they run out)."""

    url: str = ""
    host: str = ""
    got: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(
            {"path": request.path, "headers": dict(request.headers), "body": await request.read()}
        )
        self.arrived.set()
        status = self.answers.pop(0) if self.answers else 200
        if status in (301, 302, 307):
            return web.Response(status=status, headers={"Location": f"{self.url}/elsewhere"})
        return web.Response(status=status, text="ok")

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"{len(self.got)} deliveries of {count}"
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.5)
        return self.got[:count]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url, rec.host = f"http://127.0.0.1:{port}", f"127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float) -> int:
    """The Standard Webhooks check, from the spec: the three headers are present, the
    timestamp is within five minutes, and one of the space-separated ``v1,<base64>``
    signatures is the HMAC-SHA256 of ``id.timestamp.body`` keyed with the base64 after
    ``whsec_``.  Returns how many signatures were sent."""
    msg_id, stamp, signatures = (
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
    )
    assert abs(now - int(stamp)) < 300
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    sent = [s.split(",", 1) for s in signatures.split(" ")]
    assert all(version == "v1" for version, _ in sent)
    assert any(hmac.compare_digest(base64.b64decode(sig), expected) for _, sig in sent)
    return len(sent)


async def _user(api: Api, name: str) -> dict[str, str]:
    h = await api.user(name)
    await api.put_key(h, "openrouter", OPENROUTER_CANARY)
    return h


async def _secret(api: Api, h: dict[str, str]) -> str:
    r = await api.client.get("/api/settings/webhook", headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"  # it holds the secret
    secret = r.json()["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    return str(secret)


async def _delivery(api: Api, h: dict[str, str], job_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/api/generations/{job_id}/webhook", headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _recorded(api: Api, h: dict[str, str], job_id: str, attempts: int) -> dict[str, Any]:
    """The delivery once its ``attempts``-th attempt is in its log."""
    for _ in range(100):
        delivery = await _delivery(api, h, job_id)
        if delivery["attempts"] >= attempts:
            return delivery
        await asyncio.sleep(0.05)
    raise AssertionError(f"attempt {attempts} was not recorded: {delivery}")


@pytest.fixture
def hooked(settings_for: Callable[..., Settings], receiver: Receiver) -> Callable[..., Settings]:
    """Settings whose allow-list lets webhooks reach the loopback receiver."""

    def build(db: str | None = None, **over: Any) -> Settings:
        return settings_for(db, webhook_allow_hosts=[receiver.host], **over)

    return build


async def test_a_generation_posts_its_end_signed_to_its_webhook(
    db_url: str, hooked: Callable[..., Settings], receiver: Receiver
) -> None:
    async with running(hooked(db_url)) as api:
        h = await _user(api, "ann")
        secret = await _secret(api, h)
        r = await api.client.post(
            GEN,
            json={
                "prompt": "a heron at dusk",
                "num_images": 2,
                "webhook_url": f"{receiver.url}/hook",
            },
            headers=h,
        )
        assert r.status_code == 200, r.text
        job = (await api.client.get(f"/api/generations/{r.json()['id']}", headers=h)).json()
        assert job["webhook"] is True  # the URL itself is not in the record
        assert receiver.url not in json.dumps(job)
        (got,) = await receiver.wait_for(1)
        assert got["path"] == "/hook"
        assert got["headers"]["Content-Type"] == "application/json"
        assert verify(secret, got["headers"], got["body"], now=time.time()) == 1
        # And by the spec's own library, as a receiver would.
        assert Webhook(secret).verify(got["body"], got["headers"]) == json.loads(got["body"])
        assert got["headers"]["webhook-id"] == f"msg_{job['id']}"
        event = json.loads(got["body"])
        assert event["type"] == "generation.succeeded"
        assert event["timestamp"].endswith("Z")
        data = event["data"]
        assert data["id"] == job["id"] and data["status"] == "succeeded"
        assert data["cost"] == job["cost"] and data["prompt"] == "a heron at dusk"
        # Links and metadata, never the image bytes.
        assert [i["url"] for i in data["images"]] == [i["url"] for i in job["images"]]
        assert b"base64" not in got["body"] and len(got["body"]) < 20_000
        assert OPENROUTER_CANARY not in got["body"].decode()

        delivery = await _recorded(api, h, job["id"], 1)
        assert delivery["state"] == "delivered" and delivery["attempts"] == 1
        assert delivery["id"] == f"msg_{job['id']}" and delivery["event"] == "generation.succeeded"
        assert delivery["log"][0]["status_code"] == 200
        assert delivery["url"] == f"{receiver.url}/hook"
        # Another user sees nothing of it.
        other = await _user(api, "bob")
        r = await api.client.get(f"/api/generations/{job['id']}/webhook", headers=other)
        assert r.status_code == 404


async def test_a_failed_delivery_is_retried_with_the_same_id_and_body(
    hooked: Callable[..., Settings], receiver: Receiver
) -> None:
    async with running(hooked()) as api:
        h = await _user(api, "ann")
        # The default webhook: used by a generation that names none.
        r = await api.client.put("/api/settings/webhook", json={"url": receiver.url}, headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        secret = r.json()["secret"]
        receiver.answers = [500, 302]  # a failure, then a redirect (never followed)
        r = await api.client.post(GEN, json={"prompt": "a heron, retried"}, headers=h)
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        await receiver.wait_for(1)
        delivery = await _recorded(api, h, job_id, 1)
        assert delivery["state"] == "pending" and delivery["log"][0]["status_code"] == 500
        assert delivery["log"][0]["error"] == "HTTP 500"
        # The next attempts come after their backoff: move the clock past each one.
        real_now = api.services.now
        for shift, count in ((10, 2), (60, 3)):
            api.services.now = lambda shift=shift: real_now() + webhooks.timedelta(seconds=shift)
            api.services.webhooks.wake()
            await receiver.wait_for(count)
            await _recorded(api, h, job_id, count)  # before the clock moves again
        api.services.now = real_now
        first, second, third = receiver.got
        assert [g["path"] for g in receiver.got] == ["/", "/", "/"]  # the redirect not followed
        assert first["body"] == second["body"] == third["body"]
        ids = {g["headers"]["webhook-id"] for g in receiver.got}
        assert ids == {f"msg_{job_id}"}
        for got in receiver.got:
            verify(secret, got["headers"], got["body"], now=time.time())
        delivery = await _recorded(api, h, job_id, 3)
        assert [e["status_code"] for e in delivery["log"]] == [500, 302, 200]
        assert delivery["state"] == "delivered" and delivery["attempts"] == 3


async def test_a_receiver_that_is_gone_is_not_tried_again(
    hooked: Callable[..., Settings], receiver: Receiver
) -> None:
    async with running(hooked()) as api:
        h = await _user(api, "ann")
        receiver.answers = [410]
        body = {"prompt": "a heron, nobody listening", "webhook_url": f"{receiver.url}/hook"}
        r = await api.client.post(GEN, json=body, headers=h)
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        await receiver.wait_for(1)
        delivery = await _recorded(api, h, job_id, 1)
        assert delivery["state"] == "failed" and delivery["next_attempt_at"] is None
        assert delivery["log"][0]["status_code"] == 410
        assert "not tried again" in delivery["log"][0]["error"]
        # Later, nothing more is sent.
        real_now = api.services.now
        api.services.now = lambda: real_now() + webhooks.timedelta(minutes=5)
        api.services.webhooks.wake()
        await asyncio.sleep(0.3)
        assert len(receiver.got) == 1
        assert (await _delivery(api, h, job_id))["attempts"] == 1


async def test_a_secret_no_master_key_opens_holds_back_only_its_own_deliveries(
    hooked: Callable[..., Settings], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(hooked()) as api:
        dispatcher = api.services.webhooks
        monkeypatch.setattr(dispatcher, "wake", lambda: None)  # sent below, as one batch
        ann, bob = await _user(api, "ann"), await _user(api, "bob")
        await _secret(api, ann)
        bob_secret = await _secret(api, bob)
        users = (await api.client.get("/api/admin/users", headers=ann)).json()["users"]
        ann_id = next(u["id"] for u in users if u["username"] == "ann")
        other_key = Fernet(Fernet.generate_key())  # a master key the service does not have
        async with api.services.sessionmaker() as session:
            row = await session.get(WebhookSecret, ann_id)
            row.secret_enc = other_key.encrypt(b"whsec_c2VjcmV0")
            await session.commit()
        ids = {}
        for name, h in (("ann", ann), ("bob", bob)):
            body = {"prompt": f"a heron for {name}", "webhook_url": f"{receiver.url}/{name}"}
            r = await api.client.post(GEN, json=body, headers=h)
            assert r.status_code == 200, r.text
            ids[name] = r.json()["id"]

        assert await dispatcher.send_due() == 2
        (got,) = await receiver.wait_for(1)
        assert got["path"] == "/bob"
        verify(bob_secret, got["headers"], got["body"], now=time.time())
        assert (await _delivery(api, bob, ids["bob"]))["state"] == "delivered"
        held = await _delivery(api, ann, ids["ann"])
        assert held["state"] == "pending" and held["attempts"] == 0


async def test_after_a_rotation_both_secrets_sign_for_a_day(
    hooked: Callable[..., Settings], receiver: Receiver
) -> None:
    async with running(hooked()) as api:
        h = await _user(api, "ann")
        old = await _secret(api, h)
        r = await api.client.post("/api/settings/webhook/rotate", headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        new = r.json()["secret"]
        assert new != old and r.json()["previous_secret_valid_until"] is not None
        assert (await _secret(api, h)) == new
        body = {"prompt": "a heron, rotated", "webhook_url": receiver.url}
        assert (await api.client.post(GEN, json=body, headers=h)).status_code == 200
        (got,) = await receiver.wait_for(1)
        assert verify(new, got["headers"], got["body"], now=time.time()) == 2
        verify(old, got["headers"], got["body"], now=time.time())
        for either in (new, old):
            Webhook(either).verify(got["body"], got["headers"])
        with pytest.raises(WebhookVerificationError):
            Webhook(webhooks.new_secret()).verify(got["body"], got["headers"])
        # A day later the old secret signs no more.
        real_now = api.services.now
        api.services.now = lambda: real_now() + webhooks.ROTATION_GRACE
        try:
            r = await api.client.get("/api/settings/webhook", headers=h)
            assert r.json()["previous_secret_valid_until"] is None
            assert r.json()["secret"] == new
            body = {"prompt": "a heron, a day later", "webhook_url": receiver.url}
            assert (await api.client.post(GEN, json=body, headers=h)).status_code == 200
            _, later = await receiver.wait_for(2)
            assert verify(new, later["headers"], later["body"], now=time.time() + 86_400) == 1
        finally:
            api.services.now = real_now
        with pytest.raises(AssertionError):
            verify(webhooks.new_secret(), got["headers"], got["body"], now=time.time())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/",
        "http://localhost:8000/hook",
        "http://0.0.0.0/",
        "ftp://example.com/hook",
        "https://user:password@example.com/hook",
        "/relative/hook",
    ],
)
async def test_private_or_malformed_targets_are_refused_before_anything_runs(
    api: Api, emulator: Any, url: str
) -> None:
    h = await _user(api, "ann")
    marker = uuid.uuid4().hex
    r = await api.client.post(GEN, json={"prompt": marker, "webhook_url": url}, headers=h)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_webhook_url" and error["field"] == "webhook_url"
    assert upstream_requests(emulator, marker) == []
    r = await api.client.put("/api/settings/webhook", json={"url": url}, headers=h)
    assert r.status_code == 422, r.text


async def test_a_default_whose_name_resolves_to_a_private_address_is_refused_when_saved(
    settings_for: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {"intranet.example.com": ["10.1.2.3"], "hooks.example.com": ["93.184.215.14"]}

    async def resolve(host: str, port: int) -> list[str]:  # this machine has no DNS
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return names[host]

    monkeypatch.setattr(webhooks, "resolve", resolve)
    async with running(settings_for(webhook_allow_hosts=["allowed.example.com"])) as api:
        h = await _user(api, "ann")
        put = functools.partial(api.client.put, "/api/settings/webhook", headers=h)
        r = await put(json={"url": "https://intranet.example.com/hook"})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_webhook_url" and error["field"] == "webhook_url"
        assert "resolves to a private address (10.1.2.3)" in error["message"]
        assert (await api.client.get("/api/settings/webhook", headers=h)).json()["url"] is None
        # A public name is saved; so is one that does not resolve yet (checked when sent).
        for url in ("https://hooks.example.com/hook", "https://soon.example.com/hook"):
            r = await put(json={"url": url})
            assert r.status_code == 200 and r.json()["url"] == url, r.text
        names["allowed.example.com"] = ["192.168.1.20"]  # on the allow-list: exempt
        r = await put(json={"url": "http://allowed.example.com/hook"})
        assert r.status_code == 200, r.text


async def test_a_name_resolving_to_a_private_address_is_refused_when_sent() -> None:
    resolver = webhooks.guarded_resolver(())
    try:
        with pytest.raises(webhooks.TargetRefused, match="loopback"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    allowed = webhooks.guarded_resolver(("localhost:80",))
    try:
        assert await allowed.resolve("localhost", 80)
    finally:
        await allowed.close()


async def test_a_cancelled_generation_reports_its_end_too(
    hooked: Callable[..., Settings], receiver: Receiver
) -> None:
    async with running(hooked(max_concurrent_jobs_per_user=1)) as api:
        h = await _user(api, "ann")
        slow = {"prompt": "[emulator:latency:2] slow", "webhook_url": receiver.url}
        first = (await api.client.post("/api/generations", json=slow, headers=h)).json()["id"]
        queued = (await api.client.post("/api/generations", json=slow, headers=h)).json()["id"]
        r = await api.client.post(f"/api/generations/{queued}/cancel", headers=h)
        assert r.status_code == 200, r.text
        got = await receiver.wait_for(2)
        events = {json.loads(g["body"])["data"]["id"]: json.loads(g["body"]) for g in got}
        assert events[queued]["type"] == "generation.failed"
        assert events[queued]["data"]["error"]["code"] == "job_cancelled"
        assert events[first]["type"] == "generation.succeeded"


async def test_first_uses_at_once_make_one_secret(db_api: Api) -> None:
    h = await db_api.user("ann")
    user_id = (await db_api.client.get("/api/auth/me", headers=h)).json()["id"]
    services = db_api.services

    async def first_use() -> str:
        async with services.sessionmaker() as session:
            found = await webhooks.secrets_of(session, services.vault, user_id, services.now())
            await session.commit()
            return found.current

    made = await asyncio.gather(*(first_use() for _ in range(6)))
    assert len(set(made)) == 1
    r = await db_api.client.get("/api/settings/webhook", headers=h)
    assert r.json()["secret"] == made[0] and r.json()["url"] is None
