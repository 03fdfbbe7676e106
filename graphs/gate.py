"""How many pairs the runner works on at once, and parking while a slow resource loads."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PairGate:
    """At most `limit` pairs working at once. A pair that waits for something loading in the
    background (a tokenizer at the start of a run) can park: it stops counting, so another
    pair starts (and sends its LLM request) meanwhile; back from parking, it counts again,
    even if that puts the gate over its limit for a while. At most `park_limit` pairs park
    at once (0: parking does not free a place; use it when nothing else bounds the LLM
    requests)."""

    def __init__(self, limit: int, *, park_limit: int = 0) -> None:
        if limit < 1:
            raise ValueError(f"the pair limit must be at least 1, got {limit}")
        self.limit = limit
        self.park_limit = max(0, park_limit)
        self.working = 0
        self.parked_now = 0
        self.peak_parked = 0  # the most pairs parked at once (tests and benches read it)
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> None:
        """Wait for a place, then take it."""
        while self.working >= self.limit:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future in self._waiters:
                    self._waiters.remove(future)
                elif future.done() and not future.cancelled():
                    self._wake()  # woken, then cancelled: the place goes to the next waiter
                raise
        self.working += 1

    def leave(self) -> None:
        """Give the place back."""
        self.working -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.working
        while free > 0 and self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                free -= 1

    @asynccontextmanager
    async def parked(self) -> AsyncIterator[None]:
        """Not counted inside this block (while the park has room)."""
        if self.parked_now >= self.park_limit:
            yield
            return
        self.parked_now += 1
        self.peak_parked = max(self.peak_parked, self.parked_now)
        self.leave()
        try:
            yield
        finally:
            self.parked_now -= 1
            self.working += 1
