"""The work queue: client-go's dedup, processing and backoff guarantees, on asyncio.

Delays are checked on an event loop whose clock jumps to the next timer instead of
sleeping, so a 1000 s backoff costs nothing and every time asserted is exact.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tuik8s.client.workqueue import ExponentialBackoff, ShutDown, WorkQueue

T = TypeVar("T")


class _SkippingSelector:
    """The loop's selector, except that waiting for a timer moves the clock to it."""

    def __init__(self, loop: VirtualClockLoop, inner: selectors.BaseSelector) -> None:
        self._loop = loop
        self._inner = inner

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = self._inner.select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("stuck: every task waits and no timer is pending")
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: `loop.time()` only moves when every task waits."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._selector = _SkippingSelector(self, self._selector)  # type: ignore[has-type]

    def time(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, T]) -> T:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def now() -> float:
    return asyncio.get_running_loop().time()


async def drain(q: WorkQueue[str]) -> list[str]:
    """Every key queued right now, each marked done."""
    keys = []
    while q.len():
        key = await q.get()
        q.done(key)
        keys.append(key)
    return keys


# --- dedup and processing ----------------------------------------------------------------


def test_a_key_waits_in_the_queue_only_once() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        for key in ("a", "b", "a", "a", "c", "b"):
            q.add(key)
        assert q.len() == len(q) == 3
        assert await drain(q) == ["a", "b", "c"]

    run(scenario())


def test_a_key_added_while_processing_is_queued_again_after_done() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        key = await q.get()
        q.add("a")
        q.add("a")
        assert q.len() == 0, "never handed to a second worker while the first holds it"
        q.done(key)
        assert q.len() == 1
        assert await q.get() == "a"
        q.done("a")
        assert q.len() == 0

    run(scenario())


def test_done_without_a_re_add_does_not_requeue() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        q.done(await q.get())
        assert q.len() == 0

    run(scenario())


def test_concurrent_workers_never_hold_the_same_key() -> None:
    async def scenario() -> list[tuple[str, str]]:
        q: WorkQueue[str] = WorkQueue()
        holding: set[str] = set()
        log: list[tuple[str, str]] = []

        async def worker(name: str) -> None:
            while True:
                try:
                    key = await q.get()
                except ShutDown:
                    return
                assert key not in holding
                holding.add(key)
                log.append((name, key))
                await asyncio.sleep(1)
                holding.discard(key)
                q.done(key)

        workers = [asyncio.create_task(worker(f"w{i}")) for i in range(3)]
        for _ in range(3):
            for key in ("x", "y"):
                q.add(key)
            await asyncio.sleep(0.25)  # all three adds land within the first pass
        await asyncio.sleep(5)
        q.shutdown()
        await asyncio.gather(*workers)
        return log

    log = run(scenario())
    keys = [k for _, k in log]
    # the first pass of x and y, then one more each for all the adds made meanwhile
    assert sorted(keys) == ["x", "x", "y", "y"]


def test_a_cancelled_get_passes_its_wakeup_on() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        first = asyncio.create_task(q.get())
        second = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.add("a")  # wakes `first`
        first.cancel()
        assert await asyncio.wait_for(second, 1) == "a"

    run(scenario())


# --- delays and backoff ------------------------------------------------------------------


def test_add_after_hands_keys_out_in_due_order_at_their_time() -> None:
    async def scenario() -> list[tuple[str, float]]:
        q: WorkQueue[str] = WorkQueue()
        start = now()
        q.add_after("late", 3)
        q.add_after("soon", 1)
        q.add_after("middle", 2)
        assert q.len() == 0
        got = []
        for _ in range(3):
            key = await q.get()
            got.append((key, now() - start))
            q.done(key)
        return got

    assert run(scenario()) == [("soon", 1.0), ("middle", 2.0), ("late", 3.0)]


@pytest.mark.parametrize(
    ("delays", "due"),
    [
        pytest.param((5, 1), 1.0, id="a-sooner-add-moves-it-earlier"),
        pytest.param((1, 5), 1.0, id="a-later-add-keeps-the-earlier-time"),
        pytest.param((2, 0), 0.0, id="no-delay-adds-at-once"),
    ],
)
def test_add_after_of_a_waiting_key_keeps_the_earliest_time_once(delays: tuple[float, float], due: float) -> None:
    async def scenario() -> tuple[float, int]:
        q: WorkQueue[str] = WorkQueue()
        start = now()
        for delay in delays:
            q.add_after("k", delay)
        key = await q.get()
        at = now() - start
        q.done(key)
        await asyncio.sleep(10)  # any leftover delayed add would be queued by now
        return at, q.len()

    at, left = run(scenario())
    assert at == due
    # a zero delay adds at once and the other delay is still pending; the others merge
    assert left == (1 if 0 in delays else 0)


def test_a_delayed_key_that_is_already_queued_is_not_queued_twice() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        q.add_after("a", 1)
        await asyncio.sleep(2)
        assert q.len() == 1

    run(scenario())


def test_rate_limited_delays_double_per_key_up_to_the_cap_and_reset_on_forget() -> None:
    async def scenario() -> tuple[list[float], list[int], float, float]:
        q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.1)
        delays, requeues = [], []
        for _ in range(6):
            start = now()
            q.add_rate_limited("k")
            q.done(await q.get())
            delays.append(round(now() - start, 6))
            requeues.append(q.num_requeues("k"))
        start = now()
        q.add_rate_limited("other")
        q.done(await q.get())
        other = round(now() - start, 6)
        q.forget("k")
        start = now()
        q.add_rate_limited("k")
        q.done(await q.get())
        return delays, requeues, other, round(now() - start, 6)

    delays, requeues, other, after_forget = run(scenario())
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.1, 0.1]
    assert requeues == [1, 2, 3, 4, 5, 6]
    assert other == 0.01, "backoff is per key"
    assert after_forget == 0.01


def test_default_backoff_is_client_go_5ms_to_1000s() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff()
    delays = [backoff.when("k") for _ in range(100)]
    assert delays[:3] == [0.005, 0.01, 0.02]
    assert max(delays) == delays[-1] == 1000.0
    assert backoff.num_requeues("k") == 100
    backoff.forget("k")
    assert backoff.num_requeues("k") == 0


def test_a_rate_limited_key_waits_its_full_backoff_on_the_default_limits() -> None:
    async def scenario() -> float:
        q: WorkQueue[str] = WorkQueue()
        for _ in range(30):
            q.rate_limiter.when("k")
        start = now()
        q.add_rate_limited("k")
        q.done(await q.get())
        return now() - start

    assert run(scenario()) == 1000.0


@pytest.mark.parametrize(("base", "cap"), [(0, 1), (-1, 1), (2, 1)], ids=["zero", "negative", "cap-below-base"])
def test_backoff_refuses_nonsense_limits(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        ExponentialBackoff(base, cap)


# --- shutdown ----------------------------------------------------------------------------


def test_shutdown_hands_out_what_is_queued_then_raises() -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        q.add("b")
        q.shutdown()
        q.add("c")
        assert q.shutting_down
        assert await drain(q) == ["a", "b"]
        with pytest.raises(ShutDown):
            await q.get()

    run(scenario())


def test_shutdown_wakes_every_waiting_worker() -> None:
    async def scenario() -> list[BaseException | str]:
        q: WorkQueue[str] = WorkQueue()
        getters = [asyncio.create_task(q.get()) for _ in range(3)]
        await asyncio.sleep(0)
        q.shutdown()
        return await asyncio.gather(*getters, return_exceptions=True)

    results = run(scenario())
    assert all(isinstance(r, ShutDown) for r in results)


def test_shutdown_drops_delayed_and_refuses_new_delayed_keys() -> None:
    async def scenario() -> int:
        q: WorkQueue[str] = WorkQueue()
        q.add_after("a", 1)
        q.shutdown()
        q.add_after("b", 1)
        q.add_rate_limited("c")
        await asyncio.sleep(5)
        return q.len()

    assert run(scenario()) == 0
