"""Resource usage of a node and its containers, served as upstream's kubelet serves it:
`GET /metrics/resource`, Prometheus text, on the kubelet's HTTPS server (same token).

The figures are the ones metrics-server reads: cumulative CPU seconds
(`node_cpu_usage_seconds_total`, `container_cpu_usage_seconds_total`), working-set bytes
(`*_memory_working_set_bytes`: usage minus inactive file cache, as cAdvisor counts it) and
`container_start_time_seconds`, each with the time it was read. A counter, not a rate:
the reader turns two readings into a rate, so a slow or missed scrape costs nothing.

**Containers.** The Docker Engine API's one-shot stats (`/containers/ID/stats?stream=false
&one-shot=true`), asked concurrently for the running pod containers of this kubelet (the
runtime's scope labels), through the runtime's `EngineClient` (aiohttp on the engine's
socket): no CLI process per container, no thread, and it works on cgroup v1 and v2 alike
because the engine reads the cgroups for us.

**The node.** The kubelet's own cgroup (on a lab node, the node container's: with
`--cgroupns host` the pods' cgroups are its siblings, not its children) plus every pod
container; where the kubelet runs in the root cgroup (a bare host), the machine's
/proc/stat and /proc/meminfo, which already include the containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tuik8s.kubelet.runtime import (
    LABEL_CONTAINER_NAME,
    LABEL_KIND,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    SANDBOX,
)
from tuik8s.kubelet.runtime.engine import EngineClient, EngineError, docker_host_of

log = logging.getLogger(__name__)

# The Node annotation naming where a hollow node's figures are served (they have no kubelet
# server of their own); the API server's kubelet client reads the same name.
METRICS_URL_ANNOTATION = "tuik8s.io/resource-metrics-url"
USER_HZ = 100
SCRAPE_TIMEOUT = 10.0  # per engine call: a scrape answers late rather than never


@dataclass(frozen=True)
class ContainerUsage:
    namespace: str
    pod: str
    container: str
    cpu_seconds: float
    memory_working_set: float
    start_time: float
    timestamp: float


@dataclass(frozen=True)
class NodeUsage:
    cpu_seconds: float
    memory_working_set: float
    timestamp: float


# --- the text format ---------------------------------------------------------------------------

_HELP = {
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the container in core-seconds"),
    "container_memory_working_set_bytes": ("gauge", "Current working set of the container in bytes"),
    "container_start_time_seconds": ("gauge", "Start time of the container since unix epoch in seconds"),
    "node_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the node in core-seconds"),
    "node_memory_working_set_bytes": ("gauge", "Current working set of the node in bytes"),
    "resource_scrape_error": ("gauge", "1 if there was an error while getting container metrics, 0 otherwise"),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def render(node: NodeUsage | None, containers: Iterable[ContainerUsage], error: bool = False) -> str:
    """The `/metrics/resource` document (upstream's metric names, HELP and TYPE lines)."""
    series: dict[str, list[str]] = {name: [] for name in _HELP}
    for c in sorted(containers, key=lambda c: (c.namespace, c.pod, c.container)):
        labels = f'{{container="{_escape(c.container)}",namespace="{_escape(c.namespace)}",pod="{_escape(c.pod)}"}}'
        ms = int(c.timestamp * 1000)
        series["container_cpu_usage_seconds_total"].append(f"{labels} {_num(c.cpu_seconds)} {ms}")
        series["container_memory_working_set_bytes"].append(f"{labels} {_num(c.memory_working_set)} {ms}")
        series["container_start_time_seconds"].append(f"{labels} {_num(c.start_time)} {ms}")
    if node is not None:
        ms = int(node.timestamp * 1000)
        series["node_cpu_usage_seconds_total"].append(f" {_num(node.cpu_seconds)} {ms}")
        series["node_memory_working_set_bytes"].append(f" {_num(node.memory_working_set)} {ms}")
    series["resource_scrape_error"].append(f" {1 if error else 0}")
    lines: list[str] = []
    for name, samples in series.items():
        if not samples:
            continue
        kind, text = _HELP[name]
        lines.append(f"# HELP {name} [STABLE] {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(name + s for s in samples)
    return "\n".join(lines) + "\n"


# --- the node's own cgroup ---------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _stat_value(text: str | None, key: str) -> float | None:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            with contextlib.suppress(ValueError):
                return float(value)
    return None


def own_cgroups(proc_self_cgroup: str) -> dict[str, str]:
    """controller -> path of this process (`""` is cgroup v2's unified hierarchy)."""
    out: dict[str, str] = {}
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            out[controller] = parts[2]
    return out


def cgroup_usage(root: Path, groups: Mapping[str, str]) -> tuple[float, float] | None:
    """(cpu seconds, working-set bytes) of the cgroups in `groups`; None if unreadable."""
    if "cpuacct" in groups and "memory" in groups:
        cpu = _read(root / "cpuacct" / groups["cpuacct"].lstrip("/") / "cpuacct.usage")
        if cpu is None:
            cpu = _read(root / "cpu,cpuacct" / groups["cpuacct"].lstrip("/") / "cpuacct.usage")
        mem_dir = root / "memory" / groups["memory"].lstrip("/")
        usage = _read(mem_dir / "memory.usage_in_bytes")
        if cpu is None or usage is None:
            return None
        inactive = _stat_value(_read(mem_dir / "memory.stat"), "total_inactive_file") or 0.0
        return int(cpu) / 1e9, max(0.0, float(usage) - inactive)
    if "" in groups:
        d = root / groups[""].lstrip("/")
        usec = _stat_value(_read(d / "cpu.stat"), "usage_usec")
        current = _read(d / "memory.current")
        if usec is None or current is None:
            return None
        inactive = _stat_value(_read(d / "memory.stat"), "inactive_file") or 0.0
        return usec / 1e6, max(0.0, float(current) - inactive)
    return None


def machine_usage(proc: Path = Path("/proc")) -> tuple[float, float] | None:
    """(cpu seconds, working-set bytes) of the whole machine, from /proc."""
    stat, meminfo = _read(proc / "stat"), _read(proc / "meminfo")
    if not stat or not meminfo:
        return None
    fields = stat.splitlines()[0].split()[1:]
    try:
        ticks = [int(f) for f in fields]
    except ValueError:
        return None
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # minus idle and iowait
    mem = {}
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            mem[name.strip()] = float(words[0])
    total, available = mem.get("MemTotal"), mem.get("MemAvailable")
    if total is None or available is None:
        return None
    return busy / USER_HZ, (total - available) * 1024


# --- the containers, from the Docker Engine API -------------------------------------------------


def working_set(memory_stats: Mapping[str, Any]) -> float | None:
    usage = memory_stats.get("usage")
    if usage is None:
        return None
    stats = memory_stats.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
    return float(max(0, int(usage) - int(inactive)))


def _parse_docker_time(text: str | None) -> float | None:
    if not text or text.startswith("0001-01-01"):
        return None
    head, _, frac = text.removesuffix("Z").partition(".")
    try:
        import datetime as dt

        when = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    digits = "".join(ch for ch in frac if ch.isdigit())[:9]
    return when.timestamp() + (float("0." + digits) if digits else 0.0)


class StatsProvider:
    """Reads the usage of this kubelet's containers and of its node."""

    def __init__(
        self,
        docker_host: str | None = None,
        scope: Mapping[str, str] | None = None,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
        proc: Path = Path("/proc"),
    ) -> None:
        self.engine = EngineClient(docker_host)
        self.scope = dict(scope or {})
        self.cgroup_root = cgroup_root
        self.proc = proc
        self._warned = False

    async def close(self) -> None:
        await self.engine.close()

    async def containers(self) -> list[ContainerUsage]:
        """Every running app or init container of this kubelet's pods."""
        if not self.engine.addressable:
            if not self._warned:
                log.warning("kubelet stats: the Docker host is neither unix:// nor tcp://; no container figures")
                self._warned = True
            return []
        labels = [f"{k}={v}" for k, v in self.scope.items()] + [LABEL_POD_UID]
        listed = await self.engine.list_containers(labels, running_only=True, time_limit=SCRAPE_TIMEOUT)
        wanted = [c for c in listed if (c.get("Labels") or {}).get(LABEL_KIND) != SANDBOX]
        results = await asyncio.gather(*(self._one(c) for c in wanted), return_exceptions=True)
        return [r for r in results if isinstance(r, ContainerUsage)]

    async def _one(self, listed: Mapping[str, Any]) -> ContainerUsage | None:
        labels = listed.get("Labels") or {}
        stats = await self.engine.container_stats(str(listed["Id"]), time_limit=SCRAPE_TIMEOUT)
        cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        memory = working_set(stats.get("memory_stats") or {})
        if cpu is None or memory is None:
            return None  # stopped meanwhile: the engine answers with empty figures
        return ContainerUsage(
            namespace=labels.get(LABEL_POD_NAMESPACE, ""),
            pod=labels.get(LABEL_POD_NAME, ""),
            container=labels.get(LABEL_CONTAINER_NAME, ""),
            cpu_seconds=int(cpu) / 1e9,
            memory_working_set=memory,
            start_time=float(listed.get("Created") or 0),
            timestamp=_parse_docker_time(stats.get("read")) or time.time(),
        )

    def node(self, containers: Iterable[ContainerUsage]) -> NodeUsage | None:
        groups = own_cgroups(_read(self.proc / "self" / "cgroup") or "")
        at_root = all(path == "/" for path in groups.values())
        if at_root:
            usage = machine_usage(self.proc)
        else:
            usage = cgroup_usage(self.cgroup_root, groups)
            if usage is not None:
                items = list(containers)
                usage = (
                    usage[0] + sum(c.cpu_seconds for c in items),
                    usage[1] + sum(c.memory_working_set for c in items),
                )
        if usage is None:
            return None
        return NodeUsage(usage[0], usage[1], time.time())

    async def document(self) -> str:
        error = False
        try:
            containers = await self.containers()
        except EngineError as e:
            log.warning("kubelet stats: the Docker engine's figures are unavailable: %s", e or type(e).__name__)
            containers, error = [], True
        return render(await asyncio.to_thread(self.node, containers), containers, error)


# --- the route ---------------------------------------------------------------------------------


def add_routes(app: web.Application, runtime: Any, authorized: Callable[[str | None], bool]) -> None:
    """Mount `/metrics/resource` on the kubelet's server, for the runtime's Docker engine."""
    provider = StatsProvider(docker_host=docker_host_of(runtime), scope=getattr(runtime, "scope", None))

    async def resource_metrics(request: web.Request) -> web.Response:
        if not authorized(request.headers.get("Authorization")):
            return web.Response(status=401, text="Unauthorized\n")
        return web.Response(text=await provider.document(), content_type="text/plain", charset="utf-8")

    async def close(_app: web.Application) -> None:
        await provider.close()

    app.router.add_get("/metrics/resource", resource_metrics)
    app.on_cleanup.append(close)
