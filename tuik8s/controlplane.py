"""The control-plane process: the API server, and the scheduler and controllers as its clients.

The scheduler and the controllers live in the API server's process but talk to it only
through `ApiClient` over the in-process transport (DESIGN rule 1): the same
authentication, validation, admission and watch code as any remote client, without TLS
and sockets in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tuik8s.api import errors
from tuik8s.apiserver.request import ApiRequest, User
from tuik8s.apiserver.server import ControlPlaneServer, ServerConfig
from tuik8s.client.client import ApiClient
from tuik8s.client.informer import SharedInformers
from tuik8s.client.transport import InProcessTransport
from tuik8s.controllers.runner import ControllerContext, ControllerManager, Timings

log = logging.getLogger(__name__)

# (module, class): every controller the controller manager runs, in start order.
CONTROLLERS: tuple[tuple[str, str], ...] = (
    ("tuik8s.controllers.namespace", "NamespaceController"),
    ("tuik8s.controllers.serviceaccount", "ServiceAccountController"),
    ("tuik8s.controllers.garbagecollector", "GarbageCollector"),
    ("tuik8s.controllers.replicaset", "ReplicaSetController"),
    ("tuik8s.controllers.deployment", "DeploymentController"),
    ("tuik8s.controllers.daemonset", "DaemonSetController"),
    ("tuik8s.controllers.job", "JobController"),
    ("tuik8s.controllers.endpoints", "EndpointsController"),
    ("tuik8s.controllers.endpointslice", "EndpointSliceController"),
    ("tuik8s.controllers.nodelifecycle", "NodeLifecycleController"),
    ("tuik8s.controllers.horizontalpodautoscaler", "HorizontalPodAutoscalerController"),
)
SCHEDULER = ("tuik8s.scheduler.scheduler", "Scheduler")
CLUSTER_DNS = ("tuik8s.dns.component", "ClusterDNS")


@dataclass
class ControlPlaneConfig:
    server: ServerConfig
    scheduler: bool = True
    controllers: bool = True
    timings: Timings = field(default_factory=Timings)
    # ADDRESS[:PORT] the cluster DNS listens on (tuik8s/dns); None: no cluster DNS
    cluster_dns_listen: str | None = None


def in_process_handler(server: ControlPlaneServer, user: User) -> Any:
    """The callable `InProcessTransport` wants, bound to the running server's REST layer."""

    async def handle(
        method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes, AsyncIterator[bytes] | None]:
        if server.resources is None:
            raise errors.StatusError(503, "ServiceUnavailable", "the API server is not running")
        resp = await server.resources.handle(ApiRequest(method, path, query, headers, body, user))
        return resp.status, resp.content_type, resp.body, resp.stream

    return handle


def _load(module: str, name: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if e.name == module:
            log.debug("%s is not built yet; skipping", module)
            return None
        raise


class ControlPlane:
    """Starts and stops the whole control plane of one cluster."""

    def __init__(self, config: ControlPlaneConfig) -> None:
        self.config = config
        self.server = ControlPlaneServer(config.server)
        self.client: ApiClient | None = None
        self.manager: ControllerManager | None = None

    async def start(self) -> None:
        await self.server.start()
        if not (self.config.scheduler or self.config.controllers or self.config.cluster_dns_listen):
            return
        user = User("system:kube-controller-manager", ("system:masters",))
        self.client = ApiClient(InProcessTransport(in_process_handler(self.server, user)))
        ctx = ControllerContext(self.client, SharedInformers(self.client), self.config.timings)
        self.manager = ControllerManager(ctx)
        if self.config.controllers:
            for module, name in CONTROLLERS:
                cls = _load(module, name)
                if cls is not None:
                    self.manager.add_controller(cls(ctx))
        if self.config.cluster_dns_listen:
            cls = _load(*CLUSTER_DNS)
            if cls is not None:
                cls(ctx, self.config.cluster_dns_listen).add_to(self.manager)
        if self.config.scheduler:
            cls = _load(*SCHEDULER)
            if cls is not None:
                scheduler = cls(ctx)
                self.manager.add("scheduler", scheduler.run)
        self.manager.start()

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.stop()
            self.manager = None
        if self.client is not None:
            await self.client.close()
            self.client = None
        await self.server.stop()


async def serve_forever(plane: ControlPlane, ready: Any = None) -> None:
    """Run until SIGINT or SIGTERM, then stop everything in order."""
    try:
        await plane.start()
    except BaseException:
        # whatever got started (the store's writer thread above all) must not keep a
        # half-started server alive, holding its port and data dir
        with contextlib.suppress(Exception):
            await plane.stop()
        raise
    if ready is not None:
        ready(plane.server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await plane.stop()
