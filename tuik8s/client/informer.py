"""Informers: a local cache of one resource kept current by list + watch.

The cache is what controllers read when they reconcile (DESIGN rule 3); handlers only
learn that a key changed. The informer's one job is that no change is ever missed:

- It lists, then watches from the list's resourceVersion, so nothing falls between the
  two. A watch the server ends (timeout) resumes from the last resourceVersion seen, and
  bookmarks move that point forward on a quiet resource so the resume stays cheap.
- When the server no longer has that resourceVersion (410 Expired, after compaction or a
  long disconnect) it relists and emits the difference to its cache: adds, updates, and
  deletes for objects that vanished meanwhile. A handler sees the same sequence of states
  it would have seen from an unbroken watch, minus intermediate ones.
- A connection error never ends the task: it retries with capped, jittered backoff, and
  resumes the watch where it broke off.

Handlers run synchronously in the informer's task after the cache is updated, so a
handler reading the cache sees at least the state it was told about. They must be quick
(enqueue a key) and must not modify the objects they are given: those are the cache's.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from tuik8s.client.client import ApiClient, Resource, Selector, format_selector, resolve
from tuik8s.client.errors import ApiError, ClientError, is_gone

log = logging.getLogger(__name__)

Obj = dict[str, Any]
OnAdd = Callable[[Obj], None]
OnUpdate = Callable[[Obj, Obj], None]
OnDelete = Callable[[Obj], None]
IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"
_NOTHING: frozenset[str] = frozenset()
PAGE_SIZE = 500
# client-go's reflector: watches last 5-10 minutes, retries back off from 0.8 s to 30 s
MIN_WATCH_TIMEOUT = 300.0
BACKOFF_BASE = 0.8
BACKOFF_CAP = 30.0


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object (client-go's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name") or ""
    return f"{ns}/{name}" if ns else str(name)


def split_key(key: str) -> tuple[str | None, str]:
    """`("ns", "name")` from `ns/name`, `(None, "name")` from `name`."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def namespace_index(obj: Obj) -> list[str]:
    """Index function for `NAMESPACE_INDEX`: an object's namespace."""
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass
class _Handler:
    on_add: OnAdd | None
    on_update: OnUpdate | None
    on_delete: OnDelete | None


class _Backoff:
    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def reset(self) -> None:
        self.failures = 0

    async def sleep(self) -> None:
        delay = min(self.cap, self.base * 2 ** min(self.failures, 16))
        self.failures += 1
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))


class Informer:
    """List + watch of one resource (optionally one namespace, selectors) into a cache.

    `resync`, if set, calls every handler's `on_update(obj, obj)` for every cached object
    that often, as client-go's resync does, for controllers that must look again even when
    nothing changed. `watch_timeout` bounds each watch (default: 5-10 minutes at random).
    """

    def __init__(
        self,
        client: ApiClient,
        res: Resource,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        resync: float | None = None,
        watch_timeout: float | None = None,
        page_size: int = PAGE_SIZE,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self.client = client
        self.info = resolve(res)
        self.namespace = namespace if self.info.namespaced else None
        self.label_selector = format_selector(label_selector)
        self.field_selector = format_selector(field_selector)
        self.resync = resync
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.resource_version = ""
        self.last_error: str | None = None
        self._backoff = (backoff_base, backoff_cap)
        self._cache: dict[str, Obj] = {}
        self._handlers: builtins.list[_Handler] = []
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        # index name -> key -> the values the key is filed under (so an update computes
        # only the new object's values, and files nothing again when they did not change)
        self._filed: dict[str, dict[str, set[str]]] = {}
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"<Informer {self.info.key}{where} rv={self.resource_version or '-'} {len(self._cache)} objects>"

    # ---- handlers and reads -----------------------------------------------------

    def add_handler(
        self,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> None:
        """Register callbacks; one added late is first told of every cached object as added."""
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in builtins.list(self._cache.values()):
                self._call(on_add, obj)

    def get(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self) -> builtins.list[Obj]:
        return builtins.list(self._cache.values())

    def keys(self) -> builtins.list[str]:
        return builtins.list(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Return once the first list is in the cache (bound it with `asyncio.timeout`).

        While it waits, `last_error` says why the list has not succeeded yet.
        """
        if self._synced.is_set():
            return
        if self._task is None:
            raise RuntimeError(f"{self!r} is not started")
        waiter = asyncio.ensure_future(self._synced.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._synced.is_set():
            raise RuntimeError(f"{self!r} stopped before it synced")

    # ---- indexers ---------------------------------------------------------------

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Index the cache by `fn(obj)` (a list of values), kept current on every change."""
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        filed: dict[str, set[str]] = {}
        for key, obj in self._cache.items():
            values = self._index_values(name, fn, obj)
            if values:
                filed[key] = values
            for value in values:
                index.setdefault(value, set()).add(key)
        self._indices[name] = index
        self._filed[name] = filed

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        """Cached objects whose index `name` includes `value`, in key order."""
        return [self._cache[k] for k in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        try:
            index = self._indices[name]
        except KeyError:
            raise KeyError(f'no index "{name}" on {self!r}: add it with add_index') from None
        return sorted(index.get(value, ()))

    def _index_values(self, name: str, fn: IndexFunc, obj: Obj | None) -> set[str]:
        if obj is None:
            return set()
        try:
            return set(fn(obj))
        except Exception:  # noqa: BLE001 - a bad index function must not stop the informer
            log.exception("index %s failed on %s", name, object_key(obj))
            return set()

    def _reindex(self, key: str, new: Obj | None) -> None:
        for name, fn in self._indexers.items():
            filed = self._filed[name]
            before = filed.get(key, _NOTHING)
            after = self._index_values(name, fn, new)
            if before == after:
                continue
            if after:
                filed[key] = after
            else:
                filed.pop(key, None)
            index = self._indices[name]
            for value in before - after:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after - before:
                index.setdefault(value, set()).add(key)

    # ---- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start listing and watching in a task of the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"informer {self.info.key}")
        self._start_resync()

    def set_resync(self, seconds: float | None) -> None:
        self.resync = seconds
        if self._task is not None and not self._task.done():
            if self._resync_task is not None:
                self._resync_task.cancel()
                self._resync_task = None
            self._start_resync()

    def _start_resync(self) -> None:
        if self.resync and (self._resync_task is None or self._resync_task.done()):
            self._resync_task = asyncio.create_task(self._resync_loop(), name=f"resync {self.info.key}")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._resync_task) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = self._resync_task = None

    # ---- list and watch ---------------------------------------------------------

    async def _run(self) -> None:
        backoff = _Backoff(*self._backoff)
        need_list = True
        expired_in_a_row = 0
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                    self.last_error = None
                started = time.monotonic()
                if await self._watch() or time.monotonic() - started > 0.5:
                    backoff.reset()
                else:
                    await backoff.sleep()  # a watch that ends at once, again and again
                expired_in_a_row = 0
                self.last_error = None
            except ApiError as e:
                self.last_error = str(e)
                need_list = True
                if is_gone(e):
                    expired_in_a_row += 1
                    log.info("%r: %s; relisting", self, e)
                    if expired_in_a_row == 1:
                        continue  # the usual case: relist at once
                else:
                    log.warning("%r: %s", self, e)
                await backoff.sleep()
            except ClientError as e:
                # keep the resourceVersion: the watch resumes where it broke off
                self.last_error = str(e)
                log.warning("%r: %s", self, e)
                await backoff.sleep()
            except Exception as e:  # noqa: BLE001 - the informer must outlive any surprise
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("%r failed; relisting", self)
                need_list = True
                await backoff.sleep()

    async def _relist(self) -> None:
        result = await self.client.list(
            self.info, self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, limit=self.page_size,
        )
        fresh = {object_key(obj): obj for obj in result.items}
        stale = self._cache
        self._cache = fresh
        for name, fn in builtins.list(self._indexers.items()):
            self.add_index(name, fn)
        self.resource_version = result.resource_version
        for key, gone in stale.items():
            if key not in fresh:
                self._emit_delete(gone)
        for key, obj in fresh.items():
            old = stale.get(key)
            if old is None:
                self._emit_add(obj)
            elif _rv(old) != _rv(obj):
                self._emit_update(old, obj)
        self._synced.set()

    async def _watch(self) -> bool:
        """One watch until the server ends it; True if it carried any event."""
        timeout = self.watch_timeout or MIN_WATCH_TIMEOUT * random.uniform(1.0, 2.0)
        events = self.client.watch(
            self.info, self.namespace, resource_version=self.resource_version or None,
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=timeout, allow_bookmarks=True,
        )
        seen = False
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                seen = True
                if event.type in ("ADDED", "MODIFIED"):
                    self._upsert(event.object)
                elif event.type == "DELETED":
                    self._remove(event.object)
                elif event.type != "BOOKMARK":
                    log.warning("%r: unknown watch event type %s", self, event.type)
                if event.resource_version:
                    self.resource_version = event.resource_version
        return seen

    def _upsert(self, obj: Obj) -> None:
        key = object_key(obj)
        old = self._cache.get(key)
        self._cache[key] = obj
        self._reindex(key, obj)
        if old is None:
            self._emit_add(obj)
        else:
            self._emit_update(old, obj)

    def _remove(self, obj: Obj) -> None:
        key = object_key(obj)
        old = self._cache.pop(key, None)
        if old is None:
            return
        self._reindex(key, None)
        self._emit_delete(obj)

    async def _resync_loop(self) -> None:
        await self._synced.wait()
        while self.resync:
            await asyncio.sleep(self.resync)
            for obj in builtins.list(self._cache.values()):
                for h in builtins.list(self._handlers):
                    if h.on_update is not None:
                        self._call(h.on_update, obj, obj)

    # ---- dispatch ---------------------------------------------------------------

    def _emit_add(self, obj: Obj) -> None:
        for h in builtins.list(self._handlers):
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for h in builtins.list(self._handlers):
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _emit_delete(self, obj: Obj) -> None:
        for h in builtins.list(self._handlers):
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    def _call(self, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - one bad handler must not starve the others
            log.exception("%r: handler %s failed", self, getattr(fn, "__qualname__", fn))


class SharedInformers:
    """One informer per (resource, namespace, selectors), shared by every caller.

    The scheduler and the controllers in one process ask for `informer("pods")` and get
    the same cache and the same single watch. Informers asked for after `start()` start
    at once. A shared informer resyncs at the shortest period any caller asked for.
    """

    def __init__(self, client: ApiClient, *, watch_timeout: float | None = None) -> None:
        self.client = client
        self.watch_timeout = watch_timeout
        self._informers: dict[tuple[str, str, str, str], Informer] = {}
        self._started = False

    def informer(
        self,
        res: Resource,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        resync: float | None = None,
    ) -> Informer:
        info = resolve(res)
        ns = namespace if info.namespaced else None
        key = (info.key, ns or "", format_selector(label_selector) or "", format_selector(field_selector) or "")
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(
                self.client, info, namespace=ns, label_selector=label_selector,
                field_selector=field_selector, resync=resync, watch_timeout=self.watch_timeout,
            )
            self._informers[key] = inf
            if self._started:
                inf.start()
        elif resync and (inf.resync is None or resync < inf.resync):
            inf.set_resync(resync)
        return inf

    def informers(self) -> builtins.list[Informer]:
        return builtins.list(self._informers.values())

    def start(self) -> None:
        self._started = True
        for inf in self._informers.values():
            inf.start()

    async def wait_synced(self) -> None:
        """Return once every informer asked for so far has synced."""
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()))
