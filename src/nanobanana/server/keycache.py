"""A short-lived, in-process cache of decrypted provider keys (see ``KeyCache``)."""

from __future__ import annotations

import time
from collections.abc import Callable


class KeyCache:
    """A user's decrypted provider keys (and the admin's server-keys switch), kept briefly.

    Every generation needs them twice (the check before the job exists, then the call); the
    query and the Fernet decryption were a sizeable part of a generation's CPU.  PUT/DELETE of
    a key and the admin switch drop the entry at once (``forget``), so in this process the next
    generation uses the new key; ``ttl`` bounds how long another process of the same database
    could still use a replaced key (processes sharing a Redis tell each other at once).
    Plaintext keys only live in this process's memory, as
    they already did for the call itself: never logged (no ``repr``), never persisted.
    """

    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._keys: dict[str, tuple[float, dict[str, str]]] = {}
        self._allowed: tuple[float, bool] | None = None

    def __repr__(self) -> str:
        return f"KeyCache(users={len(self._keys)})"

    def get(self, user_id: str) -> dict[str, str] | None:
        hit = self._keys.get(user_id)
        if hit is None:
            return None
        if hit[0] <= self._clock():
            del self._keys[user_id]
            return None
        return hit[1]

    def put(self, user_id: str, keys: dict[str, str]) -> None:
        if len(self._keys) > 10_000:  # bound memory: drop expired entries, then everything
            now = self._clock()
            self._keys = {u: v for u, v in self._keys.items() if v[0] > now}
            if len(self._keys) > 10_000:
                self._keys.clear()
        self._keys[user_id] = (self._clock() + self.ttl, keys)

    #: Tells the other processes (``sharedbus.share_messages``): ("keys", user id) or
    #: ("allowed", "").
    broadcast: Callable[[str, str], None] | None = None

    def forget(self, user_id: str) -> None:
        """Drop ``user_id``'s keys here and, with a shared Redis, in every process."""
        self.drop(user_id)
        if self.broadcast is not None:
            self.broadcast("keys", user_id)

    def drop(self, user_id: str) -> None:
        self._keys.pop(user_id, None)

    def get_allowed(self) -> bool | None:
        if self._allowed is None or self._allowed[0] <= self._clock():
            return None
        return self._allowed[1]

    def put_allowed(self, value: bool) -> None:
        self._allowed = (self._clock() + self.ttl, value)

    def forget_allowed(self) -> None:
        self.drop_allowed()
        if self.broadcast is not None:
            self.broadcast("allowed", "")

    def drop_allowed(self) -> None:
        self._allowed = None
