"""A short-lived, in-process cache of who a bearer token belongs to (see ``AuthCache``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .db.models import Token, User


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float  # monotonic
    user: dict[str, object]
    token: dict[str, object]


#: The columns kept (the password hash is not: no route that takes a token needs it).
_USER_FIELDS = ("id", "username", "username_key", "is_admin", "is_active", "created_at")
_TOKEN_FIELDS = (
    "id",
    "user_id",
    "token_hash",
    "kind",
    "name",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
)


class AuthCache:
    """The user and token rows behind a token hash, kept briefly.

    Every request checks its bearer token; the query and its transaction were, after the
    generation itself, the largest database cost of a generation.  What can end a token's
    validity early goes through this process's routes and drops the user's entries at once
    (``forget_user``): logout, revoking a token, an admin disabling an account or changing its
    role.  A token's own expiry is checked on every hit.  Processes sharing a Redis tell each
    other within milliseconds (``broadcast``); without it ``ttl`` bounds how long another
    process sharing the database could still accept a revoked token.

    Each hit returns fresh, transient ``User`` and ``Token`` objects (never instances shared
    between requests, so one request's session cannot expire another's).  Unknown tokens are
    never cached.  A read that began before a ``forget_user`` does not store what it read (an
    epoch moves on every forget), so a revocation can never be undone by a slow request.
    """

    def __init__(
        self,
        ttl: float = 30.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._epoch = 0

    def __repr__(self) -> str:
        return f"AuthCache(entries={len(self._entries)})"

    @property
    def epoch(self) -> int:
        """Read before a database lookup; hand back to ``put``."""
        return self._epoch

    def get(self, token_hash: str) -> tuple[User, Token] | None:
        hit = self._entries.get(token_hash)
        if hit is None:
            return None
        if hit.expires <= self._clock():
            del self._entries[token_hash]
            return None
        return User(**hit.user), Token(**hit.token)

    def put(self, token_hash: str, user: User, token: Token, epoch: int) -> None:
        if epoch != self._epoch:
            return  # something was revoked while this was read: do not keep it
        if len(self._entries) >= self.max_entries:
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v.expires > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[token_hash] = _Entry(
            self._clock() + self.ttl,
            {f: getattr(user, f) for f in _USER_FIELDS},
            {f: getattr(token, f) for f in _TOKEN_FIELDS},
        )

    #: Tells the other processes (``sharedbus.share_messages``), when they share a Redis.
    broadcast: Callable[[str], None] | None = None

    def forget_user(self, user_id: str) -> None:
        """Drop every cached token of ``user_id`` (call after the change is committed), here
        and, with a shared Redis, in every process."""
        self.drop_user(user_id)
        if self.broadcast is not None:
            self.broadcast(user_id)

    def drop_user(self, user_id: str) -> None:
        """``forget_user`` in this process only."""
        self._epoch += 1
        self._entries = {k: v for k, v in self._entries.items() if v.user["id"] != user_id}
