"""Watch streams: newline-delimited `{"type": ..., "object": ...}` events.

Filtering follows kube-apiserver: an object that starts matching a selector arrives as
ADDED, one that stops matching as DELETED, so a kubelet watching
`spec.nodeName=me` sees a pod appear when it is bound. Events queued together are
written together, so a burst costs one write to the socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson

from tuik8s.api.registry import ResourceInfo
from tuik8s.api.selectors import FieldSelector, LabelSelector
from tuik8s.apiserver.metrics import WATCH_DELIVERY
from tuik8s.apiserver.tables import to_table
from tuik8s.store.base import ADDED, DELETED, MODIFIED, Event, Stored
from tuik8s.store.sqlite import TICK, SqliteWatch, decode

BOOKMARK_EVERY = 60.0


@dataclass
class WatchSpec:
    info: ResourceInfo
    namespace: str | None
    labels: LabelSelector | None
    fields: FieldSelector | None
    table: bool
    include_object: str
    bookmarks: bool
    timeout: float

    def matches(self, s: Stored | None) -> bool:
        if s is None:
            return False
        if self.namespace is not None and s.namespace != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(s.labels):
            return False
        return self.fields is None or self.fields.matches(s.fields)


def _frame(spec: WatchSpec, etype: str, s: Stored) -> bytes:
    if spec.table:
        table = to_table(spec.info, [decode(s)], include_object=spec.include_object)
        table["metadata"] = {"resourceVersion": str(s.rv)}
        return orjson.dumps({"type": etype, "object": table}) + b"\n"
    return b'{"type":"' + etype.encode() + b'","object":' + s.data + b"}\n"


def _translate(spec: WatchSpec, event: Event) -> bytes | None:
    now = spec.matches(event.obj)
    if event.type == DELETED:
        return _frame(spec, DELETED, event.obj) if now else None
    before = spec.matches(event.prev) if event.prev is not None else (event.type != ADDED and now)
    if now and before:
        return _frame(spec, MODIFIED, event.obj)
    if now:
        return _frame(spec, ADDED, event.obj)
    if before:
        return _frame(spec, DELETED, event.obj)
    return None


def _bookmark(spec: WatchSpec, rv: int) -> bytes:
    return orjson.dumps({
        "type": "BOOKMARK",
        "object": {"kind": spec.info.kind, "apiVersion": spec.info.api_version, "metadata": {"resourceVersion": str(rv)}},
    }) + b"\n"


async def stream(spec: WatchSpec, watch: SqliteWatch, initial: list[Stored], store: object) -> AsyncIterator[bytes]:
    """Initial state (if any), then live events, until the timeout or the client leaves."""
    loop = asyncio.get_running_loop()
    ticker: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal ticker
        watch.tick()
        ticker = loop.call_later(BOOKMARK_EVERY, tick)

    if spec.bookmarks:
        ticker = loop.call_later(BOOKMARK_EVERY, tick)
    last_rv = getattr(store, "revision", 0)
    # never yield inside a timeout scope: the cancel would land in the consumer
    deadline = loop.time() + spec.timeout
    try:
        if initial:
            chunk = [_frame(spec, ADDED, s) for s in initial if spec.matches(s)]
            for i in range(0, len(chunk), 500):
                yield b"".join(chunk[i:i + 500])
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await watch.get()
            except TimeoutError:
                return
            if event is None:
                return
            if event is TICK:
                yield _bookmark(spec, max(last_rv, getattr(store, "revision", 0)))
                continue
            events = [event] + watch.drain()
            frames = [f for e in events if (f := _translate(spec, e)) is not None]
            last_rv = events[-1].obj.rv
            if frames:
                yield b"".join(frames)
                # the consumer resumes us once the chunk is handed to the connection
                now = time.time()
                for e in events:
                    WATCH_DELIVERY.observe(now - e.committed_at, spec.info.plural)
    finally:
        if ticker is not None:
            ticker.cancel()
        watch.close()


async def expired_stream(message: str) -> AsyncIterator[bytes]:
    """A watch from a compacted revision: one ERROR event with 410 Expired, as upstream."""
    yield orjson.dumps({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Expired", "code": 410,
        },
    }) + b"\n"
