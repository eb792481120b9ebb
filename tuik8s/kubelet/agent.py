"""The kubelet: one node's agent, between the API server and the node's container runtime.

`Kubelet.run()` does what upstream's kubelet does, in its order:

1. asks the runtime for its version (retrying until the engine answers), then registers
   the Node and keeps its Lease and status current (tuik8s.kubelet.node), watching its
   own Node so a status the node lifecycle controller changed is corrected at once;
2. watches only its own pods (`fieldSelector=spec.nodeName=<node>`) and the Services
   (for the `{SVC}_SERVICE_HOST` variables), and serves container logs (logserver);
3. runs one `PodWorker` per pod uid, which converges that pod alone;
4. relists the runtime every `relist_period` (upstream's generic PLEG): a container that
   started, died or vanished wakes its pod's worker, so a `docker kill` is noticed within
   a second; containers of a uid without a worker get one, which finds no such pod in
   the API and removes them. That is also how a restarted kubelet adopts what runs:
   its workers list the runtime by label, find the sandbox and containers running and
   leave them be (no duplicate sandbox, no restart), and anything whose pod is gone or
   no longer bound here is stopped and removed.

The kubelet's view of a pod is the freshest of the informer's copy and its own last
status write (the watch may lag the write), and never one with another uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError, ClientError, is_not_found
from tuik8s.client.informer import Informer, object_key
from tuik8s.kubelet.logserver import LogLookupError, LogServer
from tuik8s.kubelet.node import LAB_LEASE_DURATION, NodeAgent, NodeConfig
from tuik8s.kubelet.pod_worker import (
    CRASH_LOOP_BASE,
    CRASH_LOOP_MAX,
    IMAGE_PULL_BASE,
    IMAGE_PULL_MAX,
    RESYNC,
    Backoff,
    PodView,
    PodWorker,
    WorkerConfig,
    WorkerContext,
)
from tuik8s.kubelet.runtime import ContainerInfo, ContainerRuntime, ContainerRuntimeError
from tuik8s.kubelet.streaming import StreamingServer, docker_host_of
from tuik8s.kubelet.volumes import VolumeManager

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_ROOT_DIR = "/var/lib/tuik8s/kubelet"
RELIST_PERIOD = 1.0
EVENT_QUEUE = 1000


@dataclass
class KubeletConfig:
    """Everything `tuik8s kubelet` is told on its command line."""

    node_name: str
    node_ip: str
    root_dir: Path = Path(DEFAULT_ROOT_DIR)
    pod_cidr: str | None = None
    cpu: str = "1"
    memory: str = "1Gi"
    max_pods: int = 110
    node_labels: dict[str, str] = field(default_factory=dict)
    register_taints: list[Obj] = field(default_factory=list)
    cluster_dns: Sequence[str] = ()
    cluster_domain: str = "cluster.local"
    node_dns: Sequence[str] = ("127.0.0.1",)
    crash_loop_base: float = CRASH_LOOP_BASE
    crash_loop_max: float = CRASH_LOOP_MAX
    image_pull_base: float = IMAGE_PULL_BASE
    image_pull_max: float = IMAGE_PULL_MAX
    resync: float = RESYNC
    relist_period: float = RELIST_PERIOD
    lease_duration: int = LAB_LEASE_DURATION
    log_port: int = 10250
    log_address: str = "0.0.0.0"
    log_token_file: Path | None = None
    log_tls: bool = True
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


def cluster_id(server: str, ca_data: bytes | None = None) -> str:
    """A short, stable name for the cluster a kubelet serves (its containers carry it)."""
    return hashlib.sha256(server.rstrip("/").encode() + b"\0" + (ca_data or b"")).hexdigest()[:12]


def detect_node_ip(server: str) -> str:
    """The address this machine uses toward the API server; when that is loopback (a
    kubelet next to its API server), the one of its default route; else loopback.

    A UDP `connect` sends nothing: it only asks the kernel which route it would take.
    """
    host = urlsplit(server).hostname or "127.0.0.1"
    for target in (host, "192.0.2.1"):  # TEST-NET-1: any address the default route covers
        with contextlib.suppress(OSError):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((target, 443))
                ip = s.getsockname()[0]
                if not ipaddress.ip_address(ip).is_loopback:
                    return str(ip)
    return "127.0.0.1"


def machine_capacity() -> tuple[str, str]:
    """(cpu, memory) of this machine, as Node capacity quantities."""
    cpu = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    memory = "1Gi"
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1])}Ki"
                break
    return cpu, memory


def _rv(obj: Mapping[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _uid(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


class Kubelet:
    """The agent of one node; see the module docstring. Cancel `run()` to stop it."""

    def __init__(self, client: ApiClient, runtime: ContainerRuntime, config: KubeletConfig) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.pods = Informer(client, "pods", field_selector=f"spec.nodeName={config.node_name}")
        self.services = Informer(client, "services")
        self.node = Informer(client, "nodes", field_selector=f"metadata.name={config.node_name}")
        self.workers: dict[str, PodWorker] = {}
        self.volumes = VolumeManager(
            config.root_dir, self._get_object, allocatable={"cpu": config.cpu, "memory": config.memory}
        )
        self.node_agent: NodeAgent | None = None
        self.log_server: LogServer | None = None
        self.ready = asyncio.Event()
        self._written: dict[str, Obj] = {}
        self._seen: dict[str, frozenset[tuple[str, str, int | None]]] = {}
        self._events: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(EVENT_QUEUE)
        self._session: aiohttp.ClientSession | None = None
        self._ctx: WorkerContext | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    # ---- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.config
        version = await self._runtime_version()
        self.node_agent = NodeAgent(self.client, NodeConfig(
            name=cfg.node_name,
            internal_ip=cfg.node_ip,
            pod_cidr=cfg.pod_cidr,
            cpu=cfg.cpu,
            memory=cfg.memory,
            pods=cfg.max_pods,
            labels=dict(cfg.node_labels),
            register_taints=list(cfg.register_taints),
            container_runtime_version=version,
            kubelet_port=cfg.log_port,
            lease_duration=cfg.lease_duration,
        ), node_cache=lambda: self.node.get(cfg.node_name))
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        self._ctx = WorkerContext(
            client=self.client,
            runtime=self.runtime,
            volumes=self.volumes,
            config=WorkerConfig(
                node_name=cfg.node_name,
                node_ip=cfg.node_ip,
                cluster_dns=cfg.cluster_dns,
                cluster_domain=cfg.cluster_domain,
                node_dns=cfg.node_dns,
                allocatable={"cpu": cfg.cpu, "memory": cfg.memory},
                resync=cfg.resync,
            ),
            session=self._session,
            crash_backoff=Backoff(cfg.crash_loop_base, cfg.crash_loop_max),
            pull_backoff=Backoff(cfg.image_pull_base, cfg.image_pull_max),
            event=self.pod_event,
            current_pod=self.current_pod,
            pod_written=self._pod_written,
            get_object=self._get_object,
            services=self.services.list,
        )
        try:
            self.pods.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new, old), self._pod_deleted)
            self.node.add_handler(on_update=lambda _old, _new: self._nudge_node(), on_delete=lambda _n: self._nudge_node())
            self.node.start()
            self.pods.start()
            self.services.start()
            await self.node.wait_synced()  # so registering finds an existing Node in the cache
            self._tasks.append(asyncio.create_task(self.node_agent.run(), name="node agent"))
            self._tasks.append(asyncio.create_task(self._send_events(), name="kubelet events"))
            if cfg.log_port:
                streams = StreamingServer(
                    self.pods.get, token_file=cfg.log_token_file, docker_host=docker_host_of(self.runtime)
                )
                self.log_server = LogServer(
                    self.find_log_container, self.runtime, host=cfg.log_address, port=cfg.log_port,
                    token_file=cfg.log_token_file, tls=cfg.log_tls, cert_dir=cfg.root_dir / "pki",
                    cert_file=cfg.tls_cert_file, key_file=cfg.tls_key_file,
                    node_name=cfg.node_name, node_ip=cfg.node_ip, routes=streams.add_routes,
                )
                await self.log_server.start()
            await self.pods.wait_synced()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self.services.wait_synced()
            await self.node_agent.registered.wait()
            await self._relist(first=True)
            self.ready.set()
            log.info("kubelet %s ready (%s, %d pods)", cfg.node_name, version, len(self.pods))
            trouble = ""
            while True:
                await asyncio.sleep(cfg.relist_period)
                try:
                    await self._relist()
                except ContainerRuntimeError as e:
                    if str(e) != trouble:  # once per kind of trouble, not every second
                        log.warning("kubelet %s: relisting the runtime failed: %s", cfg.node_name, e)
                    trouble = str(e)
                else:
                    if trouble:
                        log.warning("kubelet %s: the runtime answers again", cfg.node_name)
                    trouble = ""
        finally:
            await self.shutdown()

    async def _runtime_version(self) -> str:
        delay = 0.5
        while True:
            try:
                return await self.runtime.version()
            except ContainerRuntimeError as e:
                log.warning("kubelet %s: %s (retrying)", self.config.node_name, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def shutdown(self) -> None:
        """Stop watching and working; leave every pod and container as it is."""
        workers = list(self.workers.values())
        self.workers.clear()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.pods.stop()
        await self.services.stop()
        await self.node.stop()
        if self.log_server is not None:
            await self.log_server.stop()
        if self._session is not None:
            await self._session.close()

    def _nudge_node(self) -> None:
        """The Node changed (the controller marked it Unknown?): check our status now."""
        if self.node_agent is not None:
            self.node_agent.nudge()

    # ---- pods ---------------------------------------------------------------------

    def current_pod(self, key: str, uid: str) -> Obj | None:
        """The freshest copy of the pod `key` if it still has `uid`: the informer's, or
        our own last status write while the watch has not caught up with it."""
        cached = self.pods.get(key)
        if cached is None or _uid(cached) != uid:
            return None  # deleted, or replaced by a pod of the same name
        mine = self._written.get(key)
        if mine is None or _uid(mine) != uid:
            return cached
        if _rv(mine) > _rv(cached):
            return mine
        del self._written[key]
        return cached

    def _pod_written(self, key: str, pod: Obj) -> None:
        self._written[key] = pod

    def _pod_changed(self, pod: Obj, old: Obj | None = None) -> None:
        uid = _uid(pod)
        if not uid:
            return
        worker = self.workers.get(uid)
        if worker is None or worker.finished:
            self._start_worker(object_key(pod), uid, pod)
        elif old is None or not worker.is_echo(old, pod):
            worker.wake()

    def _pod_deleted(self, pod: Obj) -> None:
        key = object_key(pod)
        self._written.pop(key, None)
        worker = self.workers.get(_uid(pod))
        if worker is not None:
            worker.wake()

    def _start_worker(self, key: str, uid: str, pod: Obj | None) -> PodWorker:
        assert self._ctx is not None
        worker = PodWorker(self._ctx, key, uid, pod)
        self.workers[uid] = worker
        worker.start()
        return worker

    # ---- the runtime relist (PLEG) ------------------------------------------------

    async def _relist(self, *, first: bool = False) -> None:
        infos = await self.runtime.list_containers()
        by_uid: dict[str, list[ContainerInfo]] = defaultdict(list)
        for info in infos:
            by_uid[info.pod_uid].append(info)
        for uid, items in by_uid.items():
            signature = frozenset((i.id, i.state, i.exit_code) for i in items)
            changed = self._seen.get(uid) != signature
            self._seen[uid] = signature
            worker = self.workers.get(uid)
            if worker is None or (worker.finished and worker.task is not None and worker.task.done()):
                sample = items[0]
                self._start_worker(f"{sample.pod_namespace}/{sample.pod_name}", uid, None)
            elif changed:
                worker.wake()
        for uid in [u for u in self._seen if u not in by_uid]:
            del self._seen[uid]
            worker = self.workers.get(uid)
            if worker is not None:
                worker.wake()
        for uid, worker in list(self.workers.items()):
            if worker.finished and worker.task is not None and worker.task.done() and uid not in by_uid:
                del self.workers[uid]
        if first:
            for uid in self.volumes.pods_on_disk():
                if uid not in self.workers and uid not in by_uid:
                    await self.volumes.teardown(uid)

    # ---- what workers and the log server need -------------------------------------

    async def _get_object(self, resource: str, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(resource, name, namespace)
        except ApiError as e:
            if is_not_found(e):
                return None
            raise

    async def find_log_container(self, namespace: str, pod_name: str, container: str, previous: bool) -> str:
        """The runtime id of the container whose log `kubectl logs` asks for.

        As upstream: the container the pod's status names (running or terminated; the
        last terminated one while it waits to restart), or with `previous` the one in
        `lastState`; the runtime's newest instance when the status lags.
        """
        pod = self.pods.get(f"{namespace}/{pod_name}")
        if pod is None:
            raise LogLookupError(404, f'pod "{pod_name}" in namespace "{namespace}" is not on node {self.config.node_name}')
        spec = pod.get("spec") or {}
        names = [str(c.get("name")) for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]]
        if container not in names:
            raise LogLookupError(400, f"container {container} is not valid for pod {pod_name}")
        status = pod.get("status") or {}
        reported = {
            str(s.get("name")): s
            for s in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
        }
        s = reported.get(container) or {}
        state, last = s.get("state") or {}, (s.get("lastState") or {}).get("terminated") or {}
        if previous:
            cid = last.get("containerID")
            if not cid:
                raise LogLookupError(400, f'previous terminated container "{container}" in pod "{pod_name}" not found')
            return str(cid).split("://", 1)[-1]
        for kind in ("running", "terminated"):
            if kind in state:
                cid = (state.get(kind) or {}).get("containerID") or s.get("containerID")
                if cid:
                    return str(cid).split("://", 1)[-1]
        if last.get("containerID"):
            return str(last["containerID"]).split("://", 1)[-1]
        view = PodView.of(await self.runtime.list_containers(_uid(pod)))
        latest = view.latest(container)
        if latest is not None:
            return latest.id
        reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
        raise LogLookupError(400, f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}')

    # ---- events -------------------------------------------------------------------

    def pod_event(self, pod: Mapping[str, Any], container: str | None, type: str, reason: str, message: str) -> None:
        """Queue an Event about a pod (or one of its containers); dropped when the queue
        is full, as upstream's recorder drops."""
        meta = pod.get("metadata") or {}
        ref: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if container:
            inits = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []}
            ref["fieldPath"] = f"spec.initContainers{{{container}}}" if container in inits else f"spec.containers{{{container}}}"
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait((ref, type, reason, message))

    async def _send_events(self) -> None:
        while True:
            ref, type, reason, message = await self._events.get()
            try:
                await self.client.record_event(ref, reason, message, type, "kubelet", host=self.config.node_name)
            except ClientError as e:  # record_event logs and swallows; be safe anyway
                log.debug("event %s dropped: %s", reason, e)


__all__ = [
    "DEFAULT_ROOT_DIR",
    "Kubelet",
    "KubeletConfig",
    "cluster_id",
    "detect_node_ip",
    "machine_capacity",
]
