"""ServiceAccountController: a `default` ServiceAccount in every active namespace.

As upstream's serviceaccounts-controller: pods that name no service account run as
`default`, so every namespace has one from its first moments, and gets it back if it
is deleted. A namespace being terminated gets none (the API server would refuse it).
Tokens are not minted here.
"""

from __future__ import annotations

from tuik8s.client.errors import ApiError, is_already_exists
from tuik8s.controllers.runner import Controller, Obj

DEFAULT_SERVICE_ACCOUNTS = ("default",)


def _namespace_of(sa: Obj) -> str | None:
    meta = sa.get("metadata") or {}
    return meta.get("namespace") if meta.get("name") in DEFAULT_SERVICE_ACCOUNTS else None


class ServiceAccountController(Controller):
    """Creates the `default` ServiceAccount wherever it is missing; keyed by namespace."""

    name = "serviceaccount"
    workers = 2

    def setup(self) -> None:
        self.namespaces = self.informer("namespaces")
        self.service_accounts = self.informer("serviceaccounts")
        self.enqueue_handlers(self.namespaces)
        self.service_accounts.add_handler(on_delete=lambda sa: self._enqueue_namespace(sa))

    def _enqueue_namespace(self, sa: Obj) -> None:
        namespace = _namespace_of(sa)
        if namespace:
            self.queue.add(namespace)

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or (ns.get("status") or {}).get("phase", "Active") != "Active":
            return None
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        for name in DEFAULT_SERVICE_ACCOUNTS:
            if self.service_accounts.get(f"{key}/{name}") is not None:
                continue
            try:
                await self.client.create("serviceaccounts", {"metadata": {"name": name}}, key)
            except ApiError as e:
                if is_already_exists(e):
                    continue  # our cache was behind
                if e.code == 403 and "being terminated" in e.message:
                    return None  # the namespace started terminating meanwhile
                raise
        return None
