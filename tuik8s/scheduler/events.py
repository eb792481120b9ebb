"""Events the scheduler records, written in the background, after the binds.

Scheduling must not wait for its Events: a `Scheduled` event per pod is as many writes
as binds (and costs the API server about as much), and a decision should not sit behind
them. So, as upstream's event broadcaster, events go into a bounded buffer that a writer
task drains; when the buffer is full new events are dropped (and counted), never the
scheduler slowed. While the scheduler is busy (`busy()`: pods wait in activeQ) the writer
keeps to `busy_rate` events per second -- upstream's scheduler client is rate-limited to
50 requests/s the same way -- and catches up at full speed once the burst is over.
Writing goes through `ApiClient.record_event`, which turns a repeat of the same event
into a count bump.
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
DEFAULT_BUFFER = 10_000
DEFAULT_BUSY_RATE = 50.0


class EventSink:
    """A bounded buffer of events and the task that writes them."""

    def __init__(
        self,
        write: Writer,
        *,
        buffer: int = DEFAULT_BUFFER,
        writers: int = 1,
        busy: Callable[[], bool] | None = None,
        busy_rate: float = DEFAULT_BUSY_RATE,
    ) -> None:
        self._write = write
        self._buffer: deque[tuple[Obj, str, str, str]] = deque()
        self._limit = buffer
        self._writers = writers
        self._busy = busy or (lambda: False)
        self._busy_pause = 1.0 / busy_rate if busy_rate > 0 else 0.0
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

    def pending(self) -> list[tuple[str, str, str]]:
        """(reason, message, type) of the events not written yet, oldest first."""
        return [(reason, message, type) for _, reason, message, type in self._buffer]

    async def run(self) -> None:
        await asyncio.gather(*(self._drain() for _ in range(self._writers)))

    async def _drain(self) -> None:
        while True:
            while not self._buffer:
                self._ready.clear()
                await self._ready.wait()
            if self._busy_pause and self._busy():
                await asyncio.sleep(self._busy_pause * self._writers)
                if not self._buffer:
                    continue
            involved, reason, message, type = self._buffer.popleft()
            try:
                await self._write(involved, reason, message, type)
                self.written += 1
            except Exception:  # noqa: BLE001 - an event is never worth the writer
                log.exception("recording event %s failed", reason)
