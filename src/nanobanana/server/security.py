"""Passwords, bearer tokens, encryption of stored provider keys, and login rate limits.

- Passwords: Argon2id through pwdlib; hashing runs in a worker thread (it takes ~0.1 s of CPU)
  and an unknown user is checked against a dummy hash so that timing does not tell who exists.
- Tokens: opaque ``secrets.token_urlsafe(32)`` values; only their SHA-256 is stored.
- Provider keys: Fernet under the master key(s), ``MultiFernet`` so that a new key can be put
  first and old rows rotated (``KeyVault.rotate``).  The master key is never stored in the
  database it protects.
- Login limits: a sliding window of failures per account and per client address, in memory
  (``RateLimiter`` is the interface a shared store such as Redis would implement).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from .settings import Settings

log = logging.getLogger("nanobanana.server")

#: Tokens longer than this are refused before any lookup (ours are 43 characters).
MAX_TOKEN_CHARS = 256


class StartupError(RuntimeError):
    """The service cannot start as configured; the message says what to fix."""


# ------------------------------------------------------------------------------ passwords
class Passwords:
    """Argon2id hashing off the event loop, with a bounded number of hashes at a time."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_kib,
                    parallelism=settings.argon2_parallelism,
                ),
            )
        )
        # Hashing is CPU and memory heavy: more at once than cores only queues in threads.
        self._slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(valid, new hash if the parameters rose).  ``hashed=None`` (unknown user) still
        spends the time of a real check and returns False."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        target = hashed or self._dummy
        async with self._slots:
            ok, new = await asyncio.to_thread(self._hasher.verify_and_update, password, target)
        if hashed is None:
            return False, None
        return ok, new


# --------------------------------------------------------------------------------- tokens
def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------------- provider key vault
class KeyVault:
    """Encrypts provider keys; the first master key encrypts, every key decrypts."""

    def __init__(self, master_keys: list[bytes]) -> None:
        if not master_keys:
            raise StartupError("No master key: set NANOBANANA_MASTER_KEYS or let one be generated.")
        fernets = []
        for i, key in enumerate(master_keys, 1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                raise StartupError(
                    f"Master key #{i} is not a valid Fernet key (32 url-safe base64-encoded "
                    "bytes). Generate one with: python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())'"
                ) from exc
        self._multi = MultiFernet(fernets)
        self._primary = fernets[0]
        self.count = len(fernets)

    def encrypt(self, secret: str) -> bytes:
        return self._multi.encrypt(secret.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        """Raise ``InvalidToken`` when no master key opens it."""
        return self._multi.decrypt(token).decode("utf-8")

    def needs_rotation(self, token: bytes) -> bool:
        try:
            self._primary.decrypt(token)
        except InvalidToken:
            return True
        return False

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the first master key (raises ``InvalidToken`` if unreadable)."""
        return self._multi.rotate(token)


def load_master_keys(settings: Settings, *, create: bool | None = None) -> list[bytes]:
    """From ``NANOBANANA_MASTER_KEYS``, else the key file, created with mode 0600 if absent
    when ``create`` (by default: when this process runs its own jobs).  A process that shares
    the database with others (a worker, a web process of ``NANOBANANA_JOBS=external``) never
    makes a key of its own: the keys the others stored would be unreadable to it, and its
    own to them."""
    if settings.master_keys:
        return [k.get_secret_value().encode("ascii", "replace") for k in settings.master_keys]
    path = settings.resolved_master_key_file
    if path.exists():
        return _read_key_file(path)
    if not (settings.jobs == "embedded" if create is None else create):
        raise StartupError(
            "Processes that share a database need the same master key: set "
            "NANOBANANA_MASTER_KEYS to the key the others use (or copy their master.key to "
            f'{path}). Make one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_key_file(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.info("Generated a new master key in %s (mode 0600). Back it up with the database.", path)
    return [key]


def _read_key_file(path: Path) -> list[bytes]:
    try:
        lines = path.read_bytes().split()
    except OSError as exc:
        raise StartupError(f"Cannot read the master key file {path}: {exc.strerror}.") from exc
    keys = [ln.strip() for ln in lines if ln.strip() and not ln.startswith(b"#")]
    if not keys:
        raise StartupError(f"The master key file {path} is empty.")
    if path.stat().st_mode & 0o077:
        log.warning("The master key file %s is readable by others; chmod 600 it.", path)
    return keys


# ---------------------------------------------------------------------------- rate limits
class RateLimiter(Protocol):
    """Counts events per key in a sliding window: in this process (``MemoryRateLimiter``) or
    in every process sharing a Redis (``sharedlimits.RedisRateLimiter``)."""

    limit: int

    async def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None when it is not limited."""
        ...

    async def take(self, key: str) -> float | None:
        """Count one event of ``key`` unless it is limited, in one step (None: counted; else
        the seconds to wait, and nothing counted)."""
        ...

    async def hit(self, key: str) -> None:
        """Count one event of ``key``, limited or not."""
        ...

    async def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def _prune(self, key: str) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        cutoff = self._clock() - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def _wait(self, key: str) -> float | None:
        hits = self._prune(key)
        if hits is None or len(hits) < self.limit:
            return None
        return max(0.0, hits[0] + self.window - self._clock())

    def _count(self, key: str) -> None:
        self._prune(key)
        self._hits.setdefault(key, deque()).append(self._clock())
        if len(self._hits) > 100_000:  # bound memory under a flood of distinct keys
            for k in list(self._hits)[:10_000]:
                self._prune(k)

    async def retry_after(self, key: str) -> float | None:
        return self._wait(key)

    async def take(self, key: str) -> float | None:
        wait = self._wait(key)
        if wait is None:
            self._count(key)
        return wait

    async def hit(self, key: str) -> None:
        self._count(key)

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)


class LoginGuard:
    """Failed-login limits per account and per client address (``limiter(limit, window)``
    makes each counter: in memory by default, on Redis when processes share one)."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        limiter: Callable[[str, int, float], RateLimiter] | None = None,
    ) -> None:
        window = settings.login_window_seconds

        def memory(_name: str, limit: int, seconds: float) -> RateLimiter:
            return MemoryRateLimiter(limit, seconds, clock)

        make = limiter or memory
        self.accounts = make("login-account", settings.login_max_failures_per_account, window)
        self.addresses = make("login-address", settings.login_max_failures_per_address, window)

    async def retry_after(self, account: str, address: str) -> int | None:
        waits = [
            w
            for w in (
                await self.accounts.retry_after(account),
                await self.addresses.retry_after(address),
            )
            if w is not None
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    async def failed(self, account: str, address: str) -> None:
        await self.accounts.hit(account)
        await self.addresses.hit(address)

    async def succeeded(self, account: str) -> None:
        await self.accounts.reset(account)
