"""The ingress controller: watches through the API, rebuilds the table, writes status.

One controller serves all workers. It keeps informers on Ingresses, IngressClasses,
Services, Endpoints and TLS Secrets; any change marks the table dirty, and a single
loop rebuilds it from the caches after a short settling delay (a rollout touches
Endpoints many times in a burst; one rebuild covers them all). A table equal to the
last one published is not sent again. Workers only ever receive whole tables.

Rebuilding from the caches, never from the event, keeps this level-triggered: a missed
or reordered event cannot leave a stale route behind. The same pass brings every
Ingress of our class to `status.loadBalancer.ingress = [our address]` through the
status subresource, carrying the resourceVersion it read; a conflict or an error
simply schedules another pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ClientError
from tuik8s.client.informer import Informer, SharedInformers
from tuik8s.ingress.table import (
    DEFAULT_CLASS,
    TLS_SECRET_TYPE,
    RoutingTable,
    build_table,
    load_balancer_entry,
)

log = logging.getLogger(__name__)

SETTLE = 0.02
RETRY = 1.0


class IngressController:
    """Keeps a `RoutingTable` current and hands every new one to `publish`."""

    def __init__(
        self,
        client: ApiClient,
        publish: Callable[[RoutingTable], None],
        *,
        address: str | None = "127.0.0.1",
        class_name: str = DEFAULT_CLASS,
    ) -> None:
        self.client = client
        self.publish = publish
        self.address = address
        self.class_name = class_name
        self.table: RoutingTable | None = None
        self.informers = SharedInformers(client)
        self.ingresses = self._watch("ingresses.networking.k8s.io")
        self.classes = self._watch("ingressclasses.networking.k8s.io")
        self.services = self._watch("services")
        self.endpoints = self._watch("endpoints")
        self.secrets = self._watch("secrets", field_selector=f"type={TLS_SECRET_TYPE}")
        self._dirty = asyncio.Event()
        self._retry: asyncio.TimerHandle | None = None

    def _watch(self, resource: str, **kw: Any) -> Informer:
        inf = self.informers.informer(resource, **kw)
        inf.add_handler(
            lambda _o: self._dirty.set(), lambda _o, _n: self._dirty.set(), lambda _o: self._dirty.set()
        )
        return inf

    def build(self) -> RoutingTable:
        return build_table(
            self.ingresses.list(), self.services, self.endpoints, self.secrets,
            self.classes.list(), self.class_name,
        )

    async def start(self) -> RoutingTable:
        """Start watching; return the first table once every cache has synced."""
        self.informers.start()
        await self.informers.wait_synced()
        self._dirty.clear()
        self.table = self.build()
        return self.table

    async def run(self) -> None:
        """Rebuild and publish on every change, forever (after `start`)."""
        if self.table is None:
            await self.start()
        await self._sync_status()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(SETTLE)
            self._dirty.clear()
            try:
                table = self.build()
            except Exception:  # noqa: BLE001 - a surprising object must not stop routing
                log.exception("rebuilding the routing table failed; keeping the last one")
                continue
            if table != self.table:
                self.table = table
                self.publish(table)
            await self._sync_status()

    async def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        await self.informers.stop()

    async def _sync_status(self) -> None:
        if not self.address or self.table is None:
            return
        want = [load_balancer_entry(self.address)]
        failed = False
        for key in self.table.ingresses:
            ing = self.ingresses.get(key)
            if ing is None:
                continue
            current = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            if current == want:
                continue
            meta = ing["metadata"]
            patch = {
                "metadata": {"resourceVersion": meta.get("resourceVersion")},
                "status": {"loadBalancer": {"ingress": want}},
            }
            try:
                await self.client.patch(
                    "ingresses.networking.k8s.io", meta["name"], patch,
                    namespace=meta.get("namespace"), subresource="status",
                )
            except ClientError as e:
                log.info("status of ingress %s: %s; retrying", key, e)
                failed = True
        if failed and self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(RETRY, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._dirty.set()
