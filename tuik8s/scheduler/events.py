"""Events the scheduler records, written in the background and dropped when too many queue up.

Scheduling must not wait for its Events: a `Scheduled` event per pod is as many writes
as binds, and a decision should not sit behind them. So, as upstream's event broadcaster,
events go into a bounded buffer that one writer task drains; when the buffer is full new
events are dropped (and counted), never the scheduler slowed. Writing goes through
`ApiClient.record_event`, which turns a repeat of the same event into a count bump.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Writer = Callable[[Obj, str, str, str], Awaitable[Any]]
DEFAULT_BUFFER = 1000


class EventSink:
    """A bounded buffer of events and the task that writes them."""

    def __init__(self, write: Writer, *, buffer: int = DEFAULT_BUFFER, writers: int = 1) -> None:
        self._write = write
        self._buffer: deque[tuple[Obj, str, str, str]] = deque()
        self._limit = buffer
        self._writers = writers
        self._ready = asyncio.Event()
        self.dropped = 0
        self.written = 0

    def record(self, involved: Obj, reason: str, message: str, type: str = "Normal") -> None:
        if len(self._buffer) >= self._limit:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event buffer full: dropped %d events so far (latest: %s)", self.dropped, reason)
            return
        self._buffer.append((involved, reason, message, type))
        self._ready.set()

    def __len__(self) -> int:
        return len(self._buffer)

    async def run(self) -> None:
        await asyncio.gather(*(self._drain() for _ in range(self._writers)))

    async def _drain(self) -> None:
        while True:
            while not self._buffer:
                self._ready.clear()
                await self._ready.wait()
            involved, reason, message, type = self._buffer.popleft()
            try:
                await self._write(involved, reason, message, type)
                self.written += 1
            except Exception:  # noqa: BLE001 - an event is never worth the writer
                log.exception("recording event %s failed", reason)
