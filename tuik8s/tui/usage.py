"""CPU and memory use on the Pods and Nodes views, from `metrics.k8s.io` when the cluster has it.

The UI works against any cluster, and many have no metrics API (no metrics-server): the
views then stay exactly as they are, with no empty columns. Where the API answers, the
first good answer switches the view to its variant with usage columns (CPU, MEM; on
nodes also %CPU and %MEM of allocatable, as `kubectl top nodes`), and each later answer
rewrites only those cells, so a refresh costs one dict lookup and one tuple per row.

One `UsagePoller` per view in use polls its scope (the view's namespace, or all) every
`INTERVAL` seconds while the view is shown; a cluster without the API is asked again
only every `RETRY` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tuik8s.api.quantity import cpu_millis, format_memory, to_bytes
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ClientError
from tuik8s.tui.views import Column, Row, ViewSpec

log = logging.getLogger(__name__)

Obj = dict[str, Any]
INTERVAL = 15.0  # metrics-server's resolution: asking more often shows nothing new
RETRY = 60.0
GROUP = "/apis/metrics.k8s.io/v1beta1"
_E: dict[str, Any] = {}


def _cpu(value: Any) -> int:
    try:
        return cpu_millis(value)
    except (ValueError, TypeError):
        return 0


def _mem(value: Any) -> int:
    try:
        return to_bytes(value)
    except (ValueError, TypeError):
        return 0


def usage_of(item: Obj) -> tuple[int, int]:
    """(millicores, bytes) of a PodMetrics (its containers summed) or NodeMetrics."""
    if "usage" in item:
        usage = item.get("usage") or _E
        return _cpu(usage.get("cpu", 0)), _mem(usage.get("memory", 0))
    cpu = mem = 0
    for c in item.get("containers") or ():
        usage = c.get("usage") or _E
        cpu += _cpu(usage.get("cpu", 0))
        mem += _mem(usage.get("memory", 0))
    return cpu, mem


def _percent(used: int, total: int) -> str:
    return f"{used * 100 // total}%" if total > 0 else "n/a"


def pod_cells(obj: Obj, usage: tuple[int, int] | None) -> Row:
    if usage is None:
        return ("n/a", "n/a")
    return (f"{usage[0]}m", format_memory(usage[1]))


def node_cells(obj: Obj, usage: tuple[int, int] | None) -> Row:
    if usage is None:
        return ("n/a", "n/a", "n/a", "n/a")
    allocatable = (obj.get("status") or _E).get("allocatable") or _E
    cpu, mem = usage
    return (
        f"{cpu}m", _percent(cpu, _cpu(allocatable.get("cpu", 0))),
        format_memory(mem), _percent(mem, _mem(allocatable.get("memory", 0))),
    )


_NUM = {"numeric": True, "max_width": 10}
USAGE_COLUMNS: dict[str, tuple[tuple[Column, ...], Callable[[Obj, tuple[int, int] | None], Row]]] = {
    "pods": ((Column("CPU", "U", **_NUM), Column("MEM", "M", **_NUM)), pod_cells),  # type: ignore[arg-type]
    "nodes": ((Column("CPU", "U", **_NUM), Column("%CPU", "", **_NUM), Column("MEM", "M", **_NUM),  # type: ignore[arg-type]
               Column("%MEM", "", **_NUM)), node_cells),  # type: ignore[arg-type]
}


def with_usage(spec: ViewSpec) -> ViewSpec | None:
    """The variant of `spec` with usage columns, or None for views without usage."""
    extra = USAGE_COLUMNS.get(spec.name)
    if extra is None:
        return None
    return replace(spec, columns=(*spec.columns, *extra[0]))


def cells_for(spec: ViewSpec) -> Callable[[Obj, tuple[int, int] | None], Row]:
    return USAGE_COLUMNS[spec.name][1]


class UsagePoller:
    """Polls the metrics of one view's resource in one scope; calls `on_usage` with
    `{key: (millicores, bytes)}` after each good answer (keys as the informer's)."""

    def __init__(self, client: ApiClient, resource: str, namespace: str | None,
                 on_usage: Callable[[dict[str, tuple[int, int]]], None]) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.on_usage = on_usage
        self.available: bool | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        if self.resource == "pods" and self.namespace:
            return f"{GROUP}/namespaces/{self.namespace}/pods"
        return f"{GROUP}/{self.resource}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def poll_once(self) -> bool:
        try:
            doc = await self.client.request("GET", self.path)
        except (ClientError, ValueError) as e:
            if self.available is not False:
                log.info("no resource metrics at %s: %s", self.path, e)
            self.available = False
            return False
        found: dict[str, tuple[int, int]] = {}
        for item in doc.get("items") or ():
            meta = item.get("metadata") or _E
            key = f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
            found[key] = usage_of(item)
        self.available = True
        self.on_usage(found)
        return True

    async def _run(self) -> None:
        while True:
            ok = False
            with contextlib.suppress(Exception):
                ok = await self.poll_once()
            await asyncio.sleep(INTERVAL if ok else RETRY)
