"""Hollow nodes: many simulated kubelets in one process, as kubemark and KWOK do.

`tuik8s hollow --nodes N` registers N Nodes that a scheduler, the controllers and kubectl
cannot tell from real ones: each renews its Lease, reports its status, and runs the pods
bound to it — without containers. A pod bound to a hollow node becomes Running with an
IP from the node's podCIDR and every container ready after a short random delay
(`--start-delay`, default up to 0.5 s); a deleted pod has its containers stopped and is
then removed (DELETE with grace 0 and a UID precondition, as a kubelet finishes it).

Two annotations make a pod end on its own, so Jobs complete (only for restartPolicy
Never or OnFailure; pods with restartPolicy Always run until deleted):

- `tuik8s.io/hollow-exit-code: "N"`: every container exits with code N;
- `tuik8s.io/hollow-run-seconds: "S"`: after running S seconds (default 1).

With Never the pod ends Succeeded (N = 0) or Failed; with OnFailure a non-zero exit is
restarted after a CrashLoopBackOff back-off (10 s doubling to 5 min, as upstream).

Scale (1,000 nodes and 10,000 pods in one process) shapes the design:

- One HTTPS connection pool for everything, and one pod watch for all nodes
  (`fieldSelector=spec.nodeName!=`) plus one Node watch; each hollow node only looks its
  pods up in the shared cache.
- Requests go through `ThrottledTransport`: a bounded number in flight, and heartbeats
  (Leases, Node status) ahead of pod writes, so a burst of 10,000 pod updates never
  makes nodes miss their Leases and go NotReady. Pod writes also respect a QPS limit.
- Pod work is level-triggered through one `WorkQueue`: ten changes to a pod before a
  worker reaches it cost one status write, and `status_changed` drops writes that change
  nothing. Node events go through a bounded, best-effort queue.

The "container runtime" is in memory: a sandbox (IP, start time) per pod. After a
restart of this process, pods the API shows Running on our nodes are adopted as they
are, so nothing is rewritten. SIGTERM stops the nodes as stopped kubelets: the Nodes
stay and go NotReady (`--delete-on-exit` removes them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import ipaddress
import logging
import random
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tuik8s.api.quantity import to_bytes
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError, ClientError, is_conflict, is_not_found
from tuik8s.client.informer import Informer, object_key
from tuik8s.client.transport import RawResponse, Transport
from tuik8s.client.workqueue import ShutDown, WorkQueue
from tuik8s.kubelet.node import (
    LAB_LEASE_DURATION,
    NODE_LEASE_NAMESPACE,
    NodeAgent,
    NodeConfig,
)
from tuik8s.kubelet.stats import METRICS_URL_ANNOTATION
from tuik8s.kubelet.status import (
    RUNNING_STATE,
    TERMINATED,
    WAITING,
    ContainerState,
    PodRuntimeStatus,
    Termination,
    build_pod_status,
    image_id,
    normalize_image,
    parse_time,
    rfc3339,
    status_changed,
)
from tuik8s.nodes.hollow_metrics import HollowMetricsServer

log = logging.getLogger(__name__)

Obj = dict[str, Any]

EXIT_CODE_ANNOTATION = "tuik8s.io/hollow-exit-code"
RUN_SECONDS_ANNOTATION = "tuik8s.io/hollow-run-seconds"
HOLLOW_LABEL = "tuik8s.io/hollow"
RUNTIME_VERSION = "hollow://1.0.0"
CLUSTER_CIDR = "10.244.0.0/14"  # room for 1,024 nodes of /24; the first 256 are 10.244.N.0/24
NODE_IP_RANGE = "10.200.0.0/16"
BACKOFF_BASE, BACKOFF_CAP = 10.0, 300.0  # upstream CrashLoopBackOff
KILLED_EXIT_CODE = 143  # a run-to-completion container stopped by SIGTERM
EVENT_QUEUE_SIZE = 10_000
# The cyclic collector's thresholds once the nodes run (CPython's are 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


# --- requests: one pool, bounded, heartbeats first -------------------------------------------


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up (client-go's QPS/burst)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._at = time.monotonic()

    async def take(self) -> None:
        if self.rate <= 0:
            return
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.rate)


def _is_heartbeat(method: str, path: str) -> bool:
    """Lease renewals and Node writes: what keeps a node Ready goes first."""
    return path.startswith(f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/") or (
        path.startswith("/api/v1/nodes") and method != "GET"
    )


class ThrottledTransport:
    """A `Transport` that keeps at most `max_in_flight` requests open, heartbeats first.

    Requests past the limit wait in two lines; a freed slot goes to the heartbeat line
    before the other. Streams (the watches) are not counted: they stay open for minutes.
    Other writes also take a token from `write_qps` so a flood of pod updates is paced.
    """

    def __init__(self, inner: Transport, *, max_in_flight: int = 32, write_qps: float = 0, write_burst: int = 100) -> None:
        self.inner = inner
        self.max_in_flight = max(1, max_in_flight)
        self._in_flight = 0
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())
        self._writes = TokenBucket(write_qps, write_burst)

    async def _acquire(self, urgent: bool) -> None:
        if self._in_flight < self.max_in_flight and not any(self._waiting):
            self._in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._waiting[0 if urgent else 1]
        line.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # the slot was handed to us: pass it on
            else:
                with contextlib.suppress(ValueError):
                    line.remove(fut)
            raise

    def _release(self) -> None:
        for line in self._waiting:
            while line:
                fut = line.popleft()
                if not fut.done():
                    fut.set_result(None)  # the slot moves to the waiter as it is
                    return
        self._in_flight -= 1

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> RawResponse:
        urgent = _is_heartbeat(method, path)
        if not urgent and method != "GET":
            await self._writes.take()
        await self._acquire(urgent)
        try:
            return await self.inner.request(method, path, query=query, headers=headers, body=body)
        finally:
            self._release()

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[bytes]:
        return self.inner.stream(method, path, query=query, headers=headers)

    async def close(self) -> None:
        await self.inner.close()


# --- the hollow runtime ------------------------------------------------------------------------


@dataclass
class Sandbox:
    """One pod on a hollow node: its IP and the times its containers start and stop."""

    uid: str
    ip: str
    created_at: float
    start_at: float
    killed_at: float | None = None
    adopted: bool = False
    announced: bool = False  # Pulled/Created/Started events recorded
    host_network: bool = False  # the node's IP, not one of the pod CIDR


def _container_id(uid: str, name: str, attempt: int) -> str:
    return "hollow://" + hashlib.sha256(f"{uid}/{name}/{attempt}".encode()).hexdigest()


def _annotation_int(pod: Mapping[str, Any], key: str) -> int | None:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _annotation_float(pod: Mapping[str, Any], key: str, default: float) -> float:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return max(0.0, float(str(value).strip())) if value is not None else default
    except ValueError:
        return default


def _backoff(restarts: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(restarts, 10))


def _container_timeline(
    pod: Mapping[str, Any], sb: Sandbox, spec: Mapping[str, Any], now: float
) -> tuple[ContainerState, float | None]:
    """Where one regular container is at `now`, and when that next changes."""
    meta = pod.get("metadata") or {}
    name = str(spec.get("name") or "")
    image = normalize_image(str(spec.get("image") or ""))
    base = ContainerState(name=name, image=image, image_id=image_id(str(spec.get("image") or "")))
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    exit_code = _annotation_int(pod, EXIT_CODE_ANNOTATION) if policy in ("Never", "OnFailure") else None
    run = _annotation_float(pod, RUN_SECONDS_ANNOTATION, 1.0)
    end_of_time = sb.killed_at if sb.killed_at is not None else float("inf")

    attempt, started, last = 0, sb.start_at, None
    while True:
        ends = started + run if exit_code is not None else float("inf")
        cid = _container_id(sb.uid, name, attempt)
        if end_of_time < ends and end_of_time <= now:
            # stopped by the kubelet while running
            code = 0 if exit_code is None else KILLED_EXIT_CODE
            term = Termination(code, "Completed" if code == 0 else "Error", started_at=rfc3339(started),
                               finished_at=rfc3339(end_of_time), container_id=cid)
            return replace(base, container_id=cid, state=TERMINATED, termination=term,
                                  last_termination=last, restart_count=attempt), None
        if now < ends:
            state = replace(base, container_id=cid, state=RUNNING_STATE, started_at=rfc3339(started),
                                   last_termination=last, restart_count=attempt, ready=True, started=True)
            return state, (ends if ends != float("inf") else None)
        assert exit_code is not None
        term = Termination(exit_code, "Completed" if exit_code == 0 else "Error", started_at=rfc3339(started),
                           finished_at=rfc3339(ends), container_id=cid)
        if policy == "Never" or exit_code == 0 or end_of_time <= ends:
            return replace(base, container_id=cid, state=TERMINATED, termination=term,
                                  last_termination=last, restart_count=attempt), None
        wait = _backoff(attempt)
        if now < ends + wait and end_of_time > now:
            message = (f"back-off {wait:g}s restarting failed container={name} "
                       f"pod={meta.get('name')}_{meta.get('namespace')}({sb.uid})")
            return replace(base, container_id=cid, state=WAITING, reason="CrashLoopBackOff",
                                  message=message, last_termination=term, restart_count=attempt), ends + wait
        if end_of_time <= ends + wait:
            return replace(base, container_id=cid, state=TERMINATED, termination=term,
                                  last_termination=last, restart_count=attempt), None
        attempt, started, last = attempt + 1, ends + wait, term


def hollow_runtime_status(pod: Mapping[str, Any], sb: Sandbox, now: float) -> tuple[PodRuntimeStatus, float | None]:
    """What a container runtime would report for `pod` at `now`, and when it next changes.

    A pure function of the pod, its sandbox and the clock, so every sync recomputes the
    same answer: nothing about the containers is stored but the sandbox's times.
    """
    spec = pod.get("spec") or {}
    if now < sb.start_at and sb.killed_at is None:
        return PodRuntimeStatus(), sb.start_at
    started = rfc3339(sb.start_at)
    inits: dict[str, ContainerState] = {}
    for c in spec.get("initContainers") or []:
        name = str(c.get("name") or "")
        image = normalize_image(str(c.get("image") or ""))
        cid = _container_id(sb.uid, name, 0)
        base = ContainerState(name=name, image=image, image_id=image_id(str(c.get("image") or "")), container_id=cid)
        if c.get("restartPolicy") == "Always":  # a sidecar runs alongside
            if sb.killed_at is not None and sb.killed_at <= now:
                term = Termination(0, "Completed", started_at=started, finished_at=rfc3339(sb.killed_at), container_id=cid)
                inits[name] = replace(base, state=TERMINATED, termination=term)
            else:
                inits[name] = replace(base, state=RUNNING_STATE, started_at=started, ready=True, started=True)
        else:
            term = Termination(0, "Completed", started_at=started, finished_at=started, container_id=cid)
            inits[name] = replace(base, state=TERMINATED, termination=term)
    mains: dict[str, ContainerState] = {}
    next_change: float | None = None
    for c in spec.get("containers") or []:
        state, when = _container_timeline(pod, sb, c, now)
        mains[state.name] = state
        if when is not None and (next_change is None or when < next_change):
            next_change = when
    alive = sb.killed_at is None or sb.killed_at > now
    return PodRuntimeStatus(pod_ips=(sb.ip,), sandbox_ready=alive, containers=mains, init_containers=inits), next_change


def pod_finished(pod: Mapping[str, Any], runtime: PodRuntimeStatus) -> bool:
    """Every container has exited for good (its restart policy will not restart it)."""
    if not runtime.containers:
        return False
    return all(c.state == TERMINATED for c in runtime.containers.values())


class PodIPAM:
    """Host-local IPAM for one node: the next free address of its podCIDR, round robin."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        # .0 is the network, .1 the node's bridge, the last the broadcast
        self._first = int(self.network.network_address) + 2
        self._last = int(self.network.broadcast_address) - 1
        self._next = self._first
        self.used: set[str] = set()

    def reserve(self, ip: str) -> bool:
        try:
            if ipaddress.ip_address(ip) not in self.network:
                return False
        except ValueError:
            return False
        self.used.add(ip)
        return True

    def allocate(self) -> str | None:
        size = self._last - self._first + 1
        for i in range(size):
            candidate = self._first + (self._next - self._first + i) % size
            ip = str(ipaddress.ip_address(candidate))
            if ip not in self.used:
                self.used.add(ip)
                self._next = candidate + 1 if candidate < self._last else self._first
                return ip
        return None

    def release(self, ip: str) -> None:
        self.used.discard(ip)


# --- nodes and the cluster -------------------------------------------------------------------


@dataclass
class HollowConfig:
    """How many nodes, what they look like, and how fast they act."""

    nodes: int = 3
    name_prefix: str = "hollow-"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    lease_duration: int = LAB_LEASE_DURATION
    status_report_frequency: float = 300.0
    start_delay: float = 0.5  # containers start after uniform(0, start_delay) seconds
    cluster_cidr: str = CLUSTER_CIDR
    node_ip_range: str = NODE_IP_RANGE
    labels: dict[str, str] = field(default_factory=dict)
    events: bool = True
    # 1,000 nodes renew 200 Leases a second: at 0.2 s a request under load they hold 40
    # requests open, so a bound of 32 left pod writes no slot at all
    max_in_flight: int = 128
    write_qps: float = 0.0  # 0: only the in-flight bound paces pod writes
    workers: int = 128  # each waits for its write: as many as may be in flight
    # synthetic resource usage, served for the metrics scraper (hollow_metrics.py)
    metrics: bool = True
    metrics_address: str = "127.0.0.1"
    pod_cpu_usage: str = "5m"  # per container, unless the pod's tuik8s.io/hollow-cpu says otherwise
    pod_memory_usage: str = "16Mi"  # per container (tuik8s.io/hollow-memory)

    def names(self) -> list[str]:
        return [f"{self.name_prefix}{i}" for i in range(self.nodes)]


class HollowNode:
    """One simulated kubelet: its NodeAgent, its sandboxes, and whether it runs."""

    def __init__(self, cluster: HollowCluster, cfg: NodeConfig) -> None:
        self.cluster = cluster
        self.cfg = cfg
        self.name = cfg.name
        self.agent = self._new_agent()
        self.ipam = PodIPAM(cfg.pod_cidr or "10.244.0.0/24")
        self.sandboxes: dict[str, Sandbox] = {}
        self.task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def _new_agent(self) -> NodeAgent:
        return NodeAgent(
            self.cluster.client, self.cfg, node_cache=lambda: self.cluster.node_informer.get(self.name),
            record_event=self.cluster.record_event,
        )

    def start(self) -> None:
        """Start (or restart) the kubelet: a fresh agent registers again, as after a reboot."""
        if not self.running:
            self.agent = self._new_agent()
            self.task = asyncio.create_task(self.agent.run(), name=f"hollow node {self.name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None

    def node_ip(self) -> str:
        return self.cfg.internal_ip

    def adopt_cidr(self, node: Mapping[str, Any]) -> None:
        """Use the podCIDR the Node in the API has (it may predate this process)."""
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr and str(self.ipam.network) != cidr:
            used = self.ipam.used
            self.ipam = PodIPAM(cidr)
            for ip in used:
                self.ipam.reserve(ip)
            self.cfg.pod_cidr = cidr

    def sandbox_for(self, pod: Mapping[str, Any], now: float, delay: float) -> Sandbox | None:
        """The pod's sandbox: the one we run, one adopted from its status, or a new one."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        sb = self.sandboxes.get(uid)
        if sb is not None:
            return sb
        status = pod.get("status") or {}
        host = bool((pod.get("spec") or {}).get("hostNetwork"))
        ip = self.node_ip() if host else status.get("podIP")
        started = _first_start(status)
        if ip and started is not None and (host or self.ipam.reserve(str(ip))):
            # ours before this process restarted: its containers kept running
            sb = Sandbox(uid, str(ip), started, started, adopted=True, announced=True, host_network=host)
        elif host:
            sb = Sandbox(uid, str(ip), now, now + delay, host_network=True)
        else:
            ip = self.ipam.allocate()
            if ip is None:
                return None
            sb = Sandbox(uid, ip, now, now + delay)
        self.sandboxes[uid] = sb
        return sb

    def release_ip(self, sb: Sandbox) -> None:
        if not sb.host_network:
            self.ipam.release(sb.ip)

    def forget(self, uid: str) -> None:
        sb = self.sandboxes.pop(uid, None)
        if sb is not None:
            self.release_ip(sb)


def _first_start(status: Mapping[str, Any]) -> float | None:
    """When the pod's containers first started, by its status; None if none has."""
    times: list[float] = []
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        candidates = [(state.get(kind) or {}).get("startedAt") for kind in ("running", "terminated")]
        candidates.append(((cs.get("lastState") or {}).get("terminated") or {}).get("startedAt"))
        times.extend(at for text in candidates if (at := parse_time(text)) is not None)
    return min(times) if times else None


def _rv(obj: Mapping[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _node_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


class HollowCluster:
    """N hollow nodes sharing one client, one pod watch and one Node watch.

    Library use::

        cluster = HollowCluster(client, HollowConfig(nodes=3))
        await cluster.start()            # returns once every Node is registered and leased
        await cluster.stop_node("hollow-1")   # that kubelet goes quiet
        await cluster.start_node("hollow-1")  # and comes back
        await cluster.stop()
    """

    def __init__(self, client: ApiClient, config: HollowConfig | None = None) -> None:
        self.client = client
        self.config = config or HollowConfig()
        self.node_informer = Informer(client, "nodes")
        self.pod_informer = Informer(client, "pods", field_selector="spec.nodeName!=")
        self.pod_informer.add_index("node", lambda p: [n] if (n := _node_of(p)) else [])
        self.nodes: dict[str, HollowNode] = {}
        self.queue: WorkQueue[str] = WorkQueue(name="hollow-pods", max_delay=5.0)
        self._written: dict[str, Obj] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._events: asyncio.Queue[tuple[Obj, str, str, str, str]] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self._event_task: asyncio.Task[None] | None = None
        self.events_dropped = 0
        self.pod_writes = 0
        self.metrics: HollowMetricsServer | None = None
        if self.config.metrics:
            self.metrics = HollowMetricsServer(
                self._running_pods, lambda name: name in self.nodes, host=self.config.metrics_address,
                cpu=self.config.pod_cpu_usage, memory=self.config.pod_memory_usage,
            )

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the watches and every node; return once all Nodes are registered."""
        self.node_informer.add_handler(self._node_changed, lambda old, new: self._node_changed(new), None)
        self.pod_informer.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_deleted)
        self.node_informer.start()
        await self.node_informer.wait_synced()
        if self.metrics is not None:
            await self.metrics.start()
        for cfg in self._plan_nodes():
            self.nodes[cfg.name] = HollowNode(self, cfg)
        self.pod_informer.start()
        await self.pod_informer.wait_synced()
        if self.config.events:
            self._event_task = asyncio.create_task(self._send_events(), name="hollow events")
        self._workers = [asyncio.create_task(self._worker(), name=f"hollow pod worker {i}") for i in range(self.config.workers)]
        for node in self.nodes.values():
            node.start()
        await self.wait_registered()
        for node in self.nodes.values():
            self._requeue_node(node.name)
        await self._publish_metrics_urls()

    async def wait_registered(self) -> None:
        """Until every running node has registered and renewed its Lease once."""
        await asyncio.gather(*(n.agent.leased.wait() for n in self.nodes.values() if n.running))

    async def stop(self, *, delete_nodes: bool = False) -> None:
        """Stop every node (they go NotReady in time); `delete_nodes` removes them too."""
        await asyncio.gather(*(n.stop() for n in self.nodes.values()))
        self.queue.shutdown()
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w
        self._workers = []
        if self._event_task is not None:
            self._event_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._event_task
            self._event_task = None
        await self.pod_informer.stop()
        await self.node_informer.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        if delete_nodes:
            await asyncio.gather(*(self._delete_node(name) for name in self.nodes))

    async def _delete_node(self, name: str) -> None:
        for res, ns in (("nodes", None), ("leases", NODE_LEASE_NAMESPACE)):
            try:
                await self.client.delete(res, name, ns)
            except ApiError as e:
                if not is_not_found(e):
                    log.warning("could not delete %s %s: %s", res, name, e)
            except ClientError as e:
                log.warning("could not delete %s %s: %s", res, name, e)

    async def stop_node(self, name: str) -> None:
        """That kubelet stops: no Lease, no status, its pods left as they are."""
        await self.nodes[name].stop()

    async def start_node(self, name: str) -> None:
        """That kubelet starts again: it re-registers, reports Ready and syncs its pods."""
        node = self.nodes[name]
        node.start()
        await node.agent.leased.wait()
        self._requeue_node(name)

    def _requeue_node(self, name: str) -> None:
        for key in self.pod_informer.index_keys("node", name):
            self.queue.add(key)

    # ---- planning the nodes ---------------------------------------------------------

    def _plan_nodes(self) -> list[NodeConfig]:
        """NodeConfigs for our names: existing Nodes keep their podCIDR and IP; new ones
        get the lowest /24 of the cluster CIDR no Node uses yet."""
        cfg = self.config
        existing = {(n.get("metadata") or {}).get("name"): n for n in self.node_informer.list()}
        taken_cidrs = {str((n.get("spec") or {}).get("podCIDR")) for n in existing.values() if (n.get("spec") or {}).get("podCIDR")}
        cluster = ipaddress.ip_network(cfg.cluster_cidr)
        subnets = cluster.subnets(new_prefix=24) if cluster.prefixlen <= 24 else iter([cluster])
        ip_base = ipaddress.ip_network(cfg.node_ip_range)
        plans = []
        for name in cfg.names():
            node = existing.get(name)
            cidr = (node or {}).get("spec", {}).get("podCIDR")
            internal_ip = _internal_ip(node) if node else None
            if not cidr:
                for subnet in subnets:
                    if str(subnet) not in taken_cidrs:
                        cidr = str(subnet)
                        break
                else:
                    raise ValueError(f"the cluster CIDR {cfg.cluster_cidr} has no free /24 left for {name}")
                taken_cidrs.add(cidr)
            if not internal_ip:
                index = (int(ipaddress.ip_network(cidr).network_address) - int(cluster.network_address)) >> 8
                internal_ip = str(ip_base.network_address + 1 + index)
            plans.append(NodeConfig(
                name=name, internal_ip=internal_ip, pod_cidr=cidr, cpu=cfg.cpu, memory=cfg.memory, pods=cfg.pods,
                labels={HOLLOW_LABEL: "true", **cfg.labels}, container_runtime_version=RUNTIME_VERSION,
                os_image="tuik8s hollow node", lease_duration=cfg.lease_duration,
                status_report_frequency=cfg.status_report_frequency,
                annotations={METRICS_URL_ANNOTATION: self.metrics.url_for(name)} if self.metrics else {},
            ))
        return plans

    # ---- synthetic usage ------------------------------------------------------------

    def _running_pods(self, name: str) -> list[tuple[Obj, float]]:
        """The pods whose containers run on hollow node `name`, with their start time."""
        node = self.nodes.get(name)
        if node is None or not node.running:
            return []
        now = time.time()
        out = []
        for pod in self.pod_informer.by_index("node", name):
            sb = node.sandboxes.get(_uid(pod))
            if sb is not None and sb.killed_at is None and sb.start_at <= now:
                out.append((pod, sb.start_at))
        return out

    async def _publish_metrics_urls(self) -> None:
        """Nodes registered by an earlier run name its endpoint: point them at ours."""
        metrics = self.metrics
        if metrics is None:
            return

        async def publish(name: str) -> None:
            node = self.node_informer.get(name) or {}
            url = metrics.url_for(name)
            if ((node.get("metadata") or {}).get("annotations") or {}).get(METRICS_URL_ANNOTATION) == url:
                return
            try:
                await self.client.patch("nodes", name, {"metadata": {"annotations": {METRICS_URL_ANNOTATION: url}}})
            except ClientError as e:
                log.warning("node %s: could not publish its metrics endpoint: %s", name, e)

        await asyncio.gather(*(publish(name) for name in self.nodes))  # the transport bounds them

    # ---- informer handlers: enqueue only ----------------------------------------------

    def _node_changed(self, node: Obj) -> None:
        hollow = self.nodes.get(str((node.get("metadata") or {}).get("name")))
        if hollow is not None:
            hollow.adopt_cidr(node)
            if hollow.running:
                hollow.agent.nudge()

    def _pod_changed(self, pod: Obj) -> None:
        if _node_of(pod) in self.nodes:
            self.queue.add(object_key(pod))

    def _pod_deleted(self, pod: Obj) -> None:
        key = object_key(pod)
        self._written.pop(key, None)
        node = self.nodes.get(_node_of(pod))
        if node is not None:
            node.forget(_uid(pod))

    # ---- pod sync -------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                again = await self.sync_pod(key)
            except asyncio.CancelledError:
                self.queue.done(key)
                raise
            except ClientError as e:
                level = logging.DEBUG if isinstance(e, ApiError) and (is_conflict(e) or is_not_found(e)) else logging.INFO
                log.log(level, "hollow: syncing pod %s: %s (retrying)", key, e)
                self.queue.add_rate_limited(key)
            except Exception:  # noqa: BLE001 - one bad pod must not stop the workers
                log.exception("hollow: syncing pod %s failed", key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, max(0.0, again))
            finally:
                self.queue.done(key)

    def _pod(self, key: str) -> Obj | None:
        """The freshest copy of a pod: the cache, or our last write if the watch lags."""
        cached = self.pod_informer.get(key)
        mine = self._written.get(key)
        if mine is None:
            return cached
        if cached is None or _uid(cached) != _uid(mine):
            self._written.pop(key, None)
            return cached
        if _rv(cached) >= _rv(mine):
            self._written.pop(key, None)
            return cached
        return mine

    async def sync_pod(self, key: str) -> float | None:
        """Converge one pod on its hollow node; seconds until it needs a look again."""
        pod = self._pod(key)
        if pod is None:
            return None
        node = self.nodes.get(_node_of(pod))
        if node is None or not node.running:
            return None
        now = time.time()
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            await self._finish_deletion(node, pod, now)
            return None
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            sb = node.sandboxes.get(_uid(pod))
            if sb is not None:
                node.release_ip(sb)  # the sandbox is gone; the record stays for the status
            return None
        sb = node.sandbox_for(pod, now, random.uniform(0, self.config.start_delay))
        if sb is None:
            await self._pod_event(pod, None, "Warning", "FailedCreatePodSandBox",
                                  f"Failed to create pod sandbox: no free IP address in {node.ipam.network}")
            return 10.0
        runtime, next_change = hollow_runtime_status(pod, sb, now)
        if not runtime.containers and (next_change or 0) - now < 1.0:
            return (next_change or now) - now  # starting in a moment: write once, when running
        new_status = build_pod_status(pod, runtime, host_ips=[node.node_ip()], now=rfc3339(now))
        if status_changed(status, new_status):
            await self._write_status(key, pod, new_status)
        if runtime.containers and not sb.announced:
            sb.announced = True
            for c in (pod.get("spec") or {}).get("containers") or []:
                name = c.get("name")
                await self._pod_event(pod, name, "Normal", "Pulled", f'Container image "{c.get("image")}" already present on machine')
                await self._pod_event(pod, name, "Normal", "Created", f"Created container: {name}")
                await self._pod_event(pod, name, "Normal", "Started", f"Started container {name}")
        if pod_finished(pod, runtime):
            node.release_ip(sb)
        return None if next_change is None else next_change - now

    async def _write_status(self, key: str, pod: Obj, status: Obj) -> Obj:
        body = {**pod, "status": status}
        written = await self.client.update_status("pods", body)
        self.pod_writes += 1
        self._written[key] = written
        return written

    async def _finish_deletion(self, node: HollowNode, pod: Obj, now: float) -> None:
        """Stop the containers, report them terminated, then delete the pod for good."""
        key = object_key(pod)
        uid = _uid(pod)
        sb = node.sandboxes.get(uid)
        if sb is not None and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            if sb.killed_at is None:
                sb.killed_at = now
                for c in (pod.get("spec") or {}).get("containers") or []:
                    await self._pod_event(pod, c.get("name"), "Normal", "Killing", f"Stopping container {c.get('name')}")
            runtime, _ = hollow_runtime_status(pod, sb, max(now, sb.killed_at))
            status = build_pod_status(pod, runtime, host_ips=[node.node_ip()], now=rfc3339(now), pod_is_terminal=True)
            if status_changed(pod.get("status"), status):
                pod = await self._write_status(key, pod, status)
        try:
            await self.client.delete(
                "pods", str((pod.get("metadata") or {}).get("name")), (pod.get("metadata") or {}).get("namespace"),
                grace_period_seconds=0, preconditions={"uid": uid},
            )
        except ApiError as e:
            if not (is_not_found(e) or is_conflict(e)):  # gone, or a new pod with the name
                raise
        self.pod_writes += 1
        node.forget(uid)

    # ---- events: best effort, never in the way ----------------------------------------

    async def record_event(self, involved: Mapping[str, Any], type: str, reason: str, message: str, host: str = "") -> None:
        """Queue an Event; dropped (and counted) when the queue is full, as upstream's
        recorder drops when its channel is."""
        if not self.config.events:
            return
        try:
            self._events.put_nowait((dict(involved), type, reason, message, host or str(involved.get("name") or "")))
        except asyncio.QueueFull:
            self.events_dropped += 1

    async def _pod_event(self, pod: Obj, container: str | None, type: str, reason: str, message: str) -> None:
        meta = pod.get("metadata") or {}
        ref: Obj = {
            "apiVersion": "v1", "kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"),
            "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
        }
        if container:
            ref["fieldPath"] = f"spec.containers{{{container}}}"
        await self.record_event(ref, type, reason, message, _node_of(pod))

    async def _send_events(self) -> None:
        while True:
            involved, type, reason, message, host = await self._events.get()
            await self.client.record_event(involved, reason, message, type, "kubelet", host=host)


def _internal_ip(node: Mapping[str, Any]) -> str | None:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP" and addr.get("address"):
            return str(addr["address"])
    return None


# --- the command -----------------------------------------------------------------------------


def quiet_gc() -> None:
    """Keep Python's cyclic garbage collector from eating a quarter of the process.

    At 10,000 pods the informer caches hold a million container objects, and every pod
    update brings a fresh tree of them that lives on: with CPython's thresholds a full
    pass walked them all 20-40 times in a one-minute run (0.2-0.4 s each, 7 s of about 25
    s of CPU, measured by bench/scale.py). They are acyclic JSON, freed by reference
    counting; the collector finds nothing in them. So what exists once the nodes run is
    frozen out of its sight, and the young generation is collected every 50,000 net
    allocations instead of 700, which makes full passes rare (about one per 100 million)
    without letting real cycles (a failed request's traceback) pile up for long.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)



def client_for(kubeconfig: str | None, context: str | None, config: HollowConfig | None = None) -> ApiClient:
    """One client for a whole HollowCluster: one connection pool, heartbeats first."""
    from tuik8s.client.kubeconfig import access_for
    from tuik8s.client.transport import HttpTransport

    access = access_for(context, kubeconfig)  # as kubectl --kubeconfig: only that file
    config = config or HollowConfig()
    transport = ThrottledTransport(
        HttpTransport(access, timeout=30.0), max_in_flight=config.max_in_flight, write_qps=config.write_qps
    )
    return ApiClient(transport, default_namespace=access.namespace)


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad flags with one line before anything starts."""
    from pathlib import Path

    from tuik8s.api.quantity import cpu_millis

    if args.nodes < 1:
        raise ValueError("--nodes must be at least 1")
    if args.lease_duration < 1:
        raise ValueError("--lease-duration must be at least 1 second")
    if args.pods < 1:
        raise ValueError("--pods must be at least 1")
    for flag, value, parse in (("--pod-cpu-usage", args.pod_cpu_usage, cpu_millis),
                               ("--pod-memory-usage", args.pod_memory_usage, to_bytes)):
        try:
            if parse(value) < 0:
                raise ValueError("must not be negative")
        except (ValueError, TypeError) as e:
            raise ValueError(f"{flag} {value}: {e}") from None
    for flag, value, parse in (("--cpu", args.cpu, cpu_millis), ("--memory", args.memory, to_bytes)):
        try:
            if parse(value) <= 0:
                raise ValueError("must be more than 0")
        except (ValueError, TypeError) as e:
            raise ValueError(f"{flag} {value}: {e}") from None
    try:
        if ipaddress.ip_network(args.cluster_cidr).prefixlen > 24:
            raise ValueError("needs room for at least one /24")
    except ValueError as e:
        raise ValueError(f"--cluster-cidr {args.cluster_cidr}: {e}") from None
    if args.kubeconfig and not Path(args.kubeconfig).is_file():
        raise ValueError(f"--kubeconfig {args.kubeconfig}: no such file")


async def run_hollow(args: argparse.Namespace, *, ready: Any = None) -> int:
    """`tuik8s hollow`: run until SIGTERM or SIGINT."""
    config = HollowConfig(
        nodes=args.nodes, name_prefix=args.name_prefix, cpu=args.cpu, memory=args.memory, pods=args.pods,
        lease_duration=args.lease_duration, start_delay=args.start_delay, events=not args.no_events,
        max_in_flight=args.max_in_flight, write_qps=args.qps, status_report_frequency=args.status_report_frequency,
        cluster_cidr=args.cluster_cidr,
        metrics=not args.no_metrics, metrics_address=args.metrics_address,
        pod_cpu_usage=args.pod_cpu_usage, pod_memory_usage=args.pod_memory_usage,
    )
    client = client_for(args.kubeconfig, args.context, config)
    cluster = HollowCluster(client, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    try:
        start = asyncio.create_task(cluster.start())
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            start.result()
            names = list(cluster.nodes)
            shown = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
            what = "1 node" if len(names) == 1 else f"{len(names)} nodes"
            print(f"tuik8s hollow: {what} registered ({shown}) in {time.monotonic() - started:.1f}s", flush=True)
            quiet_gc()
            if ready is not None:
                ready(cluster)
            await waiter
        else:
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await start
    finally:
        await cluster.stop(delete_nodes=args.delete_on_exit)
        await client.close()
    return 0


def add_hollow_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `hollow` to the `tuik8s` command's subparsers."""
    p = subparsers.add_parser(
        "hollow", help="run simulated nodes (kubemark-style hollow kubelets) against a cluster",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=(
            f"Pod annotations (restartPolicy Never/OnFailure only): {EXIT_CODE_ANNOTATION}: \"N\" makes every "
            f"container exit with code N after {RUN_SECONDS_ANNOTATION}: \"S\" seconds (default 1)."
        ),
    )
    p.add_argument("--nodes", type=int, default=3, help="how many nodes (default: %(default)s)")
    p.add_argument("--name-prefix", default="hollow-", help="node names are PREFIX0, PREFIX1, ... (default: %(default)s)")
    p.add_argument("--cpu", default="4", help="each node's CPU capacity (default: %(default)s)")
    p.add_argument("--memory", default="16Gi", help="each node's memory capacity (default: %(default)s)")
    p.add_argument("--pods", type=int, default=110, help="each node's pod capacity (default: %(default)s)")
    p.add_argument("--kubeconfig", help="the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="the kubeconfig context (default: the current one)")
    p.add_argument("--lease-duration", type=int, default=LAB_LEASE_DURATION, metavar="SECONDS",
                   help="Lease duration; renewed every quarter of it (default: %(default)s; upstream 40)")
    p.add_argument("--status-report-frequency", type=float, default=300.0, metavar="SECONDS",
                   help="how often an unchanged Node status is posted (default: %(default)s, as upstream)")
    p.add_argument("--start-delay", type=float, default=0.5, metavar="SECONDS",
                   help="containers start after a random delay up to this (default: %(default)s)")
    p.add_argument("--cluster-cidr", default=CLUSTER_CIDR, help="pod CIDRs (/24 per node) come from here (default: %(default)s)")
    p.add_argument("--max-in-flight", type=int, default=HollowConfig.max_in_flight,
                   help="requests open at once (default: %(default)s)")
    p.add_argument("--qps", type=float, default=0.0, help="pod writes per second, 0 for no limit (default: %(default)s)")
    p.add_argument("--no-events", action="store_true", help="record no Events (for large runs)")
    p.add_argument("--delete-on-exit", action="store_true", help="delete the Nodes when stopped")
    p.add_argument("--pod-cpu-usage", default=HollowConfig.pod_cpu_usage, metavar="CPU",
                   help="CPU each container uses, for metrics (default: %(default)s; a pod's "
                        "tuik8s.io/hollow-cpu annotation overrides it)")
    p.add_argument("--pod-memory-usage", default=HollowConfig.pod_memory_usage, metavar="MEMORY",
                   help="memory each container uses (default: %(default)s; tuik8s.io/hollow-memory overrides it)")
    p.add_argument("--metrics-address", default=HollowConfig.metrics_address,
                   help="where the nodes' resource metrics are served for the API server (default: %(default)s)")
    p.add_argument("--no-metrics", action="store_true", help="serve no resource metrics")
    p.set_defaults(func=cmd_hollow)
    return p


def cmd_hollow(args: argparse.Namespace) -> int:
    try:
        _check_args(args)
    except ValueError as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
        return 1
    from tuik8s.client.kubeconfig import KubeconfigError

    try:
        return asyncio.run(run_hollow(args))
    except KubeconfigError as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
    except ClientError as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
    except ValueError as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        return 0
    return 1


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuik8s")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True)
    add_hollow_parser(sub)
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main(["hollow", *sys.argv[1:]]))
