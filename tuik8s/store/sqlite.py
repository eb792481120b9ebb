"""The SQLite store: committed state in memory, durability in a WAL-mode database.

Why this shape:
- Every committed object is held in memory as its serialized JSON (plus extracted labels
  and field labels), like kube-apiserver's watch cache: gets and lists never touch disk,
  and a LIST of 10,000 pods is a join of byte strings.
- All writes go through one writer task. It takes every write that queued up while the
  previous batch was committing, runs their mutate functions in order against the latest
  state (so preconditions cannot race), commits the whole batch in one SQLite
  transaction (group commit), and only then publishes the new state, resolves the
  callers and feeds the watchers. A caller is answered only after its commit, so an
  acknowledged write survives `kill -9`; readers never see uncommitted state.
- Each write appends to an `events` table, the watch log. Watches resume from any
  revision still in the window; older ones get Expired (410 Gone) and relist.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from tuik8s.api import errors
from tuik8s.api.fields import field_set, labels_of
from tuik8s.store.base import (
    ADDED,
    DELETED,
    MODIFIED,
    UNCHANGED,
    Delete,
    Event,
    Expired,
    Mutation,
    StorageError,
    Stored,
    Unchanged,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (resource, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, type TEXT NOT NULL,
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# How many revisions a watch can resume across; older ones must relist.
DEFAULT_WINDOW = 20_000
MAX_BATCH = 512
# A watcher this far behind is cut off; its client relists (as upstream does).
WATCH_QUEUE_LIMIT = 50_000


TICK: Any = object()


class _Pending:
    __slots__ = ("resource", "namespace", "name", "mutate", "future")

    def __init__(self, resource: str, namespace: str, name: str, mutate: Mutation) -> None:
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.mutate = mutate
        self.future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()


class SqliteWatch:
    """Events for one resource, pushed by the writer into a queue."""

    def __init__(self, store: SqliteStore, resource: str, backlog: list[Event]) -> None:
        self._store = store
        self.resource = resource
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        for event in backlog:
            self._queue.put_nowait(event)
        self.closed = False

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if self._queue.qsize() > WATCH_QUEUE_LIMIT:
            log.warning("watch on %s fell %d events behind; closing it", self.resource, WATCH_QUEUE_LIMIT)
            self.close()
            return
        self._queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._store._unsubscribe(self)
            self._queue.put_nowait(None)

    def drain(self) -> list[Event]:
        """Every event already queued, without waiting (for batching writes)."""
        out: list[Event] = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is None:
                self._queue.put_nowait(None)
                break
            if event is not TICK:
                out.append(event)
        return out

    def tick(self) -> None:
        """Wake the reader with a TICK (used for bookmarks); not an event."""
        if not self.closed:
            self._queue.put_nowait(TICK)  # type: ignore[arg-type]

    async def get(self) -> Event | None:
        """The next event, TICK, or None once the watch is closed. Safe to cancel."""
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)
        return event

    async def __aiter__(self) -> AsyncIterator[Event]:
        while (event := await self.get()) is not None:
            if event is not TICK:
                yield event


class SqliteStore:
    """The Store protocol on SQLite (see the module docstring for why it is built so)."""

    def __init__(self, path: Path, *, window: int = DEFAULT_WINDOW) -> None:
        self.path = path
        self.window = window
        # Compact once the log holds a tenth more than the window: each compaction drops
        # a small slice (cheap in memory and on disk) and the log never holds more
        # than 1.1 windows (it held up to two: hundreds of MB under sustained writes).
        self._slack = max(1, window // 10)
        self._db: aiosqlite.Connection | None = None
        self._objects: dict[str, dict[str, dict[str, Stored]]] = {}
        self._revision = 0
        self._log: list[Event] = []
        self._log_rvs: list[int] = []
        self._compacted = 0  # revisions <= this are gone from the log
        self._disk_compacted = 0
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._watchers: dict[str, set[SqliteWatch]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._sorted: dict[tuple[str, str | None], list[Stored]] = {}

    # ---- lifecycle -------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path, *, window: int = DEFAULT_WINDOW) -> SqliteStore:
        store = cls(path, window=window)
        await store._open()
        return store

    async def _open(self) -> None:
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit is in the WAL file before we answer, so it
            # survives a killed process; only a power loss can drop the last commits.
            await self._db.execute("PRAGMA synchronous=NORMAL")
            # A checkpoint inside a commit stalls every write queued behind it; the
            # checkpointer below runs them on its own connection instead.
            await self._db.execute("PRAGMA wal_autocheckpoint=0")
            await self._db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the store at {self.path}: {e}") from e
        await self._load()
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="store-checkpointer")

    async def _load(self) -> None:
        assert self._db is not None
        async with self._db.execute("SELECT resource, namespace, name, rv, data FROM objects") as cur:
            async for resource, namespace, name, rv, data in cur:
                obj = orjson.loads(data)
                stored = Stored(resource, namespace, name, rv, bytes(data), labels_of(obj), field_set(resource, obj))
                self._objects.setdefault(resource, {}).setdefault(namespace, {})[name] = stored
                self._revision = max(self._revision, rv)
        async with self._db.execute("SELECT key, value FROM meta") as cur:
            meta = {k: v async for k, v in cur}
        self._revision = max(self._revision, meta.get("revision", 0))
        self._compacted = self._disk_compacted = meta.get("compacted", 0)
        last: dict[tuple[str, str, str], Stored] = {}
        async with self._db.execute(
            "SELECT rv, type, resource, namespace, name, data FROM events WHERE rv > ? ORDER BY rv",
            (self._compacted,),
        ) as cur:
            async for rv, etype, resource, namespace, name, data in cur:
                obj = orjson.loads(data)
                stored = Stored(resource, namespace, name, rv, bytes(data), labels_of(obj), field_set(resource, obj))
                key = (resource, namespace, name)
                self._append_log(Event(etype, stored, last.get(key)))
                last[key] = stored
                self._revision = max(self._revision, rv)
        if not self._log:
            # Nothing to replay: resuming is possible only from the current revision on.
            self._compacted = self._revision

    async def _checkpoint_loop(self, every: float = 1.0) -> None:
        """Move the WAL into the database file on a connection of its own (PASSIVE never
        blocks the writer), so the WAL stays small without stalling commits."""
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            while True:
                await asyncio.sleep(every)
                try:
                    await db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as e:
                    log.warning("checkpointing the store failed: %s", e)
        finally:
            await db.close()

    def close_watches(self) -> None:
        for watchers in list(self._watchers.values()):
            for w in list(watchers):
                w.close()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        self.close_watches()
        if self._db is not None:
            await self._db.close()
            self._db = None

    # ---- reads -----------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def oldest_revision(self) -> int:
        return self._compacted

    def get(self, resource: str, namespace: str, name: str) -> Stored | None:
        return self._objects.get(resource, {}).get(namespace, {}).get(name)

    def list(self, resource: str, namespace: str | None = None) -> list[Stored]:
        cached = self._sorted.get((resource, namespace))
        if cached is not None:
            return cached
        by_ns = self._objects.get(resource, {})
        if namespace is None:
            out = [s for ns in sorted(by_ns) for s in self._sorted_ns(by_ns[ns])]
        else:
            out = self._sorted_ns(by_ns.get(namespace, {}))
        self._sorted[(resource, namespace)] = out
        return out

    @staticmethod
    def _sorted_ns(objs: dict[str, Stored]) -> list[Stored]:
        return [objs[k] for k in sorted(objs)]

    def count(self, resource: str) -> int:
        return sum(len(v) for v in self._objects.get(resource, {}).values())

    # ---- writes ----------------------------------------------------------------

    async def write(self, resource: str, namespace: str, name: str, mutate: Mutation) -> Event:
        if self._writer is None or self._writer.done():
            raise StorageError("the store is closed")
        pending = _Pending(resource, namespace, name, mutate)
        self._queue.put_nowait(pending)
        return await pending.future

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit_batch(batch)
            except asyncio.CancelledError:
                for p in batch:
                    _fail(p.future, StorageError("the store was closed"))
                raise
            except Exception as e:  # noqa: BLE001 - must never kill the writer
                log.exception("store batch failed")
                for p in batch:
                    _fail(p.future, StorageError(f"storage error: {e}"))

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        staged: dict[tuple[str, str, str], Stored | None] = {}
        accepted: list[tuple[_Pending, Event]] = []
        rv = self._revision
        for p in batch:
            key = (p.resource, p.namespace, p.name)
            current = staged[key] if key in staged else self.get(*key)
            try:
                result = p.mutate(orjson.loads(current.data) if current is not None else None)
            except errors.StatusError as e:
                _fail(p.future, e)
                continue
            except Exception as e:  # noqa: BLE001 - a bug in one write must not fail others
                log.exception("write to %s/%s/%s failed", *key)
                _fail(p.future, errors.internal(f"write failed: {e}"))
                continue
            if isinstance(result, Unchanged):
                _resolve(p.future, Event(UNCHANGED, current, current))  # type: ignore[arg-type]
                continue
            rv += 1
            if isinstance(result, Delete):
                if current is None:
                    rv -= 1
                    _fail(p.future, errors.not_found(p.resource, p.name))
                    continue
                # A DELETED event carries the last state at the deletion's revision.
                last = orjson.loads(current.data)
                last.setdefault("metadata", {})["resourceVersion"] = str(rv)
                gone = Stored(current.resource, current.namespace, current.name, rv, _dump(last), current.labels, current.fields)
                staged[key] = None
                accepted.append((p, Event(DELETED, gone, current)))
                continue
            meta = result.setdefault("metadata", {})
            meta["resourceVersion"] = str(rv)
            data = _dump(result)
            stored = Stored(p.resource, p.namespace, p.name, rv, data, labels_of(result), field_set(p.resource, result))
            staged[key] = stored
            accepted.append((p, Event(ADDED if current is None else MODIFIED, stored, current)))
        if not accepted:
            return
        try:
            await self._persist(accepted, rv)
        except sqlite3.Error as e:
            for p, _ in accepted:
                _fail(p.future, StorageError(f"storage error: {e}"))
            return
        self._revision = rv
        committed_at = time.time()
        for p, event in accepted:
            event = event._replace(committed_at=committed_at)
            self._publish(event)
            _resolve(p.future, event)
        if self._log_rvs and self._log_rvs[0] <= self._revision - self.window - self._slack:
            self._compact()

    async def _persist(self, accepted: list[tuple[_Pending, Event]], rv: int) -> None:
        assert self._db is not None
        final: dict[tuple[str, str, str], Event] = {}
        events = []
        for _, ev in accepted:
            s = ev.obj
            final[(s.resource, s.namespace, s.name)] = ev
            events.append((s.rv, ev.type, s.resource, s.namespace, s.name, s.data))
        # Only the last write of a key in the batch decides its row, so order is moot.
        upserts = [
            (k[0], k[1], k[2], ev.obj.rv, ev.obj.data) for k, ev in final.items() if ev.type != DELETED
        ]
        deletes = [k for k, ev in final.items() if ev.type == DELETED]
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        try:
            if upserts:
                await db.executemany(
                    "INSERT OR REPLACE INTO objects (resource, namespace, name, rv, data) VALUES (?,?,?,?,?)",
                    upserts,
                )
            if deletes:
                await db.executemany(
                    "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", deletes
                )
            await db.executemany(
                "INSERT INTO events (rv, type, resource, namespace, name, data) VALUES (?,?,?,?,?,?)",
                events,
            )
            meta = [("revision", rv)]
            if self._disk_compacted < self._compacted:
                await db.execute("DELETE FROM events WHERE rv <= ?", (self._compacted,))
                meta.append(("compacted", self._compacted))
            await db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
            await db.execute("COMMIT")
            self._disk_compacted = self._compacted
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await db.execute("ROLLBACK")
            raise

    def _publish(self, event: Event) -> None:
        s = event.obj
        by_ns = self._objects.setdefault(s.resource, {})
        if event.type == DELETED:
            objs = by_ns.get(s.namespace)
            if objs is not None:
                objs.pop(s.name, None)
                if not objs:
                    del by_ns[s.namespace]
        else:
            by_ns.setdefault(s.namespace, {})[s.name] = s
        self._sorted.pop((s.resource, None), None)
        self._sorted.pop((s.resource, s.namespace), None)
        self._append_log(event)
        for w in list(self._watchers.get(s.resource, ())):
            w.push(event)

    def _append_log(self, event: Event) -> None:
        self._log.append(event)
        self._log_rvs.append(event.obj.rv)

    def _compact(self) -> None:
        """Drop log entries beyond the window; the next batch drops them on disk."""
        cut = bisect.bisect_right(self._log_rvs, self._revision - self.window)
        if cut <= 0:
            return
        self._compacted = self._log_rvs[cut - 1]
        del self._log[:cut]
        del self._log_rvs[:cut]

    # ---- watch -----------------------------------------------------------------

    def watch(self, resource: str, since: int) -> SqliteWatch:
        if since < self._compacted:
            raise Expired(since, self._compacted)
        start = bisect.bisect_right(self._log_rvs, since)
        backlog = [e for e in self._log[start:] if e.obj.resource == resource]
        w = SqliteWatch(self, resource, backlog)
        self._watchers.setdefault(resource, set()).add(w)
        return w

    def _unsubscribe(self, w: SqliteWatch) -> None:
        watchers = self._watchers.get(w.resource)
        if watchers is not None:
            watchers.discard(w)

    def watcher_count(self) -> int:
        return sum(len(v) for v in self._watchers.values())


def _dump(obj: dict[str, Any]) -> bytes:
    """`orjson.dumps`, copied into a bytes object of its own length.

    orjson returns its growable output buffer as the bytes object without shrinking it:
    ~8 KB of heap for a 750-byte ConfigMap (measured with orjson 3.13 and tracemalloc).
    The store keeps these bytes for as long as the object lives and its events stay in
    the watch log, so under sustained writes that slack was most of the server's RSS
    (494 MB in bench/load.py). One memcpy per write gives it back.
    """
    return memoryview(orjson.dumps(obj)).tobytes()


def _resolve(future: asyncio.Future[Event], event: Event) -> None:
    # the caller may have gone (a cancelled request): its write still stands
    if not future.done():
        future.set_result(event)


def _fail(future: asyncio.Future[Event], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def decode(stored: Stored) -> dict[str, Any]:
    """The object as a dict (a fresh copy the caller may change)."""
    result: dict[str, Any] = orjson.loads(stored.data)
    return result
