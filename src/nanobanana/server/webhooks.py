"""Webhooks: each generation's final state POSTed to a URL, signed per the Standard Webhooks
spec (https://www.standardwebhooks.com), delivered at least once.

- **Where.** A generation's ``webhook_url``, else its user's default (``UserSettings``); kept
  on the job when it is accepted.
- **When.** The transaction that ends a job (succeeded, failed, blocked, cancelled,
  interrupted) also writes its delivery (``enqueue``): a crash after that loses nothing.  A
  ``Dispatcher`` in every process that runs jobs sends what is due: claimed for a while
  (``LEASE``) so that one process sends it at a time, and sent again if that process dies
  before it knows the answer (so a receiver may see a delivery twice: it drops duplicates by
  ``webhook-id``, the same on every attempt).
- **What.** ``{"type": "generation.<status>", "timestamp": ..., "data": <the generation>}``:
  the generation as ``GET /api/generations/{id}`` shows it, its images as links (absolute when
  ``NANOBANANA_PUBLIC_URL`` is set), never their bytes.  Every attempt sends the same body.
- **Signed.** ``webhook-id`` (``msg_<generation id>``), ``webhook-timestamp`` (Unix seconds)
  and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the
  user's secret (``whsec_<base64>``, 32 random bytes, encrypted at rest), and for a day after
  a rotation also with the secret before it.
- **Retried.** Anything but a 2xx answer (a redirect included: none is followed) is tried
  again after 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h..., until a day after the
  generation ended; then the delivery is ``failed``.  A ``410 Gone`` answer (the receiver
  says the endpoint no longer exists) fails it at once.  Each attempt is in the delivery's
  log.
- **Where not.** Like any URL a client hands the service, a target must be public: an address
  that is private, loopback, link-local, multicast or reserved (IPv4-mapped ones too), or
  ``localhost``, is refused when the URL is given; a name is resolved when the delivery is
  sent (and when a default URL is saved), and refused then if it resolves to such an
  address (the connection goes to the address that was checked: a name cannot be re-pointed
  in between).  Hosts named in ``NANOBANANA_WEBHOOK_ALLOW_HOSTS`` (``host`` or
  ``host:port``) are exempt: a receiver on the same machine or network.
- **Cost.** The deliveries a sender claims together (``BATCH``) are read in one session, sent
  at once and recorded in one transaction (bench scenario 8).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

from cryptography.fernet import InvalidToken
from sqlalchemy import Connection, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .db.models import Job, StoredImage, WebhookDelivery, WebhookSecret
from .errors import InvalidWebhookUrl
from .views import generation_out

log = logging.getLogger("nanobanana.server.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
#: How long the secret before a rotation still signs deliveries.
ROTATION_GRACE = timedelta(days=1)
#: How long after a generation's end its delivery is tried.
GIVE_UP_AFTER = timedelta(days=1)
#: The waits between attempts; the last one repeats.
BACKOFF = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)
#: The answer after which a delivery is not tried again (the endpoint is gone for good).
GONE = 410
#: How long a process that claimed a delivery has to send it before another may.
LEASE = timedelta(seconds=60)
TIMEOUT_SECONDS = 15.0
#: How long a default URL's name is looked up for when it is saved.
RESOLVE_SECONDS = 3.0
MAX_URL_LENGTH = 2048
#: The longest a sender sleeps with nothing due (it is woken when its process ends a job).
IDLE_SECONDS = 30.0
#: Deliveries claimed at once by one process.
BATCH = 20
#: Attempts kept in a delivery's log.
LOG_LENGTH = 30


# ---------------------------------------------------------------------------- signing
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def signature_header(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def message_id(job_id: str) -> str:
    return f"msg_{job_id}"


# ---------------------------------------------------------------------------- targets
def _host_allowed(host: str, port: int, allow: Iterable[str]) -> bool:
    """Whether ``host:port`` is in the allow-list (entries ``host`` or ``host:port``;
    ``[::1]:8080`` for an IPv6 address with a port)."""
    host = host.lower().strip("[]")
    for entry in allow:
        try:
            parts = urlsplit("//" + entry.strip())
            name, entry_port = parts.hostname, parts.port
        except ValueError:
            continue
        if name == host and entry_port in (None, port):
            return True
    return False


def refused_address(address: str) -> str | None:
    """Why a webhook may not go to ``address`` (None: it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"
    return None


def _port(parts: SplitResult) -> int:
    """The port a URL goes to (raises ``ValueError`` for one that is not a number)."""
    return parts.port or (443 if parts.scheme == "https" else 80)


def check_url(url: str, allow: Iterable[str]) -> None:
    """Refuse ``url`` as a webhook target (``InvalidWebhookUrl``, saying what to fix) unless
    it is an http(s) URL of a public address or an allowed host.  Names are checked when they
    are resolved to send a delivery (``guarded_resolver``)."""
    where = "webhook_url"
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(
            f"The webhook URL is over {MAX_URL_LENGTH} characters.", field=where
        )
    try:
        parts = urlsplit(url)
        port = _port(parts)
    except ValueError:
        raise InvalidWebhookUrl("The webhook URL is not a valid URL.", field=where) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookUrl(
            "The webhook URL must be an absolute http:// or https:// URL "
            "(https://example.com/hooks/images).",
            field=where,
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl(
            "The webhook URL must not carry a user name or password: verify deliveries by "
            "their signature instead.",
            field=where,
        )
    host = parts.hostname
    if not _host_allowed(host, port, allow):
        try:
            why = refused_address(host)
        except ValueError:  # a name: checked when it is resolved
            why = "a local name" if host == "localhost" or host.endswith(".localhost") else None
        if why is not None:
            raise InvalidWebhookUrl(
                f"The webhook URL points to {why} ({host}): webhooks go to public addresses "
                "only (an administrator can allow a host with NANOBANANA_WEBHOOK_ALLOW_HOSTS).",
                field=where,
            )


async def check_name(url: str, allow: Iterable[str]) -> None:
    """``check_url`` for a URL already checked by it, with its host's name resolved now: a name
    that resolves to an address webhooks may not go to is refused (``InvalidWebhookUrl``).
    One that does not resolve (yet) is let through: deliveries check again when they are
    sent.  For a default URL, saved once and used by many generations; a generation's own URL
    is not resolved at intake (its call is not held up by a lookup)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", _port(parts)
    if _host_allowed(host, port, allow):
        return
    try:
        refused_address(host)
        return  # an address, checked already
    except ValueError:
        pass
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            addresses = await resolve(host, port)
    except (OSError, TimeoutError):
        return
    for address in addresses:
        why = refused_address(address)
        if why is not None:
            raise InvalidWebhookUrl(
                f"The webhook URL's host {host} resolves to {why} ({address}): webhooks go to "
                "public addresses only (an administrator can allow a host with "
                "NANOBANANA_WEBHOOK_ALLOW_HOSTS).",
                field="webhook_url",
            )


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (the system's resolver)."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


class TargetRefused(OSError):
    """The name of a webhook's host resolved to an address webhooks may not go to."""


def guarded_resolver(allow: Sequence[str]) -> Any:
    """An aiohttp resolver that refuses (``TargetRefused``) a host resolving to an address
    ``refused_address`` names, unless the host is allowed; the connection then goes to the
    addresses it checked."""
    from aiohttp.abc import AbstractResolver, ResolveResult
    from aiohttp.resolver import ThreadedResolver

    class GuardedResolver(AbstractResolver):
        def __init__(self) -> None:
            self._inner = ThreadedResolver()

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            found = await self._inner.resolve(host, port, family)
            if _host_allowed(host, port, allow):
                return found
            for entry in found:
                why = refused_address(entry["host"])
                if why is not None:
                    raise TargetRefused(f"{host} resolves to {why} ({entry['host']})")
            return found

        async def close(self) -> None:
            await self._inner.close()

    return GuardedResolver()


# ---------------------------------------------------------------------------- the outbox
def enqueue(jobs: Any, now: datetime, *, event: str | None = None) -> Any:
    """The statement writing the delivery of each job ``jobs`` (job ids, or a select of them)
    that has a webhook, in the transaction that ends it.  ``event``: default ``generation.``
    and the job's status, so the statement runs after the job's row was updated."""
    kind = literal(event) if event is not None else literal("generation.") + Job.status
    rows = select(
        Job.id,
        Job.user_id,
        Job.webhook_url,
        kind,
        literal("pending"),
        literal(now, type_=WebhookDelivery.created_at.type),
        literal(now, type_=WebhookDelivery.next_attempt_at.type),
        literal(0),
    ).where(Job.id.in_(jobs), Job.webhook_url.is_not(None))
    columns = ["job_id", "user_id", "url", "event", "state", "created_at", "next_attempt_at"]
    return insert(WebhookDelivery).from_select([*columns, "attempts"], rows)


def enqueue_one(job_id: str, now: datetime, *, event: str | None = None) -> Any:
    return enqueue([job_id], now, event=event)


# ---------------------------------------------------------------------------- secrets
@dataclass(frozen=True)
class Secrets:
    current: str
    previous: str | None
    previous_until: datetime | None

    def previous_valid_until(self, now: datetime) -> datetime | None:
        """Until when the secret before the last rotation still signs (None: it does not)."""
        if self.previous is None or self.previous_until is None or self.previous_until <= now:
            return None
        return self.previous_until

    def signing(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with now."""
        previous = [self.previous] if self.previous_valid_until(now) and self.previous else []
        return [self.current, *previous]


async def secrets_of(session: AsyncSession, vault: Any, user_id: str, now: datetime) -> Secrets:
    """The user's signing secrets, made on first use (the caller commits).  Two first uses at
    once (a delivery and the settings page) make one secret: the second insert is a no-op."""
    row = await session.get(WebhookSecret, user_id)
    if row is None:
        values = {"user_id": user_id, "secret_enc": vault.encrypt(new_secret()), "created_at": now}
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(WebhookSecret).values(**values).on_conflict_do_nothing()
        await session.execute(stmt)
        row = await session.get(WebhookSecret, user_id, populate_existing=True)
        assert row is not None
    previous = vault.decrypt(row.previous_enc) if row.previous_enc is not None else None
    return Secrets(vault.decrypt(row.secret_enc), previous, row.previous_until)


async def rotate(session: AsyncSession, vault: Any, user_id: str, now: datetime) -> Secrets:
    """A new secret; the one it replaces still signs deliveries for ``ROTATION_GRACE``."""
    old = await secrets_of(session, vault, user_id, now)
    row = await session.get(WebhookSecret, user_id)
    assert row is not None
    row.previous_enc = vault.encrypt(old.current)
    row.previous_until = now + ROTATION_GRACE
    row.secret_enc = vault.encrypt(new_secret())
    row.created_at = now
    await session.flush()
    return Secrets(vault.decrypt(row.secret_enc), old.current, row.previous_until)


# ---------------------------------------------------------------------------- deliveries
def delivery_out(row: WebhookDelivery) -> dict[str, Any]:
    """A delivery and its attempts (``schemas.WebhookDeliveryOut``)."""
    return {
        "id": message_id(row.job_id),
        "generation_id": row.job_id,
        "url": row.url,
        "event": row.event,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "next_attempt_at": row.next_attempt_at if row.state == "pending" else None,
        "delivered_at": row.delivered_at,
        "log": list(row.log or []),
    }


def next_attempt(created_at: datetime, attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed ones (None: give up)."""
    wait = BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]
    at = now + timedelta(seconds=wait)
    return at if at <= created_at + GIVE_UP_AFTER else None


def _absolute(data: dict[str, Any], base: str | None) -> dict[str, Any]:
    if base:
        for image in data.get("images", []):
            for key in ("url", "thumbnail_url"):
                if isinstance(image.get(key), str) and image[key].startswith("/"):
                    image[key] = base + image[key]
        data["url"] = f"{base}/api/generations/{data['id']}"
        data["events_url"] = base + data["events_url"]
    return data


async def payloads(
    session: AsyncSession, deliveries: Sequence[WebhookDelivery], base: str | None
) -> dict[str, str]:
    """The bodies of ``deliveries`` (by job id), read together: each generation as it ended,
    images as links; ``timestamp``: when it ended."""
    ids = [d.job_id for d in deliveries]
    jobs = {j.id: j for j in await session.scalars(select(Job).where(Job.id.in_(ids)))}
    images: dict[str, list[StoredImage]] = {job_id: [] for job_id in jobs}
    for image in await session.scalars(select(StoredImage).where(StoredImage.job_id.in_(ids))):
        images[image.job_id].append(image)
    out = {}
    for delivery in deliveries:
        job = jobs.get(delivery.job_id)
        if job is None:  # deleted before its delivery was first sent
            data: dict[str, Any] = {"id": delivery.job_id, "deleted": True}
        else:
            data = _absolute(generation_out(job, images[job.id]), base)
        body = {"type": delivery.event, "timestamp": _iso(delivery.created_at), "data": data}
        out[delivery.job_id] = json.dumps(
            body, separators=(",", ":"), ensure_ascii=False, default=str
        )
    return out


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class Dispatcher:
    """Sends the deliveries that are due, in every process that runs jobs."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self._wake = asyncio.Event()
        self._http: Any = None

    def wake(self) -> None:
        """A delivery was written here: send it now rather than at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        import aiohttp

        allow = tuple(self.s.settings.webhook_allow_hosts)
        connector = aiohttp.TCPConnector(resolver=guarded_resolver(allow), limit=BATCH)
        async with aiohttp.ClientSession(connector=connector) as http:
            self._http = http
            while True:
                wait = IDLE_SECONDS
                try:
                    while await self.send_due():
                        pass
                    wait = await self._until_next()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 (the database may be away a moment)
                    log.warning("Webhook deliveries could not be sent: %s", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()

    async def _until_next(self) -> float:
        """Seconds until the next pending delivery is due, at most ``IDLE_SECONDS``: a
        delivery written by this process wakes it sooner (``wake``), one written by another
        (a job it interrupted) is found within that time."""
        due = (
            select(func.min(WebhookDelivery.next_attempt_at))
            .where(WebhookDelivery.state == "pending")
            .scalar_subquery()
        )
        first = await self.s.tx.run(lambda conn: conn.execute(select(due)).scalar())
        if first is None:
            return IDLE_SECONDS
        return min(max((first - self.s.now()).total_seconds(), 0.05), IDLE_SECONDS)

    async def send_due(self) -> int:
        """Claim what is due and send it; how many were claimed.  A batch is read in one
        session, sent at once, and its attempts recorded in one transaction."""
        now = self.s.now()
        claimed = await self.s.tx.run(lambda conn: _claim(conn, now))
        if not claimed:
            return 0
        ready = await self._prepare(claimed, now)
        done = await asyncio.gather(*(self._send(*one, now) for one in ready))

        def record(conn: Connection) -> None:
            for job_id, entry, status, final in done:
                _record(conn, job_id, entry, status, final, self.s.now())

        await self.s.tx.run(record)
        return len(claimed)

    async def _prepare(
        self, claimed: list[str], now: datetime
    ) -> list[tuple[str, str, bytes, list[str]]]:
        """(job id, URL, body, signing secrets) of each claimed delivery still pending; its
        body is kept on first use, so that every attempt sends the same."""
        async with self.s.sessionmaker() as session:
            rows = list(
                await session.scalars(
                    select(WebhookDelivery).where(
                        WebhookDelivery.job_id.in_(claimed), WebhookDelivery.state == "pending"
                    )
                )
            )
            new = [row for row in rows if row.payload is None]
            if new:
                bodies = await payloads(session, new, self.s.settings.public_url)
                for row in new:
                    row.payload = bodies[row.job_id]
            signing: dict[str, list[str]] = {}
            for user_id in {row.user_id for row in rows}:
                try:
                    secrets_now = await secrets_of(session, self.s.vault, user_id, now)
                except InvalidToken:  # no master key opens it: left for the lease to end
                    log.error("A user's webhook secret cannot be decrypted; not sending.")
                    continue
                signing[user_id] = secrets_now.signing(now)
            await session.commit()
        return [
            (r.job_id, r.url, r.payload.encode(), signing[r.user_id])
            for r in rows
            if r.user_id in signing and r.payload is not None
        ]

    async def _send(
        self, job_id: str, url: str, body: bytes, signing: list[str], now: datetime
    ) -> tuple[str, dict[str, Any], int | None, bool]:
        """One attempt: (job id, its log entry, the status code, whether it is final)."""
        started = time.monotonic()
        stamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "nanobanana-webhooks",
            "webhook-id": message_id(job_id),
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature_header(signing, message_id(job_id), stamp, body),
        }
        status, error, final = await self._post(url, body, headers)
        entry: dict[str, Any] = {
            "at": _iso(now),
            "status_code": status,
            "error": error,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }
        return job_id, entry, status, final

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None, bool]:
        """(status code, error, whether to give up now)."""
        import aiohttp

        try:
            check_url(url, self.s.settings.webhook_allow_hosts)
            async with self._http.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            ) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return resp.status, None, True
                if resp.status == GONE:
                    return resp.status, "HTTP 410: the receiver is gone; not tried again", True
                return resp.status, f"HTTP {resp.status}", False
        except InvalidWebhookUrl as exc:
            return None, exc.message, True
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, TargetRefused):
                return None, f"Refused: {exc.os_error}; webhooks go to public addresses only.", True
            return None, f"Could not connect ({type(exc.os_error).__name__})", False
        except TargetRefused as exc:
            return None, f"Refused: {exc}; webhooks go to public addresses only.", True
        except TimeoutError:
            return None, f"No answer within {TIMEOUT_SECONDS:.0f} s", False
        except aiohttp.ClientError as exc:
            return None, f"The connection failed ({type(exc).__name__})", False


def _claim(conn: Connection, now: datetime) -> list[str]:
    """The deliveries due now, each claimed for ``LEASE`` (another process skips them)."""
    due = (
        select(WebhookDelivery.job_id)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(BATCH)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(conn.execute(due).scalars())
    if ids:
        conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.job_id.in_(ids))
            .values(next_attempt_at=now + LEASE)
        )
    return ids


def _record(
    conn: Connection,
    job_id: str,
    entry: dict[str, Any],
    status: int | None,
    final: bool,
    now: datetime,
) -> None:
    row = conn.execute(
        select(WebhookDelivery.attempts, WebhookDelivery.created_at, WebhookDelivery.log).where(
            WebhookDelivery.job_id == job_id
        )
    ).first()
    if row is None:
        return
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "log": [*(row.log or []), entry][-LOG_LENGTH:]}
    delivered = status is not None and 200 <= status < 300
    if delivered:
        values.update(state="delivered", delivered_at=now)
    else:
        retry_at = None if final else next_attempt(row.created_at, attempts, now)
        if retry_at is None:
            values["state"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
    conn.execute(update(WebhookDelivery).where(WebhookDelivery.job_id == job_id).values(**values))
