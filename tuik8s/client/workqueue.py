"""A rate-limited work queue of keys, with client-go's guarantees, on asyncio.

Controllers enqueue `namespace/name` keys from informer handlers and workers reconcile
them (DESIGN rule 3). The queue makes two promises that keep that loop correct:

- A key waits in the queue at most once: ten events for one object before a worker gets
  to it cost one reconcile, since the reconcile reads the latest state anyway.
- A key is never processed by two workers at once. A key added while a worker holds it
  is marked dirty and queued again when the worker calls `done`, so the change that
  arrived mid-reconcile is not lost and not raced.

Delays (`add_after`, `add_rate_limited`) run on the event loop's clock (`loop.time()` and
`loop.call_at`), so a test loop with virtual time checks them without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0


class ShutDown(Exception):
    """`get()` on a queue that is shut down and has nothing left to hand out."""


class RateLimiter(Protocol[K_contra]):
    """Decides how long a failing key waits before its next try."""

    def when(self, key: K_contra) -> float:
        """The delay before `key` may be retried; counts one more failure."""
        ...

    def forget(self, key: K_contra) -> None: ...

    def num_requeues(self, key: K_contra) -> int: ...


class ExponentialBackoff(Generic[K]):
    """Per-key delay `base * 2**failures`, at most `cap` (client-go: 5 ms to 1000 s)."""

    def __init__(self, base: float = DEFAULT_BASE_DELAY, cap: float = DEFAULT_MAX_DELAY) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base outgrows any sane cap; avoid huge floats
            return self.cap
        return min(self.base * float(2**failures), self.cap)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class WorkQueue(Generic[K]):
    """Deduplicating FIFO of keys with per-key processing, delays and backoff.

    Workers loop `key = await q.get()`, reconcile, then `q.forget(key)` on success or
    `q.add_rate_limited(key)` on failure, and always `q.done(key)`. Not thread-safe: use
    it from the event loop's thread.
    """

    def __init__(
        self,
        *,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        rate_limiter: RateLimiter[K] | None = None,
        name: str = "",
    ) -> None:
        self.name = name
        self.rate_limiter: RateLimiter[K] = rate_limiter or ExponentialBackoff(base_delay, max_delay)
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        # delayed adds: the earliest ready time per key, and a heap with stale entries
        self._waiting: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- the basic queue ----------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue `key` unless it already waits; if a worker holds it, queue it after `done`."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    async def get(self) -> K:
        """The next key, which is then the caller's until `done(key)`.

        Raises `ShutDown` once the queue is shut down and empty.
        """
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name or "work queue")
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake_one()  # we were handed a key we won't take: pass it on
                with contextlib.suppress(ValueError):
                    self._getters.remove(fut)
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        """The worker is finished with `key`; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Refuse new keys; `get` hands out what is queued, then raises `ShutDown`."""
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
        self._heap.clear()
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def len(self) -> int:
        """How many keys are queued (not counting those being processed or delayed)."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    def _wake_one(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # ---- delays -------------------------------------------------------------------

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` once `delay` seconds have passed; an earlier pending add wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = self._loop = asyncio.get_running_loop()
        ready = loop.time() + delay
        pending = self._waiting.get(key)
        if pending is not None and pending <= ready:
            return
        self._waiting[key] = ready
        heapq.heappush(self._heap, (ready, next(self._seq), key))
        self._arm()

    def _arm(self) -> None:
        while self._heap and self._waiting.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # superseded by an earlier add_after of the same key
        if not self._heap or self._loop is None:
            return
        at = self._heap[0][0]
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        # the loop may run a timer a clock tick early: what was due at its time is due now
        due_by = self._timer_at
        while self._heap and self._heap[0][0] <= due_by:
            ready, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) == ready:
                del self._waiting[key]
                self.add(key)
        self._arm()

    # ---- rate limiting ------------------------------------------------------------

    def add_rate_limited(self, key: K) -> None:
        """Add `key` after its backoff, which doubles with every call until `forget`."""
        if self._shutting_down:
            return
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """`key` succeeded: its next failure starts again from the base delay."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)
