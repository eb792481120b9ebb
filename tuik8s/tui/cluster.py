"""One kubeconfig context as the UI sees it: a client and the informers behind the views.

Every list on screen is fed by an `Informer` (list + watch), shared by whoever needs the
same resource in the same scope: the Pods view and the cluster map both read the pods of
all namespaces from one cache. An informer nobody uses any more is stopped after a few
others have been released, so flipping between two views does not relist every time, and
visiting every view once does not leave a dozen watches running.

First paint. A full list of 10,000 pods takes the better part of a second before the
informer hands over anything, so a feed also asks for one small page at once and shows
those rows while the informer lists; when the informer has synced, its cache replaces the
preview (rows deleted in between go away).

A resource the server does not serve (a cluster without ingresses, say) is not fatal: the
informer keeps retrying with back-off, and its `last_error` is shown as one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ClientError
from tuik8s.client.informer import Informer, object_key
from tuik8s.tui import gcpolicy
from tuik8s.tui.model import RowModel
from tuik8s.tui.usage import UsagePoller, cells_for, with_usage
from tuik8s.tui.views import ViewSpec

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PREVIEW_ROWS = 100
PREVIEW_WAIT = 0.3
HOLD_GC_AT_MOST = 20.0
KEEP_IDLE_INFORMERS = 3


class _Shared:
    """An informer and the subscribers its events are forwarded to."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.users = 0
        self.subscribers: list[Any] = []
        informer.add_handler(self._add, self._update, self._delete)

    def _add(self, obj: Obj) -> None:
        if self.informer.has_synced:
            gcpolicy.note_event()
        for sub in list(self.subscribers):
            sub.on_upsert(obj)

    def _update(self, old: Obj, new: Obj) -> None:
        gcpolicy.note_event()
        for sub in list(self.subscribers):
            sub.on_upsert(new)

    def _delete(self, obj: Obj) -> None:
        for sub in list(self.subscribers):
            sub.on_delete(obj)


class Session:
    """The client of one context and its shared informers."""

    def __init__(self, client: ApiClient, context: str = "", server: str = "") -> None:
        self.client = client
        self.context = context
        self.server = server
        self._shared: dict[tuple[str, str], _Shared] = {}
        self._idle: list[tuple[str, str]] = []

    @classmethod
    def from_kubeconfig(cls, context: str | None = None) -> Session:
        """Raises `KubeconfigError` with a one-line message when the context is unusable."""
        from tuik8s.client.kubeconfig import access_for
        from tuik8s.client.transport import HttpTransport

        access = access_for(context)
        client = ApiClient(HttpTransport(access, timeout=30.0), default_namespace=access.namespace)
        return cls(client, access.context, access.server)

    @property
    def default_namespace(self) -> str:
        return self.client.default_namespace

    def acquire(self, resource: str, namespace: str | None, *, start: bool = True) -> _Shared:
        """The shared informer of `resource` in `namespace` (None: all), started unless
        `start` is False (the caller starts it, idempotently, when it is ready)."""
        key = (resource, namespace or "")
        shared = self._shared.get(key)
        if shared is None:
            shared = _Shared(Informer(self.client, resource, namespace=namespace))
            self._shared[key] = shared
        if start:
            shared.informer.start()
        if key in self._idle:
            self._idle.remove(key)
        shared.users += 1
        return shared

    def release(self, resource: str, namespace: str | None) -> None:
        key = (resource, namespace or "")
        shared = self._shared.get(key)
        if shared is None:
            return
        shared.users -= 1
        if shared.users > 0:
            return
        self._idle.append(key)
        while len(self._idle) > KEEP_IDLE_INFORMERS:
            old = self._idle.pop(0)
            gone = self._shared.pop(old, None)
            if gone is not None:
                asyncio.ensure_future(gone.informer.stop())

    def subscribe(self, resource: str, namespace: str | None, subscriber: Any) -> Informer:
        """Forward the informer's events to `subscriber.on_upsert(obj)` / `on_delete(obj)`,
        starting with every object already cached."""
        shared = self.acquire(resource, namespace)
        for obj in shared.informer.list():
            subscriber.on_upsert(obj)
        shared.subscribers.append(subscriber)
        return shared.informer

    def unsubscribe(self, resource: str, namespace: str | None, subscriber: Any) -> None:
        shared = self._shared.get((resource, namespace or ""))
        if shared is not None and subscriber in shared.subscribers:
            shared.subscribers.remove(subscriber)
        self.release(resource, namespace)

    def informer(self, resource: str, namespace: str | None = None) -> Informer | None:
        shared = self._shared.get((resource, namespace or ""))
        return shared.informer if shared else None

    def find(self, resource: str, key: str) -> Obj | None:
        """The cached object `key` of `resource` from any running informer, if any."""
        for (res, _ns), shared in self._shared.items():
            if res == resource:
                obj = shared.informer.get(key)
                if obj is not None:
                    return obj
        return None

    async def close(self) -> None:
        informers = [s.informer for s in self._shared.values()]
        self._shared.clear()
        self._idle.clear()
        await asyncio.gather(*(i.stop() for i in informers), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.client.close()


class Feed:
    """A live `RowModel` of one view in one scope (a namespace, or all of them)."""

    def __init__(self, session: Session, spec: ViewSpec, namespace: str | None) -> None:
        self.session = session
        self.spec = spec
        self.namespace = namespace if spec.namespaced else None
        self.model = RowModel(spec)
        self._row = spec.row
        self._shared: _Shared | None = None
        self._preview_keys: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_synced: Callable[[], None] | None = None
        # usage columns (tui/usage.py): None until the cluster's metrics API answers
        self._usage: dict[str, tuple[int, int]] | None = None
        self._usage_spec = with_usage(spec)
        self._poller: UsagePoller | None = None

    @property
    def informer(self) -> Informer | None:
        return self._shared.informer if self._shared else None

    @property
    def synced(self) -> bool:
        return self._shared is not None and self._shared.informer.has_synced

    @property
    def error(self) -> str | None:
        return self._shared.informer.last_error if self._shared else None

    def start(self) -> None:
        shared = self.session.acquire(self.spec.resource, self.namespace, start=False)
        self._shared = shared
        informer = shared.informer
        shared.subscribers.append(self)
        if self._usage_spec is not None:
            self._poller = UsagePoller(self.session.client, self.spec.resource, self.namespace, self._on_usage)
        if informer.has_synced:
            self.model.replace_all({object_key(o): self._safe_row(o) for o in informer.list()})
            informer.start()
            if self._poller is not None:
                self._poller.start()
        else:
            self._tasks.append(asyncio.ensure_future(self._load()))

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self._shared is not None:
            if self in self._shared.subscribers:
                self._shared.subscribers.remove(self)
            self.session.release(self.spec.resource, self.namespace)
            self._shared = None
        self.model.listener = None

    def get(self, key: str) -> Obj | None:
        informer = self.informer
        return informer.get(key) if informer is not None else None

    # ---- events ----------------------------------------------------------------------------

    def _safe_row(self, obj: Obj) -> tuple[str, ...]:
        try:
            row = self._row(obj)
            if self._usage is not None and self._usage_spec is not None:
                row += cells_for(self.spec)(obj, self._usage.get(object_key(obj)))
            return row
        except Exception:  # noqa: BLE001 - a malformed object still gets a row
            log.exception("cannot print %s", object_key(obj))
            meta = obj.get("metadata") or {}
            cells = ["<error>"] * len(self.model.spec.columns)
            name_at = 1 if self.spec.namespaced else 0
            if self.spec.namespaced:
                cells[0] = str(meta.get("namespace") or "")
            cells[name_at] = str(meta.get("name") or "")
            return tuple(cells)

    def _on_usage(self, usage: dict[str, tuple[int, int]]) -> None:
        """New figures: the first switch the view to its usage columns; later ones
        rewrite only the usage cells of rows whose figures changed."""
        spec, informer, model = self._usage_spec, self.informer, self.model
        if spec is None or informer is None:
            return
        cells = cells_for(self.spec)
        if self._usage is None:
            self._usage = usage
            model.spec = spec
            model.widths = [len(c.name) for c in spec.columns]
            extra = len(spec.columns) - len(self.spec.columns)
            rows = {}
            for key, row in model.rows.items():
                obj = informer.get(key)
                rows[key] = self._safe_row(obj) if obj is not None else row + ("n/a",) * extra
            model.replace_all(rows)
            return
        self._usage = usage
        width = len(spec.columns) - len(self.spec.columns)
        for key, row in list(model.rows.items()):
            obj = informer.get(key)
            if obj is None:
                continue
            new = row[:-width] + cells(obj, usage.get(key))
            if new != row:
                model.upsert(key, new)

    def on_upsert(self, obj: Obj) -> None:
        self.model.upsert(object_key(obj), self._safe_row(obj))

    def on_delete(self, obj: Obj) -> None:
        self.model.remove(object_key(obj))

    async def _preview(self, informer: Informer) -> None:
        try:
            page = await self.session.client.list_page(
                self.spec.resource, self.namespace, limit=PREVIEW_ROWS
            )
        except (ClientError, ValueError):
            return  # the informer reports the same error
        if informer.has_synced:
            return
        for obj in page.items:
            key = object_key(obj)
            self._preview_keys.add(key)
            self.model.upsert(key, self._safe_row(obj))

    async def _load(self) -> None:
        # The informer starts after the preview (or PREVIEW_WAIT at most): its first page
        # would otherwise make the server and this process busy while the preview waits.
        informer = self.informer
        if informer is None:
            return

        def start() -> None:
            if self._shared is not None:
                informer.start()

        starter = asyncio.get_running_loop().call_later(PREVIEW_WAIT, start)
        try:
            await self._preview(informer)
        finally:
            starter.cancel()
            start()
        # the first list: no collector passes while it is decoded, then freeze it all
        synced = asyncio.ensure_future(informer.wait_synced())
        gcpolicy.hold()
        try:
            await asyncio.wait({synced}, timeout=HOLD_GC_AT_MOST)
        except asyncio.CancelledError:
            synced.cancel()
            raise
        finally:
            gcpolicy.release()
        with contextlib.suppress(RuntimeError):
            await synced
        stale = [k for k in self._preview_keys if informer.get(k) is None]
        for key in stale:
            self.model.remove(key)
        self._preview_keys.clear()
        if self._poller is not None:  # after the first list: it must not delay the rows
            self._poller.start()
        if self.on_synced is not None:
            self.on_synced()
