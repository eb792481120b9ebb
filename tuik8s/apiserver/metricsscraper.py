"""The metrics scraper: upstream's metrics-server, inside the control plane.

Every `resolution` seconds (upstream's --metric-resolution, 15 s; the lab's 5 s) it asks
the kubelet of each Ready node for `/metrics/resource` (Prometheus text, as upstream's
kubelet serves it) through the API server's own kubelet client, and keeps the newest
window in memory — nothing is written to the store, as metrics-server keeps nothing in
etcd. The kubelet reports *cumulative* CPU seconds; usage is the rate between this
scrape and the one before (so a node's first scrape yields no CPU figure yet, as
upstream), memory is the latest working set.

A scrape that fails leaves the node (and its pods) out of the new window: stale figures
would make the HPA act on load that is gone. Nodes are scraped concurrently, a bounded
number at a time, so a thousand hollow nodes or one hung kubelet never stall the round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tuik8s.store.base import Store
from tuik8s.store.sqlite import decode

log = logging.getLogger(__name__)

DEFAULT_RESOLUTION = 15.0  # upstream metrics-server --metric-resolution
LAB_RESOLUTION = 5.0
SCRAPE_TIMEOUT = 10.0
MAX_IN_FLIGHT = 32
# The scraper shares the API server's event loop: a thousand hollow nodes every 5 s was
# 200 scrapes a second, a visible share of the server's CPU while it created 10,000 pods
# (bench/scale.py). Big clusters get a longer round instead (1,000 nodes: 25 s).
MAX_SCRAPES_PER_SECOND = 40.0


# --- the Prometheus text format (the subset kubelets write) -----------------------------------


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            break
        key = text[i:eq].strip()
        j = eq + 1
        if j >= n or text[j] != '"':
            break
        j += 1
        start = j
        while j < n and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        out[key] = _unescape(text[start:j])
        i = j + 1
    return out


def parse_prometheus(text: str) -> Iterable[tuple[str, dict[str, str], float, float | None]]:
    """(name, labels, value, timestamp in seconds or None) for each sample line."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            labels_text, _, tail = rest.rpartition("}")
            labels = _labels(labels_text)
        else:
            name, _, tail = line.partition(" ")
            labels = {}
        parts = tail.split()
        if not parts:
            continue
        try:
            value = float(parts[0])
            stamp = float(parts[1]) / 1000 if len(parts) > 1 else None
        except ValueError:
            continue
        yield name.strip(), labels, value, stamp


# --- samples and the window --------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One cumulative CPU reading and one working-set reading, at `timestamp`."""

    cpu_seconds: float | None
    memory: float | None
    timestamp: float
    start_time: float | None = None


@dataclass
class NodeScrape:
    """What one scrape of one node's kubelet gave."""

    node: Sample
    containers: dict[tuple[str, str, str], Sample] = field(default_factory=dict)


def node_scrape(text: str, scraped_at: float) -> NodeScrape:
    """A `NodeScrape` from a kubelet's `/metrics/resource` answer."""
    node_cpu: float | None = None
    node_mem: float | None = None
    node_ts = scraped_at
    cpu: dict[tuple[str, str, str], tuple[float, float]] = {}
    mem: dict[tuple[str, str, str], float] = {}
    start: dict[tuple[str, str, str], float] = {}
    for name, labels, value, stamp in parse_prometheus(text):
        if name == "node_cpu_usage_seconds_total":
            node_cpu, node_ts = value, stamp or scraped_at
        elif name == "node_memory_working_set_bytes":
            node_mem = value
        elif name.startswith("container_"):
            key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
            if not all(key):
                continue
            if name == "container_cpu_usage_seconds_total":
                cpu[key] = (value, stamp or scraped_at)
            elif name == "container_memory_working_set_bytes":
                mem[key] = value
            elif name == "container_start_time_seconds":
                start[key] = value
    containers = {
        key: Sample(value, mem.get(key), ts, start.get(key)) for key, (value, ts) in cpu.items()
    }
    return NodeScrape(Sample(node_cpu, node_mem, node_ts), containers)


@dataclass(frozen=True)
class Usage:
    """A resource-metrics point: cores and bytes over `window` seconds ending at `timestamp`."""

    timestamp: float
    window: float
    cpu: float  # cores
    memory: float  # bytes


def _rate(prev: Sample | None, last: Sample) -> tuple[float, float] | None:
    """(cores, window) between two cumulative readings, or None when there is no rate:
    no earlier reading of the same container, a restart, or a counter that went back.
    A container that started after the earlier reading counts from its start at zero,
    as metrics-server does, so a new pod has a figure after one scrape."""
    if last.cpu_seconds is None:
        return None
    if prev is not None and prev.cpu_seconds is not None and prev.start_time == last.start_time:
        window = last.timestamp - prev.timestamp
        delta = last.cpu_seconds - prev.cpu_seconds
        if window > 0 and delta >= 0:
            return delta / window, window
        return None
    since = prev.timestamp if prev is not None else None
    if last.start_time is not None and (since is None or last.start_time > since):
        window = last.timestamp - last.start_time
        if window > 0:
            return last.cpu_seconds / window, window
    return None


class MetricsStorage:
    """The newest usage of every node and pod, computed from the last two scrapes."""

    def __init__(self) -> None:
        self._last: dict[str, NodeScrape] = {}
        self.nodes: dict[str, Usage] = {}
        self.pods: dict[tuple[str, str], tuple[float, float, list[tuple[str, Usage]]]] = {}
        self.updated: float | None = None

    def store(self, batch: dict[str, NodeScrape]) -> None:
        nodes: dict[str, Usage] = {}
        per_pod: dict[tuple[str, str], list[tuple[str, Usage]]] = {}
        incomplete: set[tuple[str, str]] = set()
        for name, scrape in batch.items():
            prev = self._last.get(name)
            rate = _rate(prev.node if prev else None, scrape.node)
            if rate is not None and scrape.node.memory is not None:
                nodes[name] = Usage(scrape.node.timestamp, rate[1], rate[0], scrape.node.memory)
            for (ns, pod, container), sample in scrape.containers.items():
                crate = _rate(prev.containers.get((ns, pod, container)) if prev else None, sample)
                if crate is None or sample.memory is None:
                    incomplete.add((ns, pod))
                    continue
                per_pod.setdefault((ns, pod), []).append(
                    (container, Usage(sample.timestamp, crate[1], crate[0], sample.memory))
                )
        pods: dict[tuple[str, str], tuple[float, float, list[tuple[str, Usage]]]] = {}
        for key, containers in per_pod.items():
            if key in incomplete:
                continue  # a pod is reported whole or not at all
            containers.sort()
            pods[key] = (
                max(u.timestamp for _, u in containers),
                max(u.window for _, u in containers),
                containers,
            )
        self._last = dict(batch)
        self.nodes = nodes
        self.pods = pods
        self.updated = time.time()


# --- the scraper -------------------------------------------------------------------------------


Fetch = Callable[[dict[str, Any]], Awaitable[str]]
"""`(node) -> the text of its kubelet's /metrics/resource`; raises on any failure."""


class StoredNodes:
    """The Nodes in the store, decoded once per resourceVersion (a round reads them all)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}

    def __call__(self) -> list[dict[str, Any]]:
        out, seen = [], {}
        for stored in self.store.list("nodes"):
            hit = self._cache.get(stored.name)
            if hit is None or hit[0] != stored.rv:
                hit = (stored.rv, decode(stored))
            seen[stored.name] = hit
            out.append(hit[1])
        self._cache = seen
        return out


def node_ready(node: dict[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


class MetricsScraper:
    """Scrapes the kubelets of the Ready nodes every `resolution` seconds into `storage`."""

    def __init__(
        self,
        list_nodes: Callable[[], list[dict[str, Any]]],
        fetch: Fetch,
        storage: MetricsStorage | None = None,
        *,
        resolution: float = DEFAULT_RESOLUTION,
        timeout: float = SCRAPE_TIMEOUT,
    ) -> None:
        self.list_nodes = list_nodes
        self.fetch = fetch
        self.storage = storage or MetricsStorage()
        self.resolution = resolution
        self.timeout = timeout
        self._failing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="metrics scraper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            scraped = 0
            try:
                scraped = await self.scrape_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad round must not end the scraper
                log.exception("metrics scraper: a round failed")
            interval = max(self.resolution, scraped / MAX_SCRAPES_PER_SECOND)
            await asyncio.sleep(max(0.5, interval - (time.monotonic() - started)))

    async def scrape_once(self) -> int:
        """One round over the Ready nodes; returns how many were asked."""
        nodes = [n for n in self.list_nodes() if node_ready(n)]
        gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        results = await asyncio.gather(*(self._scrape(n, gate) for n in nodes))
        failed = {name: why for name, _, why in results if why}
        new = sorted(set(failed) - self._failing)
        if new:  # once per outage, one line however many nodes
            more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
            log.warning("metrics scraper: cannot scrape node %s: %s%s", new[0], failed[new[0]], more)
        self._failing = set(failed)
        self.storage.store({name: scrape for name, scrape, _ in results if scrape is not None})
        return len(nodes)

    async def _scrape(self, node: dict[str, Any], gate: asyncio.Semaphore) -> tuple[str, NodeScrape | None, str]:
        name = str((node.get("metadata") or {}).get("name") or "")
        async with gate:
            try:
                async with asyncio.timeout(self.timeout):
                    text = await self.fetch(node)
                return name, node_scrape(text, time.time()), ""
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - an unreachable kubelet is an ordinary case
                return name, None, str(e) or type(e).__name__
