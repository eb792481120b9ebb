"""Synthetic resource usage for hollow nodes, served the way a kubelet serves it.

Hollow nodes run no containers, so there is nothing to measure: each running container
of a hollow pod *uses* a configured amount — `--pod-cpu-usage`/`--pod-memory-usage` for
every container, or the pod's annotations `tuik8s.io/hollow-cpu` (e.g. "400m") and
`tuik8s.io/hollow-memory` (e.g. "96Mi"), per container, read afresh at every scrape so a
test can change the load of running pods with `kubectl annotate`. A node uses a fixed
base (its "kubelet") plus its pods.

The figures leave through the same door as a real kubelet's: `/metrics/resource` in
Prometheus text with cumulative CPU seconds (integrated here between scrapes at the rate
in force, so a change of load is a change of slope, never a jump), one endpoint for all
nodes of this process at `/nodes/NAME/metrics/resource`, named in each Node's
`tuik8s.io/resource-metrics-url` annotation for the API server's metrics scraper. It is
plain HTTP on loopback by default: the figures are invented, and the endpoint is no
kubelet, so the API server sends it no credentials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from tuik8s.api.quantity import cpu_millis, to_bytes
from tuik8s.kubelet.stats import ContainerUsage, NodeUsage, render

log = logging.getLogger(__name__)

CPU_ANNOTATION = "tuik8s.io/hollow-cpu"
MEMORY_ANNOTATION = "tuik8s.io/hollow-memory"
NODE_BASE_CPU_MILLIS = 50
NODE_BASE_MEMORY = 256 * 1024 * 1024

Obj = dict[str, Any]


def container_usage(pod: Mapping[str, Any], default_cpu: str, default_memory: str) -> tuple[float, float]:
    """(cores, bytes) each container of `pod` uses: its annotations, else the defaults."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    cpu, memory = annotations.get(CPU_ANNOTATION) or default_cpu, annotations.get(MEMORY_ANNOTATION) or default_memory
    try:
        cores = cpu_millis(cpu) / 1000
    except (ValueError, TypeError):
        cores = cpu_millis(default_cpu) / 1000
    try:
        nbytes = float(to_bytes(memory))
    except (ValueError, TypeError):
        nbytes = float(to_bytes(default_memory))
    return max(0.0, cores), max(0.0, nbytes)


class Integrator:
    """Cumulative CPU seconds per key, advanced at the rate given at each reading."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._state: dict[tuple[str, ...], tuple[float, float]] = {}  # key -> (seconds, read at)

    def read(self, key: tuple[str, ...], rate: float, since: float, at: float | None = None) -> float:
        at = self.clock() if at is None else at
        seconds, last = self._state.get(key, (0.0, since))
        seconds += rate * max(0.0, at - last)
        self._state[key] = (seconds, at)
        return seconds


RunningPods = Callable[[str], Iterable[tuple[Obj, float]]]
"""`(node name) -> (pod, started at)` for each pod whose containers run on that node."""


class HollowMetricsServer:
    """One `/nodes/NAME/metrics/resource` endpoint for every hollow node of this process."""

    def __init__(
        self,
        running_pods: RunningPods,
        known_node: Callable[[str], bool],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cpu: str = "5m",
        memory: str = "16Mi",
    ) -> None:
        self.running_pods = running_pods
        self.known_node = known_node
        self.host = host
        self.port = port
        self.cpu = cpu
        self.memory = memory
        self.integrator = Integrator()
        self._runner: web.AppRunner | None = None
        self._started = time.time()

    def url_for(self, node: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/nodes/{node}/metrics/resource"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/nodes/{node}/metrics/resource", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def document(self, node: str) -> str:
        now = round(time.time(), 3)  # the text carries milliseconds: no rounding between counter and stamp
        containers: list[ContainerUsage] = []
        node_cores = NODE_BASE_CPU_MILLIS / 1000
        node_memory = float(NODE_BASE_MEMORY)
        for pod, started in self.running_pods(node):
            meta = pod.get("metadata") or {}
            cores, nbytes = container_usage(pod, self.cpu, self.memory)
            for c in (pod.get("spec") or {}).get("containers") or []:
                name = str(c.get("name"))
                key = (str(meta.get("uid")), name)
                containers.append(ContainerUsage(
                    namespace=str(meta.get("namespace")), pod=str(meta.get("name")), container=name,
                    cpu_seconds=self.integrator.read(key, cores, started, now), memory_working_set=nbytes,
                    start_time=started, timestamp=now,
                ))
                node_cores += cores
                node_memory += nbytes
        node_seconds = self.integrator.read(("node", node), node_cores, self._started, now)
        return render(NodeUsage(node_seconds, node_memory, now), containers)

    async def _metrics(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        if not self.known_node(node):
            return web.Response(status=404, text=f'no hollow node "{node}" here\n')
        return web.Response(text=self.document(node), content_type="text/plain", charset="utf-8")
