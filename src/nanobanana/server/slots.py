"""Running-job slots: at most ``total`` jobs run at once, and at most ``per_user`` per user.

``try_take`` takes a slot at once or not at all (no waiting), so a request can create its job
directly as ``running`` when there is room: one transaction instead of two.  ``take`` waits in
first-come order.  A user at their own limit never blocks other users: their waiters are
skipped while others may run, and the global limit is only counted for jobs that run.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    def __init__(self, total: int, per_user: int) -> None:
        self._total = total
        self._per_user = per_user
        self._running = 0
        self._by_user: dict[str, int] = {}
        self._waiters: deque[tuple[str, asyncio.Future[None]]] = deque()

    @property
    def running(self) -> int:
        return self._running

    def _fits(self, user_id: str) -> bool:
        return self._running < self._total and self._by_user.get(user_id, 0) < self._per_user

    def _grant(self, user_id: str) -> None:
        self._running += 1
        self._by_user[user_id] = self._by_user.get(user_id, 0) + 1

    def try_take(self, user_id: str) -> bool:
        """Take a slot now if one is free.  After every release the waiters that fit were
        already granted (``_pump``), so taking a free slot never jumps a waiter that could run."""
        if not self._fits(user_id):
            return False
        self._grant(user_id)
        return True

    async def take(self, user_id: str) -> None:
        if self.try_take(user_id):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((user_id, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted just before the cancellation
                self.give(user_id)
            raise

    def give(self, user_id: str) -> None:
        self._running -= 1
        left = self._by_user.get(user_id, 1) - 1
        if left <= 0:
            self._by_user.pop(user_id, None)
        else:
            self._by_user[user_id] = left
        self._pump()

    def _pump(self) -> None:
        """Grant waiters in arrival order while slots are free (skipping users at their limit)."""
        if not self._waiters:
            return
        kept: deque[tuple[str, asyncio.Future[None]]] = deque()
        while self._waiters:
            user_id, fut = self._waiters.popleft()
            if fut.done():  # cancelled while waiting
                continue
            if self._running >= self._total:
                kept.append((user_id, fut))
                kept.extend(self._waiters)
                self._waiters.clear()
                break
            if self._by_user.get(user_id, 0) < self._per_user:
                self._grant(user_id)
                fut.set_result(None)
            else:
                kept.append((user_id, fut))
        self._waiters = kept
