"""Start and stop the API server on a data dir: store, TLS, tokens, bootstrap objects.

A data dir holds everything one cluster's control plane owns: `state.db` (the store),
`pki/` (CA and serving certificate), `tokens.json` and `kubeconfig`. It is locked while
a server runs, so two servers never share one store.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import gc
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tuik8s.api import errors
from tuik8s.api.registry import SYSTEM_NAMESPACES
from tuik8s.apiserver import openapi
from tuik8s.apiserver.authz import Authorizer
from tuik8s.apiserver.autoscalingv1 import PREFIX as AUTOSCALING_V1_PREFIX
from tuik8s.apiserver.autoscalingv1 import AutoscalingV1
from tuik8s.apiserver.certs import ensure_serving_material, ssl_context
from tuik8s.apiserver.http import ApiServerApp
from tuik8s.apiserver.kubelets import KubeletClient
from tuik8s.apiserver.kubelets import ensure_token as ensure_kubelet_token
from tuik8s.apiserver.metricsapi import PREFIX as METRICS_PREFIX
from tuik8s.apiserver.metricsapi import MetricsApi
from tuik8s.apiserver.metricsscraper import LAB_RESOLUTION, MetricsScraper, StoredNodes
from tuik8s.apiserver.request import ApiRequest, User
from tuik8s.apiserver.rest import Resources
from tuik8s.apiserver.strategy import Strategy
from tuik8s.apiserver.streaming import PodStreams
from tuik8s.apiserver.tokens import TokenAuthenticator, ensure_admin_token
from tuik8s.store.base import StorageError
from tuik8s.store.sqlite import SqliteStore, decode

log = logging.getLogger(__name__)

ADMIN = User("system:apiserver", ("system:masters",))


class StartupError(Exception):
    """Why the control plane could not start, in one line."""


@dataclass
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    advertise: list[str] = field(default_factory=list)  # extra SAN hostnames/IPs
    metric_resolution: float = LAB_RESOLUTION  # seconds between scrapes of the kubelets (0: none)


class ControlPlaneServer:
    """The running API server (the scheduler and controllers attach to `resources`)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store: SqliteStore | None = None
        self.resources: Resources | None = None
        self.runner: web.AppRunner | None = None
        self.admin_token = ""
        self.ca_pem = b""
        self._lock_fd: int | None = None
        self.kubelets: KubeletClient | None = None
        self._openapi: asyncio.Task[None] | None = None
        self.metrics: MetricsScraper | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"https://{host}:{self.config.port}"

    def _prepare_dir(self) -> None:
        d = self.config.data_dir
        try:
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
            fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StartupError(f"cannot use data dir {d}: {e.strerror or e}; choose another with --data-dir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StartupError(
                f"another tuik8s server is using {d}; stop it first or choose another --data-dir"
            ) from None
        self._lock_fd = fd

    async def start(self) -> None:
        self._prepare_dir()
        d = self.config.data_dir
        try:
            self.store = await SqliteStore.open(d / "state.db")
        except StorageError as e:
            raise StartupError(str(e)) from None
        strategy = Strategy()
        strategy.restore([decode(s) for s in self.store.list("services")])
        self.resources = Resources(self.store, strategy)
        try:
            self.kubelets = KubeletClient(self.store, ensure_kubelet_token(d))
        except OSError as e:
            raise StartupError(f"cannot write the kubelet client token in {d}: {e.strerror or e}") from None
        self.resources.kubelet_logs = self.kubelets.logs
        self._serve_extra_apis()
        try:
            material = ensure_serving_material(d / "pki", hostnames=[a for a in self.config.advertise if not _is_ip(a)], ips=[a for a in self.config.advertise if _is_ip(a)])
            self.admin_token = ensure_admin_token(d)
        except OSError as e:
            raise StartupError(f"cannot write TLS material or tokens in {d}: {e.strerror or e}") from None
        self.ca_pem = material.ca_cert_pem
        await self._bootstrap(strategy)
        # the schemas take ~0.7 s to build: do it off the event loop, before anyone asks
        self._openapi = asyncio.create_task(self._warm_up())
        app = ApiServerApp(self.resources, TokenAuthenticator(d), Authorizer(self.store)).build(
            PodStreams(self.store, self.kubelets).add_routes
        )
        # handler_cancellation: a watch whose client went away ends at once, instead of
        # holding its store subscription until the next event or its timeout
        self.runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=5.0
        )
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, self.config.host, self.config.port, ssl_context=ssl_context(material),
            backlog=1024, reuse_address=True,
        )
        try:
            await site.start()
        except OSError as e:
            await self.stop()
            if e.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {self.config.port} on {self.config.host} is already in use; stop what uses it or pass --port"
                ) from None
            raise StartupError(f"cannot listen on {self.config.host}:{self.config.port}: {e.strerror or e}") from None
        if self.config.port == 0:
            sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
            if sockets:
                self.config.port = sockets[0].getsockname()[1]
        await self._publish_endpoints()
        if self.metrics is not None and self.config.metric_resolution > 0:
            self.metrics.start()

    def _serve_extra_apis(self) -> None:
        """metrics.k8s.io from the scraper's memory; autoscaling/v1 HPAs converted to v2."""
        assert self.store is not None and self.resources is not None and self.kubelets is not None
        store = self.store
        self.metrics = MetricsScraper(
            StoredNodes(store), self.kubelets.resource_metrics,
            resolution=self.config.metric_resolution or LAB_RESOLUTION,
        )
        self.resources.delegates[METRICS_PREFIX] = MetricsApi(self.metrics.storage, store).handle
        self.resources.delegates[AUTOSCALING_V1_PREFIX] = AutoscalingV1(self.resources).handle

    async def _warm_up(self) -> None:
        await openapi.ensure_built()
        # What exists now (schemas, modules, the loaded store) lives as long as the
        # process: keep it out of every future full garbage collection.
        gc.collect()
        gc.freeze()
        # Every request allocates thousands of short-lived dicts; at the default threshold
        # (700) young collections took ~23% of the server's CPU during bench/scale.py.
        # Rarer young collections cost a few MB and halve that (creation 37 s -> 21 s).
        gc.set_threshold(50_000, 20, 100)

    async def _bootstrap(self, strategy: Strategy) -> None:
        """The system namespaces and the `kubernetes` Service exist from the start."""
        assert self.resources is not None
        for ns in SYSTEM_NAMESPACES:
            await self._ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await self._ensure(
            "/api/v1/namespaces/default/services",
            {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": strategy.cluster_ips.first,
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.config.port or 6443}]},
            },
        )

    async def _publish_endpoints(self) -> None:
        """The `kubernetes` Service's Endpoints: where this API server answers, as upstream's
        endpoint reconciler writes them, so 10.96.0.1:443 reaches it through kube-proxy.
        Rewritten at every start: the port (and the advertised address) may have changed."""
        address = next((a for a in self.config.advertise if _is_ip(a) and _routable(a)), None)
        if address is None and _is_ip(self.config.host) and _routable(self.config.host):
            address = self.config.host
        if address is None:
            return  # only loopback is known: upstream rejects it as an endpoint, and no pod could use it
        subsets = [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": self.config.port, "protocol": "TCP"}]}]
        await self._publish("/api/v1/namespaces/default/endpoints", {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": subsets,
        }, ("subsets",))
        # and its EndpointSlice, as upstream's reconciler writes it beside the Endpoints
        await self._publish("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv6" if ":" in address else "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": self.config.port, "protocol": "TCP"}],
        }, ("addressType", "endpoints", "ports"))

    async def _publish(self, path: str, obj: dict[str, Any], fields: tuple[str, ...]) -> None:
        """Create `obj` in the collection at `path`, or rewrite it when `fields` differ."""
        assert self.resources is not None
        name = obj["metadata"]["name"]
        try:
            current = await self.resources.handle(ApiRequest("GET", f"{path}/{name}", {}, {}, b"", ADMIN))
        except errors.StatusError:
            await self._ensure(path, obj)
            return
        existing = orjson.loads(current.body)
        if all(existing.get(f) == obj[f] for f in fields):
            return
        obj["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        req = ApiRequest("PUT", f"{path}/{name}", {}, {"Content-Type": "application/json"}, orjson.dumps(obj), ADMIN)
        with contextlib.suppress(errors.StatusError):
            await self.resources.handle(req)

    async def _ensure(self, collection: str, obj: dict[str, Any]) -> None:
        assert self.resources is not None
        req = ApiRequest("POST", collection, {}, {"Content-Type": "application/json"}, orjson.dumps(obj), ADMIN)
        with contextlib.suppress(errors.StatusError):
            await self.resources.handle(req)

    async def stop(self) -> None:
        if self.store is not None:
            # end every open watch first, so their handlers return and the HTTP server
            # can stop without waiting them out
            self.store.close_watches()
        if self._openapi is not None:
            self._openapi.cancel()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.kubelets is not None:
            await self.kubelets.close()
            self.kubelets = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _routable(ip: str) -> bool:
    """An address a pod could reach: not loopback, not the unspecified 0.0.0.0/::."""
    addr = ipaddress.ip_address(ip)
    return not (addr.is_loopback or addr.is_unspecified)


def _is_ip(value: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, value)
            return True
        except OSError:
            continue
    return False
