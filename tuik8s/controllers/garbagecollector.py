"""GarbageCollector: deletes what its owners no longer hold, as upstream's GC.

Objects name their owners in `metadata.ownerReferences` (a ReplicaSet its Deployment,
a pod its ReplicaSet, a Lease its Node). When an owner is deleted its dependents follow,
in one of three ways, chosen by the DeleteOptions of the owner's deletion (the API
server turns them into finalizers; see tuik8s/apiserver/rest.py `_delete`):

- background (the default): the API server deletes the owner at once; the GC sees it
  gone and deletes its dependents, whose own dependents then follow the same way;
- foreground: the owner stays, with a deletionTimestamp and the `foregroundDeletion`
  finalizer, while the GC deletes its dependents (foreground again, for those that have
  dependents of their own); once no dependent with `blockOwnerDeletion` is left, the
  GC removes the finalizer and the API server deletes the owner;
- orphan: the owner stays with the `orphan` finalizer while the GC removes the
  ownerReferences to it from its dependents, then the GC removes the finalizer.

The GC watches every kind the API serves that can be listed, watched and deleted
(except Events, which upstream ignores too) and keeps an owner graph: uid -> object,
and owner uid -> dependent uids. The graph says who to look at; it never decides alone
that an owner is gone. An owner missing from the graph may simply not have reached
its informer yet (the owner and its dependent come over two different watches), so
before a dependent is deleted its absence is confirmed with a live GET: a 404, or an
object of that name with another uid, as upstream does. Confirmed absences are
remembered (uids are never reused), so deleting the 1,000 pods of a deleted
ReplicaSet costs one GET for the owner, not 1,000.

The queue holds uids. A uid whose object is gone by the time a worker takes it needs
nothing: its dependents were enqueued when its deletion was observed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from tuik8s.api import registry
from tuik8s.api.registry import ResourceInfo
from tuik8s.client.errors import ApiError, is_conflict, is_not_found
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED_RESOURCES = frozenset({"events"})
ABSENT_CACHE_SIZE = 1000
FINALIZER_RETRIES = 5

# what a dependent's owner reference points at
SOLID = "solid"  # the owner exists and is not waiting for its dependents
DANGLING = "dangling"  # no object with that uid: the owner is gone
WAITING = "waiting"  # the owner is being deleted in the foreground
UNKNOWN = "unknown"  # a kind we do not serve, or a reference that can't be checked


# ---- pure helpers -------------------------------------------------------------------


def uid_of(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def owner_refs(obj: Obj | None) -> list[Obj]:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict) and r.get("uid")]


def finalizers(obj: Obj | None) -> list[str]:
    return list(((obj or {}).get("metadata") or {}).get("finalizers") or [])


def is_deleting(obj: Obj | None) -> bool:
    return bool(((obj or {}).get("metadata") or {}).get("deletionTimestamp"))


def deleting_dependents(obj: Obj | None) -> bool:
    """Being deleted in the foreground: waiting for its dependents to go first."""
    return is_deleting(obj) and FOREGROUND in finalizers(obj)


def blocks(dependent: Obj, owner_uid: str) -> bool:
    """Whether `dependent` holds back its owner's foreground deletion."""
    return any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion") is True for r in owner_refs(dependent))


def monitored_resources() -> list[ResourceInfo]:
    """Every served resource that can be listed, watched and deleted, but Events."""
    return [
        info for info in registry.RESOURCES
        if {"list", "watch", "delete"} <= set(info.verbs) and info.key not in IGNORED_RESOURCES
    ]


def owner_info(ref: Mapping[str, Any]) -> ResourceInfo | None:
    """The resource an ownerReference's kind lives in (any served version of its group)."""
    api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
    info = registry.by_kind(api_version, kind)
    if info is not None:
        return info
    group = api_version.rpartition("/")[0]
    return next((r for r in registry.RESOURCES if r.group == group and r.kind == kind), None)


@dataclass(frozen=True)
class Decision:
    """What to do with a dependent once its owners are classified."""

    action: str  # "keep", "remove-refs" or "delete"
    uids: tuple[str, ...] = ()  # for remove-refs: the references to drop
    policy: str | None = None  # for delete: the propagation policy
    unblock: bool = False  # for delete: first make its references non-blocking


KEEP = Decision("keep")


def decide(
    refs: Iterable[Mapping[str, Any]],
    states: Mapping[str, str],
    *,
    has_dependents: bool,
    dependent_deleting_dependents: bool = False,
    item_finalizers: Iterable[str] = (),
) -> Decision:
    """Upstream's attemptToDeleteItem, once each owner reference is classified.

    - Some owner still stands: keep the object, but drop references to owners that are
      gone or waiting for their dependents (so those owners can finish).
    - No owner stands and one waits for its dependents, and the object has dependents
      of its own: delete it in the foreground too, so the wait spans the whole tree.
      If one of its dependents is itself waiting, its references are made
      non-blocking first, to break a possible cycle.
    - Otherwise the object is garbage: delete it, honouring a finalizer it already has.
    """
    refs = list(refs)
    if not refs:
        return KEEP
    solid = [r for r in refs if states.get(r["uid"], UNKNOWN) in (SOLID, UNKNOWN)]
    dangling = [r["uid"] for r in refs if states.get(r["uid"]) == DANGLING]
    waiting = [r["uid"] for r in refs if states.get(r["uid"]) == WAITING]
    if solid:
        if not dangling and not waiting:
            return KEEP
        return Decision("remove-refs", uids=tuple(dangling + waiting))
    if waiting and has_dependents:
        return Decision("delete", policy="Foreground", unblock=dependent_deleting_dependents)
    fins = set(item_finalizers)
    if ORPHAN in fins:
        policy = "Orphan"
    elif FOREGROUND in fins:
        policy = "Foreground"
    else:
        policy = "Background"
    return Decision("delete", policy=policy)


def remove_refs_patch(uids: Iterable[str]) -> Obj:
    """A strategic merge patch that drops the ownerReferences with these uids, and only those."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": u} for u in uids]}}


def unblock_refs_patch(obj: Obj) -> Obj | None:
    """A strategic merge patch turning every blocking ownerReference non-blocking."""
    refs = [{"uid": r["uid"], "blockOwnerDeletion": False} for r in owner_refs(obj) if r.get("blockOwnerDeletion")]
    return {"metadata": {"ownerReferences": refs}} if refs else None


# ---- the owner graph ----------------------------------------------------------------


@dataclass
class GraphNode:
    info: ResourceInfo
    obj: Obj  # the informer's cached object: read it, never change it

    @property
    def uid(self) -> str:
        return uid_of(self.obj)

    @property
    def namespace(self) -> str | None:
        return (self.obj.get("metadata") or {}).get("namespace") or None

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.info.kind} {where}{self.name}"

    def is_referenced_by(self, ref: Mapping[str, Any], info: ResourceInfo, namespace: str | None) -> bool:
        """Whether this node is the object `ref` (seen from `namespace`) names."""
        return self.info == info and self.name == ref.get("name") and self.namespace == namespace


class OwnerGraph:
    """uid -> object over every monitored kind, and owner uid -> its dependents' uids.

    Dependents are indexed by the owner uid they name, whether or not the owner is in
    the graph: a dependent whose owner was never seen is exactly the one to check.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self._dependents: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, uid: str) -> GraphNode | None:
        return self.nodes.get(uid)

    def dependents(self, uid: str) -> list[GraphNode]:
        return [self.nodes[d] for d in sorted(self._dependents.get(uid, ())) if d in self.nodes]

    def upsert(self, info: ResourceInfo, obj: Obj) -> GraphNode | None:
        """Record `obj`; returns the node it replaces, if any."""
        uid = uid_of(obj)
        prev = self.nodes.get(uid)
        self.nodes[uid] = GraphNode(info, obj)
        self._reindex(uid, prev.obj if prev else None, obj)
        return prev

    def remove(self, obj: Obj) -> GraphNode | None:
        uid = uid_of(obj)
        prev = self.nodes.pop(uid, None)
        self._reindex(uid, prev.obj if prev else obj, None)
        return prev

    def _reindex(self, uid: str, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and (
            (old.get("metadata") or {}).get("ownerReferences") == (new.get("metadata") or {}).get("ownerReferences")
        ):
            return  # the usual update (a status, a Lease renewal): the same owners
        before = {r["uid"] for r in owner_refs(old)}
        after = {r["uid"] for r in owner_refs(new)}
        for owner in before - after:
            deps = self._dependents.get(owner)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self._dependents[owner]
        for owner in after - before:
            self._dependents.setdefault(owner, set()).add(uid)


# ---- the controller -----------------------------------------------------------------


class GarbageCollector(Controller):
    """Cascading deletion over ownerReferences, in the background, foreground or orphaning."""

    name = "garbagecollector"
    workers = 20  # upstream --concurrent-gc-syncs

    def setup(self) -> None:
        self.graph = OwnerGraph()
        self._absent: OrderedDict[str, None] = OrderedDict()
        for info in monitored_resources():
            inf = self.ctx.informers.informer(info)
            inf.add_handler(partial(self._on_add, info), partial(self._on_update, info), partial(self._on_delete, info))

    # ---- building the graph (informer handlers: quick, enqueue only) --------------

    def _on_add(self, info: ResourceInfo, obj: Obj) -> None:
        self._observe(info, obj)

    def _on_update(self, info: ResourceInfo, old: Obj, new: Obj) -> None:
        if uid_of(old) != uid_of(new):
            # a relist found the name taken by a new object: the old one is gone
            self._on_delete(info, old)
        self._observe(info, new)

    def _observe(self, info: ResourceInfo, obj: Obj) -> None:
        uid = uid_of(obj)
        if not uid:
            return
        prev = self.graph.upsert(info, obj)
        fins = finalizers(obj)
        if is_deleting(obj) and (ORPHAN in fins or FOREGROUND in fins):
            self.queue.add(uid)
        old_refs = {r["uid"]: r for r in owner_refs(prev.obj if prev else None)}
        new_refs = {r["uid"]: r for r in owner_refs(obj)}
        if new_refs and (prev is None or old_refs != new_refs):
            namespace = (obj.get("metadata") or {}).get("namespace") or None
            if not all(self._solid_in_graph(ref, namespace) for ref in new_refs.values()):
                self.queue.add(uid)
        for ref_uid, ref in old_refs.items():
            # a reference dropped or made non-blocking may be what a waiting owner waits for
            if new_refs.get(ref_uid) != ref:
                self._wake_waiting_owner(ref_uid)

    def _on_delete(self, info: ResourceInfo, obj: Obj) -> None:
        uid = uid_of(obj)
        if not uid:
            return
        gone = self.graph.remove(obj)
        for dep in self.graph.dependents(uid):
            self.queue.add(dep.uid)
        for ref in owner_refs(gone.obj if gone else obj):
            self._wake_waiting_owner(ref["uid"])

    def _wake_waiting_owner(self, uid: str) -> None:
        owner = self.graph.get(uid)
        if owner is not None and deleting_dependents(owner.obj):
            self.queue.add(uid)

    def _solid_in_graph(self, ref: Mapping[str, Any], namespace: str | None) -> bool:
        info = owner_info(ref)
        if info is None:
            return True  # nothing we could check; _owner_state says the same
        owner = self.graph.get(str(ref["uid"]))
        expected_ns = namespace if info.namespaced else None
        return owner is not None and owner.is_referenced_by(ref, info, expected_ns) and not deleting_dependents(owner.obj)

    # ---- reconcile --------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        node = self.graph.get(key)
        if node is None:
            return None
        if is_deleting(node.obj):
            fins = finalizers(node.obj)
            if ORPHAN in fins:
                await self._orphan_dependents(node)
            elif FOREGROUND in fins:
                await self._process_deleting_dependents(node)
            return None
        if owner_refs(node.obj):
            await self._attempt_to_delete(node)
        return None

    async def _attempt_to_delete(self, node: GraphNode) -> None:
        if all(self._solid_in_graph(ref, node.namespace) for ref in owner_refs(node.obj)):
            return  # every owner is here and standing: nothing to decide, no GET needed
        latest = await self._live_get(node.info, node.namespace, node.name)
        if latest is None or uid_of(latest) != node.uid or is_deleting(latest):
            return  # gone, replaced, or already on its way out
        refs = owner_refs(latest)
        states = {str(ref["uid"]): await self._owner_state(node, ref) for ref in refs}
        deps = self.graph.dependents(node.uid)
        decision = decide(
            refs, states,
            has_dependents=bool(deps),
            dependent_deleting_dependents=any(deleting_dependents(d.obj) for d in deps),
            item_finalizers=finalizers(latest),
        )
        if decision.action == "remove-refs":
            log.info("%s: removing ownerReferences to %s (gone or being deleted)", node, ", ".join(decision.uids))
            await self._patch(node, remove_refs_patch(decision.uids))
        elif decision.action == "delete":
            if decision.unblock and (patch := unblock_refs_patch(latest)) is not None:
                await self._patch(node, patch)
            why = "an owner waits for its dependents" if WAITING in states.values() else "its owners are gone"
            log.info("%s: %s; deleting it (%s)", node, why, decision.policy)
            try:
                await self.client.delete(
                    node.info, node.name, node.namespace,
                    propagation_policy=decision.policy, preconditions={"uid": node.uid},
                )
            except ApiError as e:
                # 404: already gone; 409: the name now holds another object, not ours to delete
                if not (is_not_found(e) or e.code == 409):
                    raise

    async def _owner_state(self, node: GraphNode, ref: Mapping[str, Any]) -> str:
        """SOLID, DANGLING, WAITING or UNKNOWN; DANGLING only when the API server says so."""
        info = owner_info(ref)
        if info is None:
            log.debug("%s: owner kind %s/%s is not served; keeping it", node, ref.get("apiVersion"), ref.get("kind"))
            return UNKNOWN
        if info.namespaced and not node.namespace:
            return UNKNOWN  # a cluster-scoped object can't be owned by a namespaced one
        namespace = node.namespace if info.namespaced else None
        uid = str(ref["uid"])
        absent_key = f"{namespace or ''}/{uid}"
        if absent_key in self._absent:
            return DANGLING
        cached = self.graph.get(uid)
        if cached is not None and cached.is_referenced_by(ref, info, namespace):
            return WAITING if deleting_dependents(cached.obj) else SOLID
        owner = await self._live_get(info, namespace, str(ref.get("name") or ""))
        if owner is None or uid_of(owner) != uid:
            self._absent[absent_key] = None
            while len(self._absent) > ABSENT_CACHE_SIZE:
                self._absent.popitem(last=False)
            return DANGLING
        return WAITING if deleting_dependents(owner) else SOLID

    async def _orphan_dependents(self, node: GraphNode) -> None:
        """Free the owner's dependents of their references to it, then let the owner go."""
        for dep in self.graph.dependents(node.uid):
            try:
                await self._patch(dep, remove_refs_patch([node.uid]))
            except ApiError as e:
                if not is_not_found(e):
                    raise
        await self._remove_finalizer(node, ORPHAN)

    async def _process_deleting_dependents(self, node: GraphNode) -> None:
        """A foreground deletion: done once no dependent blocks it, else push them along."""
        deps = self.graph.dependents(node.uid)
        if not any(blocks(d.obj, node.uid) for d in deps):
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in deps:
            if not is_deleting(dep.obj):
                self.queue.add(dep.uid)

    # ---- writes -----------------------------------------------------------------

    async def _live_get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.client.get(info, name, namespace)
        except ApiError as e:
            if is_not_found(e):
                return None
            raise

    async def _patch(self, node: GraphNode, patch: Obj) -> None:
        await self.client.patch(node.info, node.name, patch, namespace=node.namespace, patch_type="strategic")

    async def _remove_finalizer(self, node: GraphNode, finalizer: str) -> None:
        """Drop `finalizer` from the live object, retrying on conflict as upstream does."""
        for attempt in range(FINALIZER_RETRIES):
            latest = await self._live_get(node.info, node.namespace, node.name)
            if latest is None or uid_of(latest) != node.uid:
                return
            fins = finalizers(latest)
            if finalizer not in fins:
                return
            rest = [f for f in fins if f != finalizer]
            patch = {"metadata": {"resourceVersion": latest["metadata"].get("resourceVersion"), "finalizers": rest or None}}
            try:
                await self.client.patch(node.info, node.name, patch, namespace=node.namespace, patch_type="merge")
                log.info("%s: removed the %s finalizer", node, finalizer)
                return
            except ApiError as e:
                if is_not_found(e):
                    return
                if not is_conflict(e) or attempt == FINALIZER_RETRIES - 1:
                    raise
