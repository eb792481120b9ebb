"""A kubelet's Node: registration, the Lease heartbeat, and node status.

Shared by the real kubelet and the hollow one; only where the facts come from differs
(`NodeConfig`). What it does mirrors upstream's kubelet:

- **Register**: create the Node with labels, capacity, addresses, nodeInfo and
  conditions. If it exists already (a kubelet restarted), adopt it: the kubelet's
  default labels are put back, spec (podCIDR, taints, unschedulable) is left to whoever
  owns it.
- **Heartbeat**: renew the Lease `kube-node-lease/<node>` every `lease_duration / 4`
  with a little jitter (upstream: 40 s lease, renewed every 10 s). The renewal is a PUT
  of the cached Lease, so a Lease someone else changed is a 409, re-read, retried.
- **Status**: the conditions MemoryPressure, DiskPressure, PIDPressure and Ready are
  posted (strategic merge patch on `nodes/NAME/status`) when the Node in the API differs
  from what the kubelet would report (the node lifecycle controller set them Unknown,
  capacity changed), and otherwise every `status_report_frequency` (upstream 5 min): the
  Lease carries liveness, the status only facts.

The agent reads the Node through `node_cache` (an informer's `get`), so a check costs no
request; without one it GETs the Node every `status_update_frequency` (upstream's kubelet
does the same), since only the API's copy shows that the controller marked it Unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import platform
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError, ClientError, is_already_exists, is_conflict, is_not_found
from tuik8s.kubelet.status import micro_time, parse_time, rfc3339

log = logging.getLogger(__name__)

Obj = dict[str, Any]
EventRecorder = Callable[[Mapping[str, Any], str, str, str], Awaitable[Any]]
"""`(involved object, type, reason, message)`: records an Event, never raises."""

KUBELET_VERSION = "v1.32.0-tuik8s"
NODE_LEASE_NAMESPACE = "kube-node-lease"
UPSTREAM_LEASE_DURATION = 40
LAB_LEASE_DURATION = 20
LEASE_RENEW_JITTER = 0.04  # upstream JitterUntil factor
STATUS_UPDATE_FREQUENCY = 10.0  # how often the kubelet computes its status (upstream 10 s)
STATUS_REPORT_FREQUENCY = 300.0  # how often it posts an unchanged one (upstream 5 min)
MAX_RETRY_DELAY = 7.0  # upstream lease controller's maxBackoff

# The conditions a kubelet reports, in upstream's order, with its reasons and messages.
_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", "NodeHasSufficientMemory"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", "NodeHasNoDiskPressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", "NodeHasSufficientPID"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status", "NodeReady"),
)
# Labels a kubelet owns: put back on an adopted Node (upstream updateDefaultLabels).
_DEFAULT_LABELS = (
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
)


@dataclass
class NodeConfig:
    """What a kubelet knows about its machine and how it reports it."""

    name: str
    internal_ip: str
    pod_cidr: str | None = None
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    register_taints: list[Obj] = field(default_factory=list)
    os_image: str = "Debian GNU/Linux 12 (bookworm)"
    kernel_version: str = field(default_factory=platform.release)
    container_runtime_version: str = "docker://20.10.24"
    architecture: str = "amd64"
    operating_system: str = "linux"
    kubelet_version: str = KUBELET_VERSION
    kubelet_port: int = 10250
    lease_duration: int = UPSTREAM_LEASE_DURATION
    status_update_frequency: float = STATUS_UPDATE_FREQUENCY
    status_report_frequency: float = STATUS_REPORT_FREQUENCY

    @property
    def renew_interval(self) -> float:
        """Upstream renews at a quarter of the lease duration."""
        return self.lease_duration / 4


# --- the objects -------------------------------------------------------------------------


def node_labels(cfg: NodeConfig) -> dict[str, str]:
    """The labels a kubelet puts on its Node, then the configured ones."""
    return {
        "beta.kubernetes.io/arch": cfg.architecture,
        "beta.kubernetes.io/os": cfg.operating_system,
        "kubernetes.io/arch": cfg.architecture,
        "kubernetes.io/hostname": cfg.name,
        "kubernetes.io/os": cfg.operating_system,
        **cfg.labels,
    }


def _stable_id(name: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()[:32]


def node_conditions(now: str, previous: list[Mapping[str, Any]] | None = None) -> list[Obj]:
    """The four conditions of a healthy kubelet; transition times kept where unchanged."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for ctype, status, reason, message, _ in _CONDITIONS:
        old = before.get(ctype)
        same = old is not None and old.get("status") == status and old.get("lastTransitionTime")
        out.append({
            "type": ctype,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": old.get("lastTransitionTime") if same and old is not None else now,
            "reason": reason,
            "message": message,
        })
    return out


def node_status(cfg: NodeConfig, now: str, previous_conditions: list[Mapping[str, Any]] | None = None) -> Obj:
    """Everything under `status` a kubelet reports."""
    capacity = {
        "cpu": cfg.cpu,
        "ephemeral-storage": cfg.ephemeral_storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": cfg.memory,
        "pods": str(cfg.pods),
    }
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": node_conditions(now, previous_conditions),
        "addresses": [
            {"type": "InternalIP", "address": cfg.internal_ip},
            {"type": "Hostname", "address": cfg.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.kubelet_port}},
        "nodeInfo": {
            "machineID": _stable_id(cfg.name, "machine"),
            "systemUUID": str(uuid.UUID(_stable_id(cfg.name, "system"))),
            "bootID": str(uuid.uuid4()),
            "kernelVersion": cfg.kernel_version,
            "osImage": cfg.os_image,
            "containerRuntimeVersion": cfg.container_runtime_version,
            "kubeletVersion": cfg.kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": cfg.operating_system,
            "architecture": cfg.architecture,
        },
    }


def node_object(cfg: NodeConfig, now: str | None = None) -> Obj:
    """The Node a kubelet registers."""
    now = now or rfc3339()
    spec: Obj = {}
    if cfg.pod_cidr:
        spec["podCIDR"] = cfg.pod_cidr
        spec["podCIDRs"] = [cfg.pod_cidr]
    if cfg.register_taints:
        spec["taints"] = [dict(t) for t in cfg.register_taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.name,
            "labels": node_labels(cfg),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true", **cfg.annotations},
        },
        "spec": spec,
        "status": node_status(cfg, now),
    }


def lease_object(cfg: NodeConfig, node: Mapping[str, Any] | None, now: str | None = None) -> Obj:
    """The node's Lease, owned by its Node so deleting the Node removes it."""
    meta: Obj = {"name": cfg.name, "namespace": NODE_LEASE_NAMESPACE}
    node_uid = ((node or {}).get("metadata") or {}).get("uid")
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": cfg.name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": cfg.name,
            "leaseDurationSeconds": cfg.lease_duration,
            "renewTime": now or micro_time(),
        },
    }


def node_ref(name: str) -> Obj:
    """The ObjectReference kubelets use for Node events: the UID is the node's name,
    which is what `kubectl describe node` searches for."""
    return {"apiVersion": "v1", "kind": "Node", "name": name, "uid": name}


def status_needs_post(cfg: NodeConfig, node: Mapping[str, Any] | None, last_post: float, now: float) -> bool:
    """Whether the kubelet must post its status now (upstream nodeStatusHasChanged, or
    the report frequency has passed)."""
    if node is None:
        return True
    if now - last_post >= cfg.status_report_frequency:
        return True
    status = node.get("status") or {}
    current = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if any(current.get(ctype) != want for ctype, want, *_ in _CONDITIONS):
        return True
    capacity = status.get("capacity") or {}
    return capacity.get("cpu") != cfg.cpu or capacity.get("memory") != cfg.memory or capacity.get("pods") != str(cfg.pods)


def transitions(old: list[Mapping[str, Any]] | None, new: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(event reason, message suffix) for each condition whose status flipped to healthy."""
    before = {c.get("type"): c.get("status") for c in old or []}
    out = []
    for ctype, status, _, _, event_reason in _CONDITIONS:
        now_status = next((c.get("status") for c in new if c.get("type") == ctype), None)
        if now_status == status and before.get(ctype) != status:
            out.append((event_reason, "Normal"))
    return out


# --- the agent ---------------------------------------------------------------------------


class NodeAgent:
    """Registers one Node, then keeps its Lease and status current until cancelled.

    Cancel the task running `run()` to stop it: a stopped kubelet just goes quiet, and
    the node lifecycle controller marks the Node NotReady after its grace period.
    """

    def __init__(
        self,
        client: ApiClient,
        cfg: NodeConfig,
        *,
        node_cache: Callable[[], Obj | None] | None = None,
        record_event: EventRecorder | None = None,
        first_renew_delay: float | None = None,
    ) -> None:
        self.client = client
        self.cfg = cfg
        self._node_cache = node_cache
        self._record = record_event
        self._first_renew_delay = first_renew_delay
        self._lease: Obj | None = None
        self._node: Obj | None = None
        self._last_post = 0.0
        self._created = False  # this agent created the Node (rather than adopting it)
        self._wake = asyncio.Event()
        self.registered = asyncio.Event()  # the Node exists and shows our status
        self.leased = asyncio.Event()  # ... and its Lease has been renewed once
        self.last_renew: float | None = None

    # ---- reads --------------------------------------------------------------------

    def node(self) -> Obj | None:
        """The Node as last seen: the informer's copy if there is one, else our own."""
        if self._node_cache is not None:
            cached = self._node_cache()
            if cached is not None:
                mine = self._node
                if mine is None or _rv(cached) >= _rv(mine):
                    return cached
        return self._node

    def nudge(self) -> None:
        """The Node changed in the API: check the status now rather than at the next tick."""
        self._wake.set()

    # ---- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        await self._retry(self.register, "register")
        lease = asyncio.create_task(self._lease_loop(), name=f"lease {self.cfg.name}")
        try:
            await self._status_loop()
        finally:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease

    async def _retry(self, fn: Callable[[], Awaitable[Any]], what: str) -> None:
        delay = 0.2
        while True:
            try:
                await fn()
                return
            except ClientError as e:
                log.warning("node %s: %s failed: %s", self.cfg.name, what, e)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _lease_loop(self) -> None:
        interval = self.cfg.renew_interval
        first = self._first_renew_delay if self._first_renew_delay is not None else 0.0
        await asyncio.sleep(first)
        delay = 0.2
        while True:
            started = time.monotonic()
            try:
                await self.renew_lease()
                delay = 0.2
                wait = interval * (1 + random.uniform(0, LEASE_RENEW_JITTER))
            except ClientError as e:
                log.info("node %s: renewing its lease failed: %s", self.cfg.name, e)
                wait, delay = min(delay, interval), min(delay * 2, MAX_RETRY_DELAY)
            await asyncio.sleep(max(0.0, wait - (time.monotonic() - started)))

    async def _status_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.status_update_frequency):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync_status()
            except ClientError as e:
                log.info("node %s: posting its status failed: %s", self.cfg.name, e)

    # ---- the writes ---------------------------------------------------------------

    async def register(self) -> Obj:
        """Create the Node, or adopt the one that exists; then post its status.

        A Node already in the cache is adopted without trying to create it: after a
        restart of many kubelets at once that saves a request per node.
        """
        cfg = self.cfg
        cached = self._node_cache() if self._node_cache is not None else None
        node: Obj | None = None
        if cached is None:
            try:
                node = await self.client.create("nodes", node_object(cfg))
            except ApiError as e:
                if not is_already_exists(e):
                    raise
        if node is not None:
            self._node = node
            self._created = True
            self._last_post = time.monotonic()
            await self._event("Normal", "Starting", "Starting kubelet.")
            for reason, kind in transitions(None, node["status"]["conditions"]):
                await self._event(kind, reason, f"Node {cfg.name} status is now: {reason}")
        else:
            node = await self._adopt(cached)
            await self._event("Normal", "Starting", "Starting kubelet.")
            if not await self.sync_status(force=True):
                # the cached Node was deleted meanwhile: register a new one
                node = self._node = await self.client.create("nodes", node_object(cfg))
                self._created = True
        self.registered.set()
        return node

    async def _adopt(self, node: Obj | None) -> Obj:
        """The Node exists (a restart): put back the kubelet's default labels."""
        cfg = self.cfg
        if node is None:
            node = await self.client.get("nodes", cfg.name)
        labels = (node.get("metadata") or {}).get("labels") or {}
        want = node_labels(cfg)
        missing = {k: v for k, v in want.items() if k in _DEFAULT_LABELS and labels.get(k) != v}
        if missing:
            node = await self.client.patch("nodes", cfg.name, {"metadata": {"labels": missing}})
        self._node = node
        return node

    async def sync_status(self, force: bool = False) -> bool:
        """Post the status if it changed or is due; True if it was posted."""
        cfg = self.cfg
        now = time.monotonic()
        node = self.node() if self._node_cache is not None else None
        if node is None:
            # without a cache, read the Node each time as upstream's kubelet does: only
            # the API's copy shows what the node lifecycle controller did to it
            try:
                node = self._node = await self.client.get("nodes", cfg.name)
            except ApiError as e:
                if not is_not_found(e):
                    raise
                if force or now - self._last_post >= cfg.status_report_frequency:
                    log.warning("node %s: the Node was deleted; not posting its status", cfg.name)
                    self._last_post = now
                return False
        if not force and not status_needs_post(cfg, node, self._last_post, now):
            return False
        old_conditions = (node.get("status") or {}).get("conditions") or []
        status = node_status(cfg, rfc3339(), old_conditions)
        # bootID is per boot of the machine: keep the one already reported
        old_info = (node.get("status") or {}).get("nodeInfo") or {}
        if old_info.get("bootID"):
            status["nodeInfo"]["bootID"] = old_info["bootID"]
        try:
            posted = await self.client.patch(
                "nodes", cfg.name, {"status": status}, patch_type="strategic", subresource="status"
            )
        except ApiError as e:
            if is_not_found(e):
                # as upstream: a deleted Node is not re-registered until the kubelet restarts
                log.warning("node %s: the Node was deleted; not posting its status", cfg.name)
                self._last_post = now
                return False
            raise
        self._node = posted
        self._last_post = now
        for reason, kind in transitions(old_conditions, posted["status"]["conditions"]):
            await self._event(kind, reason, f"Node {cfg.name} status is now: {reason}")
        return True

    async def renew_lease(self) -> Obj:
        """One heartbeat: PUT the Lease with a fresh renewTime (create it if missing)."""
        cfg = self.cfg
        now = time.time()
        lease = self._lease
        if lease is None:
            lease = await self._ensure_lease()
        for _ in range(2):
            body = {**lease, "spec": {**lease.get("spec", {}), "renewTime": micro_time(now),
                                      "holderIdentity": cfg.name, "leaseDurationSeconds": cfg.lease_duration}}
            try:
                lease = await self.client.update("leases", body)
                break
            except ApiError as e:
                if is_conflict(e):
                    lease = await self.client.get("leases", cfg.name, NODE_LEASE_NAMESPACE)
                    continue
                if is_not_found(e):
                    self._lease = None
                    lease = await self._ensure_lease()
                    continue
                raise
        self._lease = lease
        self.last_renew = now
        self.leased.set()
        return lease

    async def _ensure_lease(self) -> Obj:
        """The Lease as it is, created if missing (a Node we just created has none yet)."""
        cfg = self.cfg
        if not self._created:
            try:
                return await self.client.get("leases", cfg.name, NODE_LEASE_NAMESPACE)
            except ApiError as e:
                if not is_not_found(e):
                    raise
        try:
            return await self.client.create("leases", lease_object(cfg, self.node()), NODE_LEASE_NAMESPACE)
        except ApiError as e:
            if not is_already_exists(e):
                raise
            return await self.client.get("leases", cfg.name, NODE_LEASE_NAMESPACE)

    async def _event(self, type: str, reason: str, message: str) -> None:
        if self._record is not None:
            await self._record(node_ref(self.cfg.name), type, reason, message)
        else:
            await self.client.record_event(node_ref(self.cfg.name), reason, message, type, "kubelet", host=self.cfg.name)


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def lease_age(lease: Mapping[str, Any] | None, now: float | None = None) -> float | None:
    """Seconds since the Lease was renewed, or None without a renewTime."""
    renewed = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
    if renewed is None:
        return None
    return (now if now is not None else time.time()) - renewed


__all__ = [
    "KUBELET_VERSION",
    "LAB_LEASE_DURATION",
    "NODE_LEASE_NAMESPACE",
    "NodeAgent",
    "NodeConfig",
    "lease_age",
    "lease_object",
    "node_conditions",
    "node_labels",
    "node_object",
    "node_ref",
    "node_status",
    "status_needs_post",
]
